"""Issue 17.1: a healthy database connection whose descriptor is 1024 or above is never judged
dead, and whatever the pool raises is classified.

Found the way a busy replica gets there: 1,100 idle TCP connections to the service push its
descriptors past 1,024; the database connections opened after that get high descriptors; a
liveness check built on `select()` (which cannot take one ≥ 1024) judged every one of them
dead, the pool gave up ("This connection is closed") and the reads were 500s (54 of them).
"""

from __future__ import annotations

import asyncio
import resource
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.conftest import RunningService
from tests.support.factories import create_user

IDLE = 1100
READS = 50


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    # The idle sockets are held (not refused, not timed out) while the reads run: this test is
    # about the descriptors they use up, not about the server's bounds (test_connection_bounds).
    return {"http_max_connections": 4 * IDLE, "http_idle_timeout_seconds": 300.0}


@pytest.fixture
def descriptors() -> None:
    """Room for the idle sockets at both ends (this process serves them too) and more."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * IDLE + 1024
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= 2 * IDLE + 256, "raise `ulimit -n`"


@pytest.fixture
async def user(service: RunningService) -> uuid.UUID:
    return await create_user(service.db)  # before the descriptors run high


@pytest.fixture
async def idle_connections(
    service: RunningService, user: uuid.UUID, descriptors: None
) -> AsyncIterator[int]:
    host, port = service.url.removeprefix("http://").split(":")
    writers: list[asyncio.StreamWriter] = []
    try:
        for _ in range(IDLE):
            writers.append((await asyncio.open_connection(host, int(port)))[1])
        yield len(writers)
    finally:
        for writer in writers:
            writer.close()


async def test_reads_after_1100_idle_connections_are_never_500(
    service: RunningService, user: uuid.UUID, idle_connections: int
) -> None:
    engine = service.db.engine
    # The pool's connections were opened with low descriptors; from now on new ones are
    # opened (with high descriptors) and handed out.
    await engine.dispose()
    opened: list[int] = []

    def record(dbapi_connection: Any, _record: Any) -> None:
        opened.append(dbapi_connection.driver_connection.pgconn.socket)

    event.listen(engine.sync_engine, "connect", record)
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:  # over TCP
            answers = await asyncio.gather(
                *(client.get("/v1/sessions", headers=service.auth(user)) for _ in range(READS))
            )
            # One after another too: each draws an idle pooled (high-descriptor) connection.
            for _ in range(10):
                answers.append(await client.get("/v1/sessions", headers=service.auth(user)))
    finally:
        event.remove(engine.sync_engine, "connect", record)

    statuses = [answer.status_code for answer in answers]
    assert max(opened) >= 1024, opened  # the case at hand did occur
    assert statuses.count(500) == 0, statuses
    assert statuses == [200] * len(answers), {s: statuses.count(s) for s in set(statuses)}
