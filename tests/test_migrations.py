"""The migrations run up, down and up again on PostgreSQL, match the models, and hold the
invariants in SQL."""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

import facetoface.migrations
from facetoface.app import UnmigratedDatabase, check_migrations
from facetoface.config import Settings
from facetoface.conversations.status import LIVE_STATUSES
from facetoface.db import Database, alembic_config, run_migrations
from facetoface.models import Base
from tests.support.postgres import PostgresServer, fresh_database


@pytest.fixture
def empty_settings(pg_server: PostgresServer) -> Iterator[Settings]:
    """Settings for an empty (unmigrated) database of its own."""
    with fresh_database(pg_server, "migrations") as name:
        yield settings_for(pg_server.url(name))


def settings_for(url: str) -> Settings:
    return Settings(_env_file=None, environment="test", database_url=url)  # type: ignore[call-arg]


async def _diff(settings: Settings) -> list[Any]:
    """What autogenerate finds between the models and the database's schema."""
    db = Database(settings)
    try:
        async with db.engine.connect() as conn:
            diff: list[Any] = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
            return diff
    finally:
        await db.dispose()


def _migration(filename: str) -> Any:
    path = Path(facetoface.migrations.__file__).parent / "versions" / filename
    spec = importlib.util.spec_from_file_location(f"facetoface_migration_{path.stem}", path)
    assert spec is not None, path
    assert spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_end_claim_knows_the_live_statuses() -> None:
    """`facetoface.claim_end` (0010) claims exactly the statuses `LIVE_STATUSES` names."""
    claim_end = _migration("2026-12-01_0010_claim_end.py")
    assert set(claim_end.LIVE) == {status.value for status in LIVE_STATUSES}
    in_list = ", ".join(f"'{status}'" for status in claim_end.LIVE)
    assert f"m.status IN ({in_list})" in claim_end.CLAIM_END


async def test_upgrade_downgrade_upgrade(empty_settings: Settings) -> None:
    def up_down_up() -> None:
        run_migrations(empty_settings)
        command.downgrade(alembic_config(empty_settings), "base")
        run_migrations(empty_settings)

    await asyncio.to_thread(up_down_up)
    assert await _diff(empty_settings) == []


async def test_models_and_migrations_agree(pg_database_url: str) -> None:
    """The worker's database, migrated to head, is what the models describe."""
    assert await _diff(settings_for(pg_database_url)) == [], "a model changed without a migration"


async def test_serving_refuses_an_unmigrated_database(
    empty_settings: Settings, pg_database_url: str
) -> None:
    async def check(settings: Settings) -> None:
        db = Database(settings)
        try:
            await check_migrations(db)
        finally:
            await db.dispose()

    with pytest.raises(UnmigratedDatabase, match="facetoface migrate"):
        await check(empty_settings)
    await check(settings_for(pg_database_url))  # a database at head serves


async def test_database_enforces_the_invariants(database_settings: dict[str, Any]) -> None:
    """One live session per user, NOT NULL owners and the origin's CHECK sets hold in SQL."""
    db = Database(settings_for(database_settings["database_url"]))
    uid = str(uuid.uuid4())

    async def execute(sql: str, **params: Any) -> None:
        async with db.transaction() as session:
            await session.execute(text(sql), params)

    def ids() -> str:
        return str(uuid.uuid4())

    try:
        await execute(
            "INSERT INTO profiles (id, email, full_name) VALUES (:id, 'a@x', 'A')", id=uid
        )
        for n in range(2):
            daily = ids()
            await execute(
                "INSERT INTO daily_sessions (id, user_id, session_type) "
                "VALUES (:id, :uid, 'face_to_face')",
                id=daily,
                uid=uid,
            )
            insert_conversation = (
                "INSERT INTO mentor_conversations (id, user_id, daily_session_id, "
                "conversation_name, status, callback_token_hash) "
                "VALUES (:id, :uid, :daily, 'n', 'active', :hash)"
            )
            if n == 0:
                await execute(insert_conversation, id=ids(), uid=uid, daily=daily, hash=b"x")
            else:
                with pytest.raises(IntegrityError, match="live_user_id"):
                    await execute(insert_conversation, id=ids(), uid=uid, daily=daily, hash=b"x")
        with pytest.raises(IntegrityError, match="user_id"):
            await execute(
                "INSERT INTO daily_sessions (id, user_id, session_type) "
                "VALUES (:id, NULL, 'face_to_face')",
                id=ids(),
            )
        with pytest.raises(IntegrityError, match="session_status"):
            await execute(
                "INSERT INTO daily_sessions (id, user_id, session_type, session_status) "
                "VALUES (:id, :uid, 'face_to_face', 'bogus')",
                id=ids(),
                uid=uid,
            )
        # The origin defaulted session_status to 'completed'; ours starts at 'started'.
        daily = ids()
        await execute(
            "INSERT INTO daily_sessions (id, user_id, session_type) "
            "VALUES (:id, :uid, 'face_to_face')",
            id=daily,
            uid=uid,
        )
        async with db.transaction() as session:
            status = (
                await session.execute(
                    text("SELECT session_status FROM daily_sessions WHERE id = :id"),
                    {"id": daily},
                )
            ).scalar_one()
        assert status == "started"
    finally:
        await db.dispose()
