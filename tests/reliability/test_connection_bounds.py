"""Issue 17.2: connections are bounded by the server itself, over real sockets.

Found the way an adversary finds it: connections that send nothing stayed open for good
(9,900 of 9,900 after 40 s), slow bodies likewise, the head cap was skipped on a keep-alive
connection's second request, and a client that hung up mid-body was logged and counted as a
500 on the callback route (feeding the critical `FacetofaceCallbacksFailing` alert). Each test
speaks raw HTTP/1.1 to the service's socket (uvicorn with `serve`'s protocol).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from facetoface.callbacks.endpoints import CALLBACKS_PREFIX
from facetoface.compat.endpoints import WEBHOOK_PATH
from tests.conftest import RunningService
from tests.support.eventually import eventually
from tests.support.sessions import start_quiet

#: A guard against a hang (never a timed assertion): the server's own bounds are 1-2 s here.
GUARD_S = 30.0

CALLBACK_ROUTE = f"{CALLBACKS_PREFIX}tavus/{{mentor_conversation_id}}/{{token}}"


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {
        "http_idle_timeout_seconds": 1.0,
        "http_head_timeout_seconds": 1.0,
        "http_body_timeout_seconds": 1.5,
    }


class Raw:
    """One raw TCP connection to the service."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def until_closed(self) -> bytes:
        """Everything the server sends until it closes the connection."""
        return await asyncio.wait_for(self.reader.read(), GUARD_S)

    async def answer(self) -> tuple[int, dict[str, str], bytes]:
        """One response: status, headers, body (by content-length)."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), GUARD_S)
        status, headers = _parse(head)
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(self.reader.readexactly(length), GUARD_S)
        return status, headers, body

    def close(self) -> None:
        self.writer.close()


def _parse(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers


async def connect(service: RunningService) -> Raw:
    host, port = service.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    return Raw(reader, writer)


@pytest.fixture
async def raw(service: RunningService) -> AsyncIterator[Raw]:
    connection = await connect(service)
    yield connection
    connection.close()


def counted(route: str, status: int, method: str = "POST") -> float:
    value = REGISTRY.get_sample_value(
        "facetoface_http_requests_total",
        {"method": method, "route": route, "status": str(status)},
    )
    return value or 0.0


def refused(reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "facetoface_http_connections_refused_total", {"reason": reason}
    )
    return value or 0.0


async def test_connections_that_send_nothing_are_closed(service: RunningService) -> None:
    idle = [await connect(service) for _ in range(200)]
    try:
        closed = await asyncio.gather(*(c.until_closed() for c in idle))
    finally:
        for connection in idle:
            connection.close()
    # Closed by the server, silently (nothing was asked).
    assert closed == [b""] * len(idle)


async def test_a_keep_alive_connection_left_idle_is_closed(raw: Raw) -> None:
    await raw.send(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
    status, headers, _ = await raw.answer()
    assert status == 200
    assert headers.get("connection") != "close"
    # After HTTP_IDLE_TIMEOUT_SECONDS (1 s here), not uvicorn's own keep-alive default (5 s).
    assert await asyncio.wait_for(raw.until_closed(), timeout=4.0) == b""


async def test_a_head_that_does_not_arrive_in_time_gets_408_and_a_close(raw: Raw) -> None:
    before = refused("head_timeout")
    await raw.send(b"GET /v1/sessions HTTP/1.1\r\nhost: t\r\nx-slow: ")  # and nothing more
    answer = await raw.until_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert json.loads(body)["code"] == "request_timeout"
    assert refused("head_timeout") == before + 1


async def test_a_body_that_does_not_arrive_in_time_gets_408_and_a_close(
    service: RunningService, raw: Raw
) -> None:
    before, errors = counted(WEBHOOK_PATH, 408), counted(WEBHOOK_PATH, 500)
    await raw.send(
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
        'content-length: 100\r\n\r\n{"conver'.encode()
    )
    answer = await raw.until_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert b"connection: close" in head.lower()
    assert json.loads(body)["code"] == "request_timeout"
    # Logged and counted as what it was: a 408 of that route, no 500.
    assert counted(WEBHOOK_PATH, 408) == before + 1
    assert counted(WEBHOOK_PATH, 500) == errors


async def test_the_head_cap_holds_on_every_request_of_a_connection(
    service: RunningService, raw: Raw
) -> None:
    cap = service.settings.http_max_header_bytes
    await raw.send(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
    status, _, _ = await raw.answer()
    assert status == 200
    # The second request on the same connection: a head past the cap, in one write.
    bomb = b"GET /v1/sessions HTTP/1.1\r\nhost: t\r\nauthorization: Bearer "
    await raw.send(bomb + b"a" * (cap + 1024) + b"\r\n\r\n")
    answer = await raw.until_closed()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


async def test_a_client_that_hangs_up_mid_body_is_counted_aborted_never_500(
    service: RunningService, caplog: pytest.LogCaptureFixture
) -> None:
    started = await start_quiet(service)
    for path, route in ((started.callback_path, CALLBACK_ROUTE), (WEBHOOK_PATH, WEBHOOK_PATH)):
        before, errors = counted(route, 499), counted(route, 500)
        connection = await connect(service)
        await connection.send(
            f"POST {path} HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
            "content-length: 5000\r\n\r\n".encode()
            + b'{"event_type": "application.transcription_ready", "properties": {"tra'
        )
        connection.close()  # half a body, then gone

        await eventually(lambda r=route, b=before: counted(r, 499) == b + 1, what=route)
        assert counted(route, 500) == errors
    # Logged as aborted, never as an error with a traceback.
    assert not [r for r in caplog.records if "unhandled_error" in r.getMessage()]


class TestConnectionCap:
    @pytest.fixture
    def service_overrides(self) -> dict[str, Any]:
        # Idle connections are kept long enough to fill the cap.
        return {"http_max_connections": 16, "http_idle_timeout_seconds": 60.0}

    async def test_a_connection_beyond_the_cap_is_answered_503_and_closed(
        self, service: RunningService
    ) -> None:
        held = [await connect(service) for _ in range(16)]
        extra: list[Raw] = []
        try:

            async def one_more_is_refused() -> bool:
                connection = await connect(service)
                extra.append(connection)
                await connection.send(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
                status, headers, body = await connection.answer()
                if status != 503:
                    return False  # accepted under the cap (the others not yet counted)
                assert headers["retry-after"] == "1"
                assert headers["connection"] == "close"
                assert json.loads(body)["code"] == "too_many_connections"
                assert await connection.until_closed() == b""
                return True

            await eventually(one_more_is_refused, what="a connection beyond the cap refused")
        finally:
            for connection in held + extra:
                connection.close()

        async def served_again() -> bool:
            connection = await connect(service)
            try:
                await connection.send(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
                return (await connection.answer())[0] == 200
            finally:
                connection.close()

        await eventually(served_again, what="served once the connections went")
