"""The client's bulkhead lanes over real TCP: each lane keeps one connection alive, so
sequential calls share one connection and concurrent calls never open more than the bulkhead
allows; `aclose()` closes them all."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from facetoface.tavus import TavusClient
from tests.support.eventually import eventually

BODY = json.dumps({"conversation_id": "c1", "status": "active"}).encode()


@dataclass
class KeepAliveServer:
    """A minimal HTTP/1.1 server that counts the connections it accepts and closes."""

    delay_s: float = 0.0
    accepted: int = 0
    closed: int = 0
    open_now: int = 0
    peak: int = 0
    port: int = 0
    _server: asyncio.Server | None = field(default=None, repr=False)

    async def start(self) -> KeepAliveServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open_now += 1
        self.peak = max(self.peak, self.open_now)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(BODY)}\r\n\r\n".encode()
                    + BODY
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            self.closed += 1
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[KeepAliveServer]:
    running = await KeepAliveServer().start()
    yield running
    await running.stop()


def _client(server: KeepAliveServer, **kwargs: object) -> TavusClient:
    return TavusClient(f"http://127.0.0.1:{server.port}/v2", "tvsk_test", **kwargs)  # type: ignore[arg-type]


async def test_sequential_calls_share_one_connection(server: KeepAliveServer) -> None:
    client = _client(server, max_concurrency=8)
    for _ in range(25):
        assert (await client.get_conversation("c1")).conversation_id == "c1"
    assert server.accepted == 1
    await client.aclose()


async def test_concurrent_calls_open_at_most_the_bulkhead(server: KeepAliveServer) -> None:
    server.delay_s = 0.05
    client = _client(server, max_concurrency=3, bulkhead_timeout_s=5.0)
    results = await asyncio.gather(*(client.get_conversation("c1") for _ in range(10)))
    assert [r.conversation_id for r in results] == ["c1"] * 10
    assert server.peak == 3
    assert server.accepted == 3  # the waiting calls reused the lanes' connections
    assert client.bulkhead == (0, 3)
    await client.aclose()


async def test_aclose_closes_every_connection(server: KeepAliveServer) -> None:
    server.delay_s = 0.02
    client = _client(server, max_concurrency=4)
    await asyncio.gather(*(client.get_conversation("c1") for _ in range(4)))
    assert server.open_now == 4
    await client.aclose()
    await eventually(lambda: server.open_now == 0, what="the server saw every connection close")
    assert client.is_closed
    with pytest.raises(RuntimeError, match="closed"):
        await client.get_conversation("c1")
