"""Fixtures of the row-level security tests: the database as its owner (setup, inspection) and
as the application login role (what production connects as), and two users with data."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from facetoface.db import Database
from tests.conftest import app_role_url
from tests.security.rls import User, db_settings, make_user


@pytest.fixture
async def owner(pg_database_url: str) -> AsyncIterator[Database]:
    """The tables' owner (the migrations' superuser): setup and inspection only."""
    db = Database(db_settings(pg_database_url))
    yield db
    await db.dispose()


@pytest.fixture
async def app_db(pg_database_url: str) -> AsyncIterator[Database]:
    """What the service runs on: the application login role, row-level security on."""
    db = Database(db_settings(app_role_url(pg_database_url)))
    yield db
    await db.dispose()


@pytest.fixture
async def alice(owner: Database) -> User:
    return await make_user(owner, "alice")


@pytest.fixture
async def bob(owner: Database) -> User:
    return await make_user(owner, "bob")
