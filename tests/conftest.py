"""Shared fixtures: databases (SQLite and PostgreSQL), the Tavus simulator, the service.

Integration tests take the `service` fixture, parametrised over both databases; the service
runs under uvicorn on a real socket and calls the simulator over real HTTP, and the simulator
calls the service's callback URLs back the same way. On PostgreSQL the service connects as the
application login role (`facetoface_app`: no superuser, no BYPASSRLS, owns nothing), so every
integration test also proves the app works under row-level security (docs/security.md).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import event, text

from facetoface.app import create_app
from facetoface.auth.dev_issuer import mint_token
from facetoface.cli import server_config
from facetoface.config import Settings
from facetoface.db import Database, Identity, Role, run_migrations
from tests.support.statements import StatementCounter
from facetoface.models import Base
from facetoface.observability.logging import configure_logging
from facetoface.reconcile.service import Reconciler
from tavus_sim import SimConfig, SimServer
from tests.support.pgbouncer import find_pgbouncer, pgbouncer
from tests.support.postgres import (
    APP_ROLE,
    PostgresServer,
    create_app_role,
    fresh_database,
    postgres_server,
)

IN_CI = os.environ.get("CI", "").lower() == "true"

#: Fixtures shared by test packages that are not conftest files.
pytest_plugins = ["tests.support.browser", "tests.support.chaos"]


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("ENVIRONMENT", "test")
    # As `serve` does: plain tracebacks, and only warnings and errors in test output.
    configure_logging("WARNING", "console", cache=False)


# --- databases ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    try:
        with postgres_server() as server:
            yield server
    except Exception as exc:  # no server and no way to start one
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI=true: {exc}")
        pytest.skip(f"PostgreSQL TESTS SKIPPED: {exc}")


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def pg_database_url(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh, migrated database for this test run (this xdist worker)."""
    with fresh_database(pg_server, _worker()) as name:
        url = pg_server.url(name)
        run_migrations(_base_settings(database_url=url))
        create_app_role(pg_server, name)
        yield url


def app_role_url(owner_url: str) -> str:
    """The same database, connecting as the application login role."""
    parts = urlsplit(owner_url)
    return urlunsplit(parts._replace(netloc=f"{APP_ROLE}@{parts.hostname}:{parts.port}"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test gets a copy."""
    data_dir = tmp_path_factory.mktemp("sqlite-template")
    run_migrations(_base_settings(data_dir=data_dir))
    return data_dir / "facetoface.db"


def _base_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"environment": "test", "log_level": "WARNING"}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


#: Every table a test may fill (the installation's identity, written by the migration, stays).
_TABLES = ", ".join(
    t.name for t in reversed(Base.metadata.sorted_tables) if t.name != "facetoface_installation"
)


@pytest.fixture(scope="session")
def pgbouncer_port(pg_server: PostgresServer) -> Iterator[int]:
    """PgBouncer in transaction mode in front of the test server."""
    if find_pgbouncer() is None:
        reason = "pgbouncer is not installed (.ci/run installs Debian's `pgbouncer`)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(f"PGBOUNCER TESTS SKIPPED: {reason}")
    with pgbouncer(pg_server) as port:
        yield port


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("pgbouncer", marks=pytest.mark.postgres),
    ]
)
def database_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings overrides for a clean, migrated database of the parametrised kind: SQLite,
    PostgreSQL directly, or PostgreSQL through PgBouncer in transaction mode."""
    return clean_database_settings(request)


def clean_database_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The `database_settings` of `request.param` (`sqlite`, `postgresql`, `pgbouncer`), its
    database emptied (for test modules that override the fixture's parameters)."""
    if request.param == "sqlite":
        tmp_path: Path = request.getfixturevalue("tmp_path")
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copy(template, tmp_path / "facetoface.db")
        return {"data_dir": tmp_path}
    url = request.getfixturevalue("pg_database_url")

    async def truncate() -> None:
        db = Database(_base_settings(database_url=url))
        try:
            async with db.transaction() as session:
                await session.execute(text(f"TRUNCATE {_TABLES} CASCADE"))
        finally:
            await db.dispose()

    asyncio.run(truncate())
    if request.param == "pgbouncer":
        port = request.getfixturevalue("pgbouncer_port")
        server: PostgresServer = request.getfixturevalue("pg_server")
        pooled = url.replace(f"{server.host}:{server.port}/", f"127.0.0.1:{port}/")
        return {"database_url": pooled, "db_pooler_mode": "transaction"}
    return {"database_url": url}


# --- Tavus simulator ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def sim_server() -> Iterator[SimServer]:
    with SimServer(SimConfig(replica_join_delay_ms=20)) as server:
        yield server


@pytest.fixture
def sim(sim_server: SimServer) -> Iterator[SimServer]:
    """The simulator, reset before each test."""
    sim_server.reset()
    yield sim_server
    sim_server.reset()


# --- the service -------------------------------------------------------------------------
@dataclass
class RunningService:
    url: str
    client: httpx.AsyncClient
    settings: Settings
    db: Database
    sim: SimServer
    app: FastAPI

    @property
    def reconciler(self) -> Reconciler:
        reconciler: Reconciler = self.app.state.reconciler
        return reconciler

    @property
    def name_prefix(self) -> str:
        """What this installation's conversation names start with (conversations/names.py)."""
        prefix: str = self.app.state.session_service.name_prefix
        return prefix

    def token(self, user_id: uuid.UUID, **kwargs: Any) -> str:
        return mint_token(self.settings, user_id=user_id, **kwargs)

    def auth(self, user_id: uuid.UUID) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id)}"}

    def count_statements(self) -> StatementCounter:
        return StatementCounter(self.db.engine)


class HarnessDatabase(Database):
    """`service.db` on PostgreSQL: the app's engine, connected as the application login role,
    for every transaction with an identity or a role (what the app itself runs); the tables'
    owner for a plain `transaction()` — test setup and inspection, which the login role rightly
    cannot do. Statements on the owner's connection are reported to the app engine's listeners,
    so `StatementCounter(service.db.engine)` still sees what a test runs through `service.db`."""

    def __init__(self, app_db: Database, owner: Database) -> None:
        super().__init__(app_db.settings, engine=app_db.engine)
        self.owner = owner
        event.listen(owner.engine.sync_engine, "before_cursor_execute", self._report)

    def _report(self, *args: Any) -> None:
        self.engine.sync_engine.dispatch.before_cursor_execute(*args)

    @asynccontextmanager
    async def transaction(
        self, identity: Identity | None = None, *, role: Role | None = None
    ) -> AsyncIterator[Any]:
        if identity is None and role is None:
            async with self.owner.transaction() as session:
                yield session
            return
        async with super().transaction(identity, role=role) as session:
            yield session


def _bound_socket() -> socket.socket:
    # IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections (else ~40 ms per
    # request from delayed ACKs).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    """Override in a test module to change the service's settings."""
    return {}


@pytest.fixture
async def service(
    database_settings: dict[str, Any], sim: SimServer, service_overrides: dict[str, Any]
) -> AsyncIterator[RunningService]:
    """The service under uvicorn on a real socket, talking to the simulator over HTTP."""
    sock = _bound_socket()
    port = sock.getsockname()[1]
    values: dict[str, Any] = {
        **database_settings,
        "public_base_url": f"http://127.0.0.1:{port}",
        "tavus_api_key": sim.config.api_key,
        "tavus_base_url": sim.api_url,
        "tavus_default_persona_id": "p0000default",
        "tavus_default_replica_id": "r0000default",
        "tavus_read_timeout_seconds": 2.0,
        "tavus_total_timeout_seconds": 3.0,
        "tavus_retry_timeout_seconds": 3.0,
        # Tests run reconciler passes themselves (`app.state.reconciler.run_once()`).
        "reconcile_interval_seconds": 0,
        # The fuzzers read the API's map (production serves none by default).
        "openapi_enabled": True,
    }
    owner_url = database_settings.get("database_url")
    overrides = dict(service_overrides)
    # `database_url_through`: the service reaches the same database another way (a proxy).
    service_url = overrides.pop("database_url_through", owner_url)
    if service_url:
        values["database_url"] = app_role_url(service_url)
    values.update(overrides)
    settings = _base_settings(**values)
    app = create_app(settings)
    server = uvicorn.Server(server_config(app, settings, "127.0.0.1", port))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            sock.close()
            task.result()
            raise RuntimeError("the service stopped during startup")
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{port}"
    db: Database = app.state.db
    owner = (
        Database(
            _base_settings(
                database_url=owner_url,
                db_pooler_mode=database_settings.get("db_pooler_mode", "session"),
            )
        )
        if owner_url
        else None
    )
    if owner is not None:
        db = HarnessDatabase(db, owner)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield RunningService(url, client, settings, db, sim, app)
    finally:
        if owner is not None:
            await owner.dispose()
    server.should_exit = True
    await task
    sock.close()
