"""A pooled connection the server closed while it sat idle is noticed before anything is sent
on it (its socket already holds the server's goodbye) and replaced: the request that draws it
from the pool succeeds, with no 503 and no retry by the client."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from tests.conftest import RunningService
from tests.support.factories import create_user

on_postgres = pytest.mark.parametrize("database_settings", ["postgresql"], indirect=True)


async def _terminate_service_backends(service: RunningService) -> int:
    """Terminate every other client connection to the service's database (it is this
    test's own fresh database): the pool's idle connections."""
    url = service.settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        cursor = await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        )
        return len(await cursor.fetchall())


@on_postgres
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
    await asyncio.sleep(0.2)  # the server's goodbye reaches the idle sockets

    # Every pooled connection is dead now; each request draws one and must not notice.
    for _ in range(6):
        answer = await service.client.get("/v1/sessions", headers=headers)
        assert answer.status_code == 200, answer.text
