"""Fixtures for the doctor tests: a production-like deployment on SQLite or PostgreSQL that
passes every check (the simulator as Tavus, a real JWKS server as Supabase), to break one
check at a time."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import text

from facetoface.config import Settings
from facetoface.db import Database
from facetoface.doctor import Report, diagnose
from tavus_sim import SimServer
from tests.auth.jwtkit import JwksServer, ec_key
from tests.support.postgres import APP_ROLE

Doctor = Callable[..., Awaitable[Report]]


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


def as_user(url: str, user: str, password: str | None = None) -> str:
    """The same database URL, connecting as another role."""
    parts = urlsplit(url)
    credentials = f"{user}:{password}" if password else user
    return urlunsplit(parts._replace(netloc=f"{credentials}@{parts.hostname}:{parts.port}"))


@pytest.fixture(params=["postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated database (the serving role's URL on PostgreSQL)."""
    if request.param == "sqlite":
        shutil.copy(sqlite_template, tmp_path / "facetoface.db")
        return f"sqlite:///{tmp_path / 'facetoface.db'}"
    owner_url: str = request.getfixturevalue("pg_database_url")
    return as_user(owner_url, APP_ROLE)


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
        "log_level": "WARNING",
    }


def settings_of(values: dict[str, Any]) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _runner(values: dict[str, Any]) -> Doctor:
    async def run(**overrides: Any) -> Report:
        return await diagnose(settings_of({**values, **overrides}))

    return run


@pytest.fixture
def doctor(database: str, sim: SimServer, jwks: JwksServer) -> Doctor:
    """`await doctor(**overrides)`: the report for the healthy production settings (on the
    parametrised database) with some settings changed."""
    return _runner(production_values(database, sim, jwks))


@pytest.fixture
def pg_doctor(pg_database_url: str, sim: SimServer, jwks: JwksServer) -> Doctor:
    """`doctor` on PostgreSQL only, for the checks that exist only there."""
    return _runner(production_values(as_user(pg_database_url, APP_ROLE), sim, jwks))


async def owner_sql(owner_url: str, *statements: str) -> None:
    """Run administrative SQL as the database's owner (driver-independent)."""
    db = Database(settings_of({"environment": "test", "database_url": owner_url}))
    try:
        async with db.transaction() as session:
            for statement in statements:
                await session.execute(text(statement))
    finally:
        await db.dispose()


@pytest.fixture
async def scratch_role(pg_database_url: str) -> AsyncIterator[str]:
    """A unique role name, dropped after the test (roles are cluster-wide)."""
    name = f"doctor_{uuid.uuid4().hex[:10]}"
    yield name
    # Its grants in this database go first (DROP OWNED), then the role.
    await owner_sql(
        pg_database_url,
        f"""DO $drop$ BEGIN
          IF to_regrole('{name}') IS NOT NULL THEN
            EXECUTE 'DROP OWNED BY {name}';
            EXECUTE 'DROP ROLE {name}';
          END IF;
        END $drop$""",
    )
