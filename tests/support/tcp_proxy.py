"""A controllable TCP proxy for chaos tests: the network between a client and a server, broken
on command.

`TcpProxy` listens on 127.0.0.1 (an ephemeral port that stays the proxy's for its whole life)
and forwards every connection to one upstream server — PostgreSQL in the tests. At any moment
another thread can switch what the network does:

==============  =================================================================================
`forward`       normal forwarding (also what `restore()` returns to)
`refuse`        new connections are refused (nothing listens: the kernel answers RST, the client
                sees ECONNREFUSED); open connections keep working
`reset`         every open connection is reset (RST to both ends, SO_LINGER 0), and so is every
                new one, until the mode changes
`blackhole`     the hung network: no byte is forwarded either way on any connection; new
                connections are accepted and then stay silent. A connection that was blackholed
                never carries another byte: leaving the mode resets it (its requests are stale
                and its client has given up), so nothing held back ever reaches the server late
`delay(ms)`     every chunk is delivered `ms` later than it arrived, half on the way up and half
                on the way down: each request/answer round trip takes `ms` longer; chunks keep
                their order and pipelined ones overlap, as on a long link
==============  =================================================================================

The proxy runs its own asyncio loop in a background thread, so it keeps serving while the
test's own loop is blocked or busy, and it serves other processes just as well (e.g. `serve`
replicas started as subprocesses with a database URL from `proxy.url_for(url)`). Every control
method is thread-safe and returns once the new mode is in force: after `proxy.blackhole()`
returns, not one more byte gets through.

    with TcpProxy(5432).start() as proxy:
        url = proxy.url_for(database_url)
        ...
        with proxy.blackholed():
            ...  # clients time out here
        proxy.stats()  # connections accepted, bytes each way, resets sent, ...

The port is held for the proxy's life by a bound, never-listening socket (SO_REUSEPORT), so
while refusing it cannot be taken by another process and `restore()` listens on it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import struct
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")

_READ_SIZE = 65536
_CONTROL_TIMEOUT_S = 10.0
_LINGER_RST = struct.pack("ii", 1, 0)


class Mode(enum.StrEnum):
    """What the proxy does with the traffic (see the module docstring)."""

    forward = "forward"
    refuse = "refuse"
    reset = "reset"
    blackhole = "blackhole"
    delay = "delay"


@dataclass(frozen=True, slots=True)
class ProxyStats:
    """Counters since the proxy started (a snapshot; the proxy keeps counting)."""

    mode: Mode
    delay_ms: float
    accepted: int  # connections accepted (refused ones never reach the proxy)
    upstream_failures: int  # accepted, but the upstream server could not be reached
    active: int  # connections open now
    bytes_up: int  # client → server, forwarded
    bytes_down: int  # server → client, forwarded
    bytes_held: int  # read while blackholed: never forwarded
    resets_sent: int  # sockets closed with RST (each end of a connection counts)


@dataclass(eq=False)
class _Link:
    """One client connection and, unless it was born blackholed, its upstream connection."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    frozen: bool = False
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class TcpProxy:
    """A TCP proxy on 127.0.0.1 in front of `upstream_host:upstream_port`; see the module."""

    def __init__(
        self,
        upstream_port: int,
        upstream_host: str = "127.0.0.1",
        *,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.connect_timeout_s = connect_timeout_s
        self._mode = Mode.forward
        self._delay_s = 0.0
        self._counts = dict.fromkeys(
            (
                "accepted",
                "upstream_failures",
                "bytes_up",
                "bytes_down",
                "bytes_held",
                "resets_sent",
            ),
            0,
        )
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._placeholder: socket.socket | None = None
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # --- life cycle ---------------------------------------------------------------------
    def start(self) -> Self:
        """Bind the port, start the proxy's thread and loop; returns once it listens."""
        if self._thread is not None:
            raise RuntimeError("the proxy is already started")
        placeholder = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        placeholder.bind(("127.0.0.1", 0))
        self._placeholder = placeholder
        self._port = int(placeholder.getsockname()[1])
        loop = asyncio.new_event_loop()
        self._loop = loop
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"tcp-proxy:{self._port}", daemon=True)
        self._thread.start()
        if not ready.wait(_CONTROL_TIMEOUT_S):
            raise RuntimeError("the proxy's loop did not start")
        self._call(self._listen())
        return self

    def close(self) -> None:
        """Stop listening, close every connection (gracefully), stop the thread. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            with contextlib.suppress(Exception):
                self._call(self._shutdown())
            loop.call_soon_threadsafe(loop.stop)
        thread.join(_CONTROL_TIMEOUT_S)
        if not thread.is_alive():
            loop.close()
        if self._placeholder is not None:
            self._placeholder.close()
        self._loop = self._thread = self._placeholder = None

    def __enter__(self) -> Self:
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- where it is --------------------------------------------------------------------
    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the proxy is not started")
        return self._port

    def url_for(self, url: str) -> str:
        """`url` (e.g. a PostgreSQL URL of the upstream server) with host and port replaced by
        the proxy's; user, password, path and query kept."""
        parts = urlsplit(url)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@{self.host}:{self.port}" if auth else f"{self.host}:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    # --- control (thread-safe) ----------------------------------------------------------
    @property
    def mode(self) -> Mode:
        return self._mode

    def set_mode(self, mode: Mode | str, delay_ms: float = 0.0) -> None:
        """Switch to `mode` (with `delay_ms` for `delay`); in force when this returns."""
        mode = Mode(mode)
        if delay_ms < 0:
            raise ValueError("delay_ms must be >= 0")
        if mode is not Mode.delay and delay_ms:
            raise ValueError("delay_ms is for Mode.delay only")
        self._call(self._switch(mode, delay_ms / 1000))

    def forward(self) -> None:
        self.set_mode(Mode.forward)

    def restore(self) -> None:
        """Back to normal forwarding (blackholed connections are reset, see the module)."""
        self.set_mode(Mode.forward)

    def refuse(self) -> None:
        self.set_mode(Mode.refuse)

    def reset(self) -> None:
        self.set_mode(Mode.reset)

    def blackhole(self) -> None:
        self.set_mode(Mode.blackhole)

    def delay(self, ms: float) -> None:
        self.set_mode(Mode.delay, ms)

    @contextlib.contextmanager
    def refused(self) -> Iterator[Self]:
        with self._temporarily(Mode.refuse):
            yield self

    @contextlib.contextmanager
    def resetting(self) -> Iterator[Self]:
        with self._temporarily(Mode.reset):
            yield self

    @contextlib.contextmanager
    def blackholed(self) -> Iterator[Self]:
        with self._temporarily(Mode.blackhole):
            yield self

    @contextlib.contextmanager
    def delayed(self, ms: float) -> Iterator[Self]:
        with self._temporarily(Mode.delay, ms):
            yield self

    @contextlib.contextmanager
    def _temporarily(self, mode: Mode, delay_ms: float = 0.0) -> Iterator[None]:
        self.set_mode(mode, delay_ms)
        try:
            yield
        finally:
            self.restore()

    def stats(self) -> ProxyStats:
        """A snapshot of the counters."""
        return self._call(self._snapshot())

    # --- inside the proxy's loop --------------------------------------------------------
    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        if loop is None or not loop.is_running():
            coro.close()
            raise RuntimeError("the proxy is not running")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("control the proxy from another thread, not from its own loop")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(_CONTROL_TIMEOUT_S)

    async def _snapshot(self) -> ProxyStats:
        return ProxyStats(
            mode=self._mode,
            delay_ms=self._delay_s * 1000,
            active=len(self._links),
            **self._counts,
        )

    async def _listen(self) -> None:
        if self._server is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", self._port))
        self._server = await asyncio.start_server(self._on_accept, sock=sock, backlog=512)

    async def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            # Connections waiting in the backlog are reset with the socket, as a refusal.
            server.close()

    async def _switch(self, mode: Mode, delay_s: float) -> None:
        previous = self._mode
        self._mode, self._delay_s = mode, delay_s
        if mode is Mode.refuse:
            await self._stop_listening()
        else:
            await self._listen()
        if mode is Mode.reset:
            for link in list(self._links):
                self._reset_link(link)
        elif mode is Mode.blackhole:
            for link in self._links:
                link.frozen = True
        elif previous is Mode.blackhole:
            for link in [link for link in self._links if link.frozen]:
                self._reset_link(link)

    async def _shutdown(self) -> None:
        await self._stop_listening()
        for link in list(self._links):
            self._close_link(link)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._handlers:
            # Never cancelled (asyncio's server reports that as an error): every link is closed,
            # so they return at once, or when a pending upstream connect gives up.
            await asyncio.wait(list(self._handlers), timeout=self.connect_timeout_s + 1)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _rst(self, writer: asyncio.StreamWriter | None) -> None:
        if writer is None or writer.transport.is_closing():
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
        writer.transport.abort()
        self._counts["resets_sent"] += 1

    def _reset_link(self, link: _Link) -> None:
        self._rst(link.client)
        self._rst(link.upstream)
        self._forget(link)

    def _close_link(self, link: _Link) -> None:
        for writer in (link.client, link.upstream):
            if writer is not None and not writer.transport.is_closing():
                writer.close()
        self._forget(link)

    def _forget(self, link: _Link) -> None:
        self._links.discard(link)
        link.closed.set()
        current = asyncio.current_task()
        for task in link.tasks:
            if task is not current:
                task.cancel()

    async def _on_accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._handlers.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._counts["accepted"] += 1
        if self._mode is Mode.reset:
            self._rst(writer)
            return
        link = _Link(client=writer)
        self._links.add(link)
        if self._mode is Mode.blackhole:
            link.frozen = True  # accepted, then silent; reset when the mode changes
            await link.closed.wait()
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(*self.upstream), self.connect_timeout_s
            )
        except (OSError, TimeoutError):
            self._counts["upstream_failures"] += 1
            self._reset_link(link)
            return
        if link.closed.is_set():  # reset or blackholed-then-restored while connecting
            self._rst(up_writer)
            return
        link.upstream = up_writer  # (blackholed meanwhile: already frozen by _switch)
        link.tasks = [
            self._spawn(self._pump(link, reader, up_writer, "bytes_up")),
            self._spawn(self._pump(link, up_reader, writer, "bytes_down")),
        ]
        await link.closed.wait()

    async def _pump(
        self,
        link: _Link,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        counter: str,
    ) -> None:
        """One direction: read chunks as they come, deliver each when due, in order."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        deliver = self._spawn(self._deliver(link, queue, writer, counter))
        link.tasks.append(deliver)
        if link.closed.is_set():  # closed before this task first ran
            deliver.cancel()
            return
        loop = asyncio.get_running_loop()
        try:
            while not link.closed.is_set():
                if link.frozen:
                    await link.closed.wait()  # stop reading: held bytes stay in the kernel
                    return
                data = await reader.read(_READ_SIZE)
                if link.frozen:
                    self._counts["bytes_held"] += len(data)
                    continue
                if not data:  # EOF: deliver what is queued, then close both ends
                    queue.put_nowait((loop.time(), b""))
                    return
                queue.put_nowait((loop.time() + self._delay_s / 2, data))
        except (ConnectionError, OSError):
            if not link.closed.is_set():
                self._reset_link(link)  # a reset on one side reaches the other as a reset

    async def _deliver(
        self,
        link: _Link,
        queue: asyncio.Queue[tuple[float, bytes]],
        writer: asyncio.StreamWriter,
        counter: str,
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if link.frozen or link.closed.is_set():
                    self._counts["bytes_held"] += len(data)
                    continue
                if not data:
                    self._close_link(link)
                    return
                writer.write(data)
                self._counts[counter] += len(data)
                await writer.drain()
        except (ConnectionError, OSError):
            if not link.closed.is_set():
                self._reset_link(link)
