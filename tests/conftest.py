"""Shared fixtures: the database, the Tavus simulator, the service.

**The database** is PostgreSQL — the machine's server on 127.0.0.1:5432 when one answers,
else the project's embedded PostgreSQL — with one freshly created, migrated database per test
run (per xdist worker); each test starts with its rows deleted. `database_settings` is the
direct connection by default; parametrise it with `THROUGH_PGBOUNCER` where the transaction
pooler is the point (round trips, concurrency, the drop-in clients).

**The service** runs the way `serve` runs it (uvicorn, on a real socket, so the simulator's
callbacks arrive over HTTP), while the test talks to it in-process (`service.client`, an ASGI
transport). Starting an app costs a few hundred milliseconds, so an app is shared by the tests
that want the same settings (`ServiceHosts`, a few per worker); before each test its services
are rebuilt (a fresh Tavus client, breaker, throttles and reconciler) and the tables emptied,
so no test sees another's data or state. On PostgreSQL the service connects as the
application login role (`facetoface_app`: no superuser, no BYPASSRLS, owns nothing), so every
integration test also proves the app works under row-level security (docs/security.md).

Async tests and fixtures share one event loop per worker (pyproject.toml); a test's leftover
tasks are cancelled when it ends (`_no_leftover_tasks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import event

from facetoface.app import build_state, build_tavus_client, create_app
from facetoface.app_state import AppState
from facetoface.auth.dev_issuer import mint_token
from facetoface.cli import server_config
from facetoface.config import Settings
from facetoface.db import Database, Identity, Role, run_migrations
from facetoface.health import TavusHealth
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
from tests.support.signing import TEST_CALLBACK_SIGNING_SECRET, TEST_JWT_SECRET, TEST_TOOL_SECRET
from tests.support.statements import StatementCounter

IN_CI = os.environ.get("CI", "").lower() == "true"

#: Fixtures shared by test packages that are not conftest files.
pytest_plugins = ["tests.support.browser", "tests.support.chaos", "tests.support.clock"]


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("ENVIRONMENT", "test")
    # As `serve` does: plain tracebacks, and only warnings and errors in test output.
    configure_logging("WARNING", "console", cache=False)


#: What starts processes or a browser: seconds a test, where most take milliseconds.
_LONG_RUNNING = ("e2e", "browser")
#: Where each file drives a load or a fault for seconds (chaos, floods, thousands of
#: connections) without starting a process: as long, and so also handed out first.
_LONG_RUNNING_DIRS = ("reliability",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long-running files first (in their order), then the rest, files with more tests first.

    `--dist loadfile` hands files out in this order as workers free up (`addopts` turns off
    xdist's own reordering, by test count alone, which put the few-test files that start
    processes last); a long file taken last keeps one worker busy while the others idle."""
    long_files: set[str] = set()
    counts: Counter[str] = Counter()
    for item in items:
        counts[str(item.path)] += 1
        if item.path.parent.name in _LONG_RUNNING_DIRS or any(
            item.get_closest_marker(m) for m in _LONG_RUNNING
        ):
            long_files.add(str(item.path))
    items.sort(
        key=lambda item: (0, 0) if str(item.path) in long_files else (1, -counts[str(item.path)])
    )


def unavailable(reason: str) -> None:
    """A tool the test needs is missing: fail under CI=true, else skip loudly."""
    if IN_CI:
        pytest.fail(f"{reason} (required under CI=true)")
    pytest.skip(f"SKIPPED LOUDLY: {reason}")


# --- the database --------------------------------------------------------------------------
_SERVER: PostgresServer | None = None


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    global _SERVER
    try:
        with postgres_server() as server:
            _SERVER = server
            yield server
    except Exception as exc:  # no server and the embedded one would not start
        unavailable(f"PostgreSQL: {exc}")


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def base_settings(**overrides: Any) -> Settings:
    """Settings for tests: the test environment, quiet logs, no `.env` file."""
    values: dict[str, Any] = {
        "environment": "test",
        "log_level": "WARNING",
        "callback_signing_secret": TEST_CALLBACK_SIGNING_SECRET,
        "tavus_tool_secret": TEST_TOOL_SECRET,
    }
    values.update(overrides)
    if values["environment"] != "development":
        # Only development trusts the development issuer's published secret.
        values.setdefault("supabase_jwt_secret", TEST_JWT_SECRET)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def pg_database_url(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh, migrated database for this test run (this xdist worker): the owner's URL."""
    with fresh_database(pg_server, _worker()) as name:
        url = pg_server.url(name)
        run_migrations(base_settings(database_url=url))
        create_app_role(pg_server, name)
        yield url
        forget_emptying(url)


def app_role_url(owner_url: str) -> str:
    """The same database, connecting as the application login role."""
    assert _SERVER is not None, "needs the pg_server fixture"
    return _SERVER.as_user(owner_url, APP_ROLE)


#: Every table a test may fill, children first (the installation's identity and the schema's
#: revisions, written by the migrations, stay).
_TABLES = [
    t.name
    for t in reversed(Base.metadata.sorted_tables)
    if t.name not in {"facetoface_installation", "schema_revisions"}
]
#: One message, one round trip: DELETE is a fraction of a millisecond on tables this small;
#: TRUNCATE costs ~60 ms (new files for every table).
_EMPTY_ALL = "; ".join(f"DELETE FROM public.{table}" for table in _TABLES)


#: One connection per database for `empty_tables`, kept for the run: a connection costs
#: PostgreSQL ~3.5 ms of CPU to set up, and every test empties the tables first. (Blocking:
#: one message of sub-millisecond DELETEs, between tests.)
_EMPTYING: dict[str, psycopg.Connection[Any]] = {}


async def empty_tables(owner_url: str) -> None:
    """Delete every row a test may have written."""
    conn = _EMPTYING.get(owner_url)
    if conn is not None:
        try:
            conn.execute(_EMPTY_ALL.encode())
            return
        except psycopg.OperationalError:  # a chaos test terminated it: connect again
            conn.close()
    conn = _EMPTYING[owner_url] = psycopg.connect(owner_url, autocommit=True)
    conn.execute(_EMPTY_ALL.encode())


def forget_emptying(owner_url: str) -> None:
    """Close `empty_tables`' connection to a database about to be dropped."""
    conn = _EMPTYING.pop(owner_url, None)
    if conn is not None:
        conn.close()


@pytest.fixture(scope="session")
def pgbouncer_port(pg_server: PostgresServer) -> Iterator[int]:
    """PgBouncer in transaction mode in front of the test server."""
    if find_pgbouncer() is None:
        unavailable("pgbouncer is not installed (.ci/run installs Debian's `pgbouncer`)")
    with pgbouncer(pg_server) as port:
        yield port


#: Parametrise `database_settings` with this where the transaction pooler is the point.
THROUGH_PGBOUNCER = pytest.mark.parametrize(
    "database_settings", ["postgresql", "pgbouncer"], indirect=True
)


@pytest.fixture(params=["postgresql"])
async def database_settings(request: pytest.FixtureRequest, pg_database_url: str) -> dict[str, Any]:
    """Settings overrides for the worker's database, its rows deleted: PostgreSQL directly
    (`postgresql`), or through PgBouncer in transaction mode (`pgbouncer`)."""
    url = pg_database_url
    await empty_tables(url)
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
    """The service a test talks to (see the module docstring)."""

    url: str
    client: httpx.AsyncClient
    settings: Settings
    db: Database
    sim: SimServer
    app: FastAPI

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.services
        return state

    @property
    def reconciler(self) -> Reconciler:
        return self.state.reconciler

    @property
    def name_prefix(self) -> str:
        """What this installation's conversation names start with (conversations/names.py)."""
        return self.state.sessions.name_prefix

    def token(self, user_id: uuid.UUID, **kwargs: Any) -> str:
        return mint_token(self.settings, user_id=user_id, **kwargs)

    def auth(self, user_id: uuid.UUID) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id)}"}

    def count_statements(self) -> StatementCounter:
        return StatementCounter(self.db.engine)


class HarnessDatabase(Database):
    """`service.db`: the app's engine, connected as the application login role, for every
    transaction with an identity or a role (what the app itself runs); the tables' owner for a
    plain `transaction()` — test setup and inspection, which the login role rightly cannot do.
    Statements on the owner's connection are reported to the app engine's listeners, so
    `StatementCounter(service.db.engine)` still sees what a test runs through `service.db`."""

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


def bound_socket() -> socket.socket:
    """A listening-ready socket on a free port of 127.0.0.1."""
    # IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections (else ~40 ms per
    # request from delayed ACKs).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


#: Tasks that outlive a test on purpose: the shared apps' servers and lifespans.
_INFRASTRUCTURE: set[asyncio.Task[Any]] = set()


class ServiceHost:
    """One app under uvicorn on a socket, with the settings it was made with."""

    def __init__(self, settings: Settings, sock: socket.socket, owner_url: str | None) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._sock = sock
        self._server = uvicorn.Server(
            server_config(self.app, settings, "127.0.0.1", sock.getsockname()[1])
        )
        self._task: asyncio.Task[None] | None = None
        self._initial: AppState | None = None
        self.owner = (
            Database(base_settings(database_url=owner_url, db_pooler_mode=settings.db_pooler_mode))
            if owner_url
            else None
        )

    async def start(self) -> None:
        before = asyncio.all_tasks()
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:
            if self._task.done():
                self._sock.close()
                self._task.result()
                raise RuntimeError("the service stopped during startup")
            await asyncio.sleep(0.005)
        # The server and its lifespan live as long as the host, across tests.
        _INFRASTRUCTURE.update(asyncio.all_tasks() - before)
        self._initial = self.app.state.services

    async def fresh_state(self) -> None:
        """New services over the same database pool: nothing a test changed (a breaker, a
        throttle, a reconciler's lease) reaches the next one."""
        current: AppState = self.app.state.services
        health = TavusHealth()
        tavus = build_tavus_client(self.settings, on_request=health.on_request)
        self.app.state.services = await build_state(
            self.settings,
            current.db,
            tavus,
            tavus_health=health,
            token_verifier=current.token_verifier,
        )
        await self._release(current)

    async def _release(self, state: AppState) -> None:
        if state is not self._initial:  # the lifespan closes its own
            await state.compat.aclose()
            await state.tavus.aclose()
            await state.webhooks.aclose()

    def harness_db(self) -> Database:
        db: Database = self.app.state.services.db
        return HarnessDatabase(db, self.owner) if self.owner is not None else db

    async def close(self) -> None:
        if self._initial is not None:
            await self._release(self.app.state.services)
            self.app.state.services = self._initial
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._sock.close()
        if self.owner is not None:
            await self.owner.dispose()


class ServiceHosts:
    """The worker's running apps, by settings; the least recently used beyond `keep` close."""

    def __init__(self, keep: int = 3) -> None:
        self.keep = keep
        self._hosts: OrderedDict[tuple[tuple[str, str], ...], ServiceHost] = OrderedDict()

    async def get(
        self, values: dict[str, Any], owner_url: str | None, *, cache: bool
    ) -> ServiceHost:
        key = tuple(sorted((k, repr(v)) for k, v in values.items()))
        host = self._hosts.get(key) if cache else None
        if host is not None:
            self._hosts.move_to_end(key)
            return host
        sock = bound_socket()
        # Callbacks come back to this host, unless the test sends them elsewhere.
        values = {"public_base_url": f"http://127.0.0.1:{sock.getsockname()[1]}", **values}
        host = ServiceHost(base_settings(**values), sock, owner_url)
        await host.start()
        if cache:
            self._hosts[key] = host
            while len(self._hosts) > self.keep:
                _, evicted = self._hosts.popitem(last=False)
                await evicted.close()
        return host

    async def close(self) -> None:
        while self._hosts:
            _, host = self._hosts.popitem()
            await host.close()


@pytest.fixture(scope="session")
async def service_hosts() -> AsyncIterator[ServiceHosts]:
    hosts = ServiceHosts()
    yield hosts
    await hosts.close()


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    """Override in a test module to change the service's settings."""
    return {}


def service_settings(sim: SimServer, **overrides: Any) -> dict[str, Any]:
    """The settings a test service runs with (before `service_overrides`)."""
    return {
        "tavus_api_key": sim.config.api_key,
        "tavus_base_url": sim.api_url,
        "tavus_default_persona_id": "p0000default",
        "tavus_default_replica_id": "r0000default",
        # The simulator runs in a thread of the test process: on a loaded machine a create
        # takes seconds. Tests about timeouts set their own.
        "tavus_read_timeout_seconds": 10.0,
        "tavus_total_timeout_seconds": 15.0,
        "tavus_retry_timeout_seconds": 15.0,
        # Tests run reconciler passes themselves (`service.reconciler.run_once()`).
        "reconcile_interval_seconds": 0,
        # And their webhook delivery passes (`service.state.webhooks.run_once()`).
        "webhook_interval_seconds": 0,
        # The fuzzers read the API's map (production serves none by default).
        "openapi_enabled": True,
        **overrides,
    }


@pytest.fixture
async def service(
    database_settings: dict[str, Any],
    sim: SimServer,
    service_overrides: dict[str, Any],
    service_hosts: ServiceHosts,
) -> AsyncIterator[RunningService]:
    """The service (see the module docstring), with fresh services and empty tables."""
    owner_url = database_settings.get("database_url")
    overrides = dict(service_overrides)
    # `database_url_through`: the service reaches the same database another way (a proxy):
    # a host of its own for this test only.
    through = overrides.pop("database_url_through", None)
    values = service_settings(sim, **{**database_settings, **overrides})
    if through or owner_url:
        values["database_url"] = app_role_url(through or owner_url)
    host = await service_hosts.get(values, owner_url, cache=through is None)
    try:
        await host.fresh_state()
        transport = httpx.ASGITransport(app=host.app)
        async with httpx.AsyncClient(transport=transport, base_url=host.url, timeout=10) as client:
            yield RunningService(host.url, client, host.settings, host.harness_db(), sim, host.app)
    finally:
        if through is not None:
            await host.close()


@pytest.fixture(autouse=True)
async def _no_leftover_tasks() -> AsyncIterator[None]:
    """Cancel what a test started and left running (the loop outlives the test)."""
    before = asyncio.all_tasks()
    yield
    current = asyncio.current_task()
    leftover = [
        task
        for task in asyncio.all_tasks() - before - _INFRASTRUCTURE
        if task is not current and not task.done()
    ]
    for task in leftover:
        task.cancel()
    for task in leftover:
        with contextlib.suppress(BaseException):
            await task
