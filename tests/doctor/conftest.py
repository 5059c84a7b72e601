"""Fixtures for the doctor tests: a production-like deployment on PostgreSQL that passes every
check (the worker's database as the application's login role, the simulator as Tavus, a real
JWKS server as Supabase), to break one check at a time."""

from __future__ import annotations

import dataclasses
import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import httpx._transports.default as httpx_transports
import psycopg
import pytest

from facetoface.config import Settings
from facetoface.doctor import Report, diagnose
from tavus_sim import SimServer
from tests.auth.jwtkit import JwksServer, ec_key
from tests.conftest import app_role_url
from tests.support.postgres import PostgresServer

Doctor = Callable[..., Awaitable[Report]]

#: The password of the roles the doctor tests create (the embedded server wants one).
SCRATCH_PASSWORD = "doctor-scratch-password"


@pytest.fixture(scope="session")
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def jwks(jwks_server: JwksServer) -> JwksServer:
    """The Supabase project's JWKS, publishing one ES256 key."""
    jwks_server.reset()
    jwks_server.publish(ec_key("doctor-key"))
    return jwks_server


def login_url(server: PostgresServer, url: str, user: str, password: str) -> str:
    """`url` (of `server`) for a login the server does not know the password of."""
    known = dataclasses.replace(server, passwords={**server.passwords, user: password})
    return known.as_user(url, user)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port of 127.0.0.1 that refuses connections for the whole test: bound, never
    listening, so nothing else can take it (a fixed "unused" port like 1 may be in use)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def database(pg_database_url: str) -> str:
    """The worker's migrated database, as the application's login role (what serves)."""
    return app_role_url(pg_database_url)


def production_values(database_url: str, sim: SimServer, jwks: JwksServer) -> dict[str, Any]:
    """Settings of a production deployment that passes every check."""
    return {
        "environment": "production",
        "database_url": database_url,
        "tavus_api_key": sim.api_key,
        "tavus_base_url": sim.api_url,
        "tavus_default_persona_id": "p0000default",
        "tavus_default_replica_id": "r0000default",
        "tavus_read_timeout_seconds": 2.0,
        "tavus_total_timeout_seconds": 3.0,
        "supabase_url": jwks.base_url,
        "public_base_url": "https://facetoface.example.com",
        "deployment_name": "doctor-test",
        "metrics_token": "doctor-metrics-token-7Kq2Zp9Lw4Xv8Rt3",
        "log_level": "WARNING",
    }


def settings_of(values: dict[str, Any]) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def doctor(database: str, sim: SimServer, jwks: JwksServer) -> Doctor:
    """`await doctor(**overrides)`: the report for the healthy production settings with some
    settings changed."""
    values = production_values(database, sim, jwks)

    async def run(**overrides: Any) -> Report:
        return await diagnose(settings_of({**values, **overrides}))

    return run


async def owner_sql(owner_url: str, *statements: str) -> None:
    """Run administrative SQL as the database's owner, in one transaction."""
    async with await psycopg.AsyncConnection.connect(owner_url) as conn:
        for statement in statements:
            await conn.execute(statement.encode())


@pytest.fixture
async def scratch_role(pg_database_url: str) -> AsyncIterator[str]:
    """A unique role name (create it with `SCRATCH_PASSWORD`), dropped after the test (roles
    are cluster-wide): what it owns in the worker's database goes back to the owner first."""
    name = f"doctor_{uuid.uuid4().hex[:10]}"
    yield name
    await owner_sql(
        pg_database_url,
        f"""DO $drop$ BEGIN
          IF to_regrole('{name}') IS NOT NULL THEN
            EXECUTE 'REASSIGN OWNED BY {name} TO ' || quote_ident(current_user);
            EXECUTE 'DROP OWNED BY {name}';
            EXECUTE 'DROP ROLE {name}';
          END IF;
        END $drop$""",
    )


@pytest.fixture(scope="session")
def _ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


@pytest.fixture(autouse=True)
def _one_ssl_context(_ssl_context: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every HTTP client a doctor run builds (the Tavus client's, the JWKS fetch's) gets the
    same default TLS context: building one reads the CA bundle (~0.1 s under load, a few
    each run), which made a check of a few milliseconds take half a second."""

    def default_context(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        assert not args, "only the default context is shared"
        assert not kwargs, "only the default context is shared"
        return _ssl_context

    monkeypatch.setattr(httpx, "create_ssl_context", default_context)
    monkeypatch.setattr(httpx_transports, "create_ssl_context", _defaults_only(_ssl_context))


def _defaults_only(context: ssl.SSLContext) -> Callable[..., ssl.SSLContext]:
    """`create_ssl_context` as the transports call it: the shared context for the defaults."""
    original = httpx_transports.create_ssl_context

    def create(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
        if verify is True and cert is None and trust_env:
            return context
        return original(verify=verify, cert=cert, trust_env=trust_env)

    return create
