"""A pooled connection the server closed while it sat idle is noticed before anything is sent
on it (its socket already holds the server's goodbye) and replaced: the request that draws it
from the pool succeeds, with no 503 and no retry by the client."""

from __future__ import annotations

import asyncio

import psycopg

from tests.conftest import RunningService
from tests.support.eventually import eventually
from tests.support.factories import create_user

_OTHERS = (
    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
    "AND backend_type = 'client backend'"
)


async def _terminate_service_backends(service: RunningService) -> int:
    """Terminate every other client connection to the worker's database: the pool's idle
    connections (once their backends are gone, the server's goodbye is in their sockets)."""
    url = service.settings.database_url
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        cursor = await admin.execute(f"SELECT pg_terminate_backend(pid) {_OTHERS}".encode())
        terminated = len(await cursor.fetchall())

        async def gone() -> bool:
            left = await (await admin.execute(f"SELECT count(*) {_OTHERS}".encode())).fetchone()
            return left is not None and left[0] == 0

        await eventually(gone, what="the terminated backends exited")
    return terminated


async def test_idle_connections_the_server_closed_are_replaced_unseen(
    service: RunningService,
) -> None:
    user = await create_user(service.db)
    headers = service.auth(user)
    # Several requests at once: the pool holds several idle connections afterwards.
    warm = await asyncio.gather(
        *(service.client.get("/v1/sessions", headers=headers) for _ in range(4))
    )
    assert [r.status_code for r in warm] == [200] * 4

    assert await _terminate_service_backends(service) >= 1

    # Every pooled connection is dead now; each request draws one and must not notice.
    for _ in range(6):
        answer = await service.client.get("/v1/sessions", headers=headers)
        assert answer.status_code == 200, answer.text
