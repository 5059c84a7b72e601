"""More instances of the service, in the test's process, for tests about several of them: the
replicas of one deployment on one database, or a twin deployment on another.

Each is an app of its own — its own services, database pool, uvicorn server on its own socket
and so its own callback URLs — built the way the `service` fixture builds its app
(`ServiceHosts`), and closed when the block ends. What the replicas share is what real ones
share: the database and Tavus. A subprocess (`tests/support/replicas.py`) is only needed
where the process itself is the point: one killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from facetoface.app_state import AppState
from tavus_sim import SimServer
from tests.conftest import ServiceHost, ServiceHosts, app_role_url, service_settings


@dataclass
class Instance:
    """One more instance of the service, and a client for it over TCP."""

    host: ServiceHost
    client: httpx.AsyncClient

    @property
    def url(self) -> str:
        return self.host.url

    @property
    def state(self) -> AppState:
        state: AppState = self.host.app.state.services
        return state


@contextlib.asynccontextmanager
async def instances(
    hosts: ServiceHosts, sim: SimServer, owner_url: str, count: int, **overrides: Any
) -> AsyncIterator[list[Instance]]:
    """`count` instances on the database of `owner_url` (connecting as the application role,
    as the `service` fixture's does) and the simulator `sim`, with settings `overrides`."""
    values = service_settings(sim, **overrides)
    values["database_url"] = app_role_url(owner_url)
    started: list[Instance] = []
    try:
        for _ in range(count):
            host = await hosts.get(values, owner_url, cache=False)
            started.append(Instance(host, httpx.AsyncClient(base_url=host.url, timeout=30)))
        yield started
    finally:
        for instance in started:
            await instance.client.aclose()
            await instance.host.close()
