"""A counting TCP proxy for PostgreSQL's wire protocol: round trips seen by the server.

`StatementCounter` (facetoface.db) counts the statements SQLAlchemy sends. What it cannot see
is what the driver and the pool add around them: `BEGIN`/`COMMIT`, the pool's pre-ping, and
the `Parse` of a statement the connection has not prepared yet. This proxy sits between a
client and PostgreSQL (127.0.0.1 only) and reads the client's messages, never changing them:

- every simple `Query` ('Q') is one round trip (the client waits for ReadyForQuery);
- every `Sync` ('S') closes one extended-protocol batch (Parse/Bind/Describe/Execute…): one
  round trip, labelled by what the batch held.

Counts are global (all connections), so attribute them to an operation only when nothing else
runs at the same time: the benchmark uses the proxy in its sequential phases only, never under
load. It needs an unencrypted connection (`ssl=disable`), which the benchmark asks for.

With `delay_ms` (`--db-rtt-ms`) it also models a remote database: every chunk is delivered
`delay_ms / 2` after it arrived, in each direction, so each round trip takes `delay_ms` longer;
chunks keep their order, and messages a client pipelines share one delay, as on a real link.
It runs on the caller's event loop: use it for sequential measurements only (the loop is idle
while a flow waits on the database, so the timers fire on time).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import Counter
from dataclasses import dataclass, field

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_CANCEL_REQUEST = 80877102
_READ_SIZE = 65536
_PUMP_TIMEOUT_S = 600.0


@dataclass(slots=True)
class RoundTrip:
    kind: str  # "query" (simple protocol), "prepare", "execute"
    text: str

    def label(self) -> str:
        text = " ".join(self.text.split())
        return f"{self.kind}: {text[:160]}"


@dataclass
class WireLog:
    trips: list[RoundTrip] = field(default_factory=list)
    connections: int = 0

    def mark(self) -> int:
        return len(self.trips)

    def since(self, mark: int) -> list[RoundTrip]:
        return self.trips[mark:]


def classify(trips: list[RoundTrip]) -> dict[str, int]:
    """Round trips by what they were: transaction control, the pool's ping, statements."""
    counts: Counter[str] = Counter()
    for trip in trips:
        text = " ".join(trip.text.split()).upper().rstrip(";")
        if trip.kind == "query" and text.startswith(("BEGIN", "START TRANSACTION")):
            counts["begin"] += 1
        elif trip.kind == "query" and text.startswith(("COMMIT", "END")):
            counts["commit"] += 1
        elif trip.kind == "query" and text.startswith(("ROLLBACK", "ABORT")):
            counts["rollback"] += 1
        elif text in ("", ";"):
            counts["ping"] += 1
        elif text.startswith("SELECT SET_CONFIG('ROLE'"):
            counts["identity"] += 1  # row-level security: role and claims of the transaction
        elif trip.kind == "prepare":
            counts["prepare"] += 1
        else:
            counts["statement"] += 1
    counts["total"] = len(trips)
    return dict(counts)


class _ClientParser:
    """Incremental parser of the frontend (client → server) message stream."""

    def __init__(self, log: WireLog) -> None:
        self._log = log
        self._buffer = bytearray()
        self._startup = True
        self._statements: dict[str, str] = {}
        self._batch: list[tuple[str, str]] = []  # (message type, query text)

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while True:
            if self._startup:
                if len(self._buffer) < 8:
                    return
                length, code = struct.unpack("!ii", self._buffer[:8])
                if len(self._buffer) < length:
                    return
                del self._buffer[:length]
                if code not in (_SSL_REQUEST, _GSSENC_REQUEST, _CANCEL_REQUEST):
                    self._startup = False  # the StartupMessage; typed messages follow
                continue
            if len(self._buffer) < 5:
                return
            kind = chr(self._buffer[0])
            (length,) = struct.unpack("!i", self._buffer[1:5])
            if len(self._buffer) < 1 + length:
                return
            payload = bytes(self._buffer[5 : 1 + length])
            del self._buffer[: 1 + length]
            self._message(kind, payload)

    def _message(self, kind: str, payload: bytes) -> None:
        if kind == "Q":
            self._log.trips.append(RoundTrip("query", _cstring(payload, 0)[0]))
        elif kind == "P":
            name, offset = _cstring(payload, 0)
            query, _ = _cstring(payload, offset)
            self._statements[name] = query
            self._batch.append(("P", query))
        elif kind == "B":
            _portal, offset = _cstring(payload, 0)
            statement, _ = _cstring(payload, offset)
            self._batch.append(("B", self._statements.get(statement, f"<statement {statement}>")))
        elif kind == "E":
            self._batch.append(("E", ""))
        elif kind == "C" and payload[:1] == b"S":  # Close statement
            name, _ = _cstring(payload, 1)
            self._statements.pop(name, None)
        elif kind == "S":
            self._log.trips.append(self._close_batch())
            self._batch = []

    def _close_batch(self) -> RoundTrip:
        bound = [query for kind, query in self._batch if kind == "B"]
        parsed = [query for kind, query in self._batch if kind == "P"]
        executes = any(kind == "E" for kind, _ in self._batch)
        if executes:
            return RoundTrip("execute", (bound or parsed or [""])[0])
        if parsed:
            return RoundTrip("prepare", parsed[0])
        return RoundTrip("execute", "<sync>")


def _cstring(payload: bytes, offset: int) -> tuple[str, int]:
    end = payload.index(b"\x00", offset)
    return payload[offset:end].decode("utf-8", "replace"), end + 1


class CountingProxy:
    """Listen on 127.0.0.1:<free port>, forward to PostgreSQL, log the client's round trips."""

    def __init__(self, upstream_host: str, upstream_port: int, delay_ms: float = 0.0) -> None:
        if upstream_host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the counting proxy only forwards to the local machine")
        if delay_ms < 0:
            raise ValueError("delay_ms must be >= 0")
        self.upstream = (upstream_host, upstream_port)
        self.delay_ms = delay_ms
        self.log = WireLog()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> CountingProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.log.connections += 1
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(*self.upstream), 10
            )
        except (OSError, TimeoutError):
            writer.close()
            return
        parser = _ClientParser(self.log)
        tasks = [
            asyncio.create_task(self._pump(reader, up_writer, parser)),
            asyncio.create_task(self._pump(up_reader, writer, None)),
        ]
        self._tasks.update(tasks)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.difference_update(tasks)
            for w in (writer, up_writer):
                w.close()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        parser: _ClientParser | None,
    ) -> None:
        if self.delay_ms:
            await self._delayed_pump(reader, writer, parser)
            return
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                data = await asyncio.wait_for(reader.read(_READ_SIZE), _PUMP_TIMEOUT_S)
                if not data:
                    return
                if parser is not None:
                    parser.feed(data)
                writer.write(data)
                await writer.drain()

    async def _delayed_pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        parser: _ClientParser | None,
    ) -> None:
        """Read as chunks come; deliver each `delay_ms / 2` after it arrived, in order."""
        loop = asyncio.get_running_loop()
        half_s = self.delay_ms / 2000
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                if not data:
                    return
                writer.write(data)
                await writer.drain()

        delivering = asyncio.create_task(deliver())
        try:
            with contextlib.suppress(ConnectionError, OSError):
                while True:
                    data = await asyncio.wait_for(reader.read(_READ_SIZE), _PUMP_TIMEOUT_S)
                    if parser is not None and data:
                        parser.feed(data)
                    queue.put_nowait((loop.time() + half_s, data))
                    if not data:
                        break
                await delivering
        finally:
            delivering.cancel()
            await asyncio.gather(delivering, return_exceptions=True)
