"""The one migration set runs on SQLite and PostgreSQL and matches the models."""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
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


@pytest.fixture(params=["postgresql"])
def empty_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Settings for an empty (unmigrated) database of each kind."""
    if request.param == "sqlite":
        yield Settings(_env_file=None, environment="test", data_dir=tmp_path)  # type: ignore[call-arg]
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    with fresh_database(server, "migrations") as name:
        yield Settings(_env_file=None, environment="test", database_url=server.url(name))  # type: ignore[call-arg]


def _diff(settings: Settings) -> list[Any]:
    async def run() -> list[Any]:
        db = Database(settings)
        try:
            async with db.engine.connect() as conn:
                return await conn.run_sync(
                    lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
                )
        finally:
            await db.dispose()

    return asyncio.run(run())


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


def test_upgrade_downgrade_upgrade(empty_settings: Settings) -> None:
    run_migrations(empty_settings)
    command.downgrade(alembic_config(empty_settings), "base")
    run_migrations(empty_settings)
    assert _diff(empty_settings) == []


def test_models_and_migrations_agree(empty_settings: Settings) -> None:
    run_migrations(empty_settings)
    assert _diff(empty_settings) == [], "a model changed without a migration"


def test_serving_refuses_an_unmigrated_database(empty_settings: Settings) -> None:
    async def check() -> None:
        db = Database(empty_settings)
        try:
            await check_migrations(db)
        finally:
            await db.dispose()

    with pytest.raises(UnmigratedDatabase, match="facetoface migrate"):
        asyncio.run(check())
    run_migrations(empty_settings)
    asyncio.run(check())


def test_database_enforces_the_invariants(empty_settings: Settings) -> None:
    """One live session per user, NOT NULL owners and the origin's CHECK sets hold in SQL."""
    run_migrations(empty_settings)
    user = uuid.uuid4()

    async def run() -> None:
        db = Database(empty_settings)
        uid = user.hex if db.dialect == "sqlite" else str(user)

        async def execute(sql: str, **params: Any) -> None:
            async with db.transaction() as session:
                await session.execute(text(sql), params)

        def ids() -> str:
            u = uuid.uuid4()
            return u.hex if db.dialect == "sqlite" else str(u)

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
                    with pytest.raises(IntegrityError, match="live_user_id|user_id"):
                        await execute(
                            insert_conversation, id=ids(), uid=uid, daily=daily, hash=b"x"
                        )
            with pytest.raises(IntegrityError):
                await execute(
                    "INSERT INTO daily_sessions (id, user_id, session_type) "
                    "VALUES (:id, NULL, 'face_to_face')",
                    id=ids(),
                )
            with pytest.raises(IntegrityError):
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

    asyncio.run(run())
