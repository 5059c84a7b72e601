"""Fixtures of the row-level security tests: the database as its owner (setup, inspection) and
as the application login role (what production connects as), and two users with data.

The two engines live as long as the worker's database (a pool each, opened once); every test
that asks for the owner starts from empty tables, like the service's tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from facetoface.db import Database
from tests.conftest import app_role_url, empty_tables
from tests.security.rls import User, db_settings, make_user


@pytest.fixture(scope="session")
async def _owner_db(pg_database_url: str) -> AsyncIterator[Database]:
    db = Database(db_settings(pg_database_url))
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
async def _app_db(pg_database_url: str) -> AsyncIterator[Database]:
    db = Database(db_settings(app_role_url(pg_database_url)))
    yield db
    await db.dispose()


@pytest.fixture
async def owner(_owner_db: Database, pg_database_url: str) -> Database:
    """The tables' owner (the migrations' superuser): setup and inspection only. The tables
    are emptied first."""
    await empty_tables(pg_database_url)
    return _owner_db


@pytest.fixture
def app_db(_app_db: Database) -> Database:
    """What the service runs on: the application login role, row-level security on."""
    return _app_db


@pytest.fixture
async def alice(owner: Database) -> User:
    return await make_user(owner, "alice")


@pytest.fixture
async def bob(owner: Database) -> User:
    return await make_user(owner, "bob")
