"""`migrate` writes every revision's compatibility marker into the database, and a replica
whose code is older than the database reads them there: it serves a database ahead by
backward-compatible revisions, and refuses one ahead by an incompatible revision, naming it.
The replica connects as the least-privilege login role, as in production."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from facetoface.app import UnmigratedDatabase, check_migrations
from facetoface.config import Settings
from facetoface.db import Database, run_migrations
from facetoface.db.migrations import MIGRATIONS_PATH, head_revision
from facetoface.doctor.database_checks import DatabaseState
from facetoface.doctor.database_checks import check_migrations as doctor_migrations
from tests.support.postgres import APP_ROLE, PostgresServer, create_app_role, fresh_database


def _settings(url: str) -> Settings:
    return Settings(_env_file=None, environment="test", database_url=url)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def database(pg_server: PostgresServer) -> Iterator[tuple[str, str]]:
    """A database of its own at head: (the owner's URL, the login role's URL)."""
    with fresh_database(pg_server, "markers") as name:
        owner = pg_server.url(name)
        run_migrations(_settings(owner))
        create_app_role(pg_server, name)
        yield owner, pg_server.url(name, APP_ROLE)


@pytest.fixture
async def migrated(database: tuple[str, str]) -> AsyncIterator[tuple[str, str]]:
    """`database`, put back at head (without the made-up revisions) after the test."""
    yield database
    await _sql(
        database[0],
        f"UPDATE alembic_version SET version_num = '{head_revision()}'",
        "DELETE FROM schema_revisions WHERE revision LIKE '9%'",
    )


async def _sql(url: str, *statements: str) -> list[tuple[object, ...]]:
    db = Database(_settings(url))
    try:
        async with db.transaction() as session:
            rows: list[tuple[object, ...]] = []
            for statement in statements:
                result = await session.execute(text(statement))
                if result.returns_rows:
                    rows = [tuple(row) for row in result]
            return rows
    finally:
        await db.dispose()


async def _check(url: str) -> None:
    db = Database(_settings(url))
    try:
        await check_migrations(db)
    finally:
        await db.dispose()


async def test_migrate_records_every_revision_and_its_marker(migrated: tuple[str, str]) -> None:
    owner, _ = migrated
    scripts = {s.revision: s for s in ScriptDirectory(MIGRATIONS_PATH).walk_revisions()}
    rows = await _sql(
        owner, "SELECT revision, down_revision, backward_compatible FROM schema_revisions"
    )
    assert {r[0]: (r[1], r[2]) for r in rows} == {
        revision: (script.down_revision, script.module.backward_compatible)
        for revision, script in scripts.items()
    }
    # Every migration says whether the previous release runs on what it leaves.
    assert all(isinstance(s.module.backward_compatible, bool) for s in scripts.values())


async def test_a_database_ahead_by_compatible_revisions_is_served(
    migrated: tuple[str, str],
) -> None:
    """As if a newer release had migrated: two revisions this code has never seen."""
    owner, login = migrated
    head = head_revision()
    await _sql(
        owner,
        "INSERT INTO schema_revisions (revision, down_revision, backward_compatible) "
        f"VALUES ('9001', '{head}', true), ('9002', '9001', true)",
        "UPDATE alembic_version SET version_num = '9002'",
    )
    await _check(login)


async def test_a_database_ahead_by_an_incompatible_revision_is_refused(
    migrated: tuple[str, str],
) -> None:
    owner, login = migrated
    head = head_revision()
    await _sql(
        owner,
        "INSERT INTO schema_revisions (revision, down_revision, backward_compatible) "
        f"VALUES ('9001', '{head}', false), ('9002', '9001', true)",
        "UPDATE alembic_version SET version_num = '9002'",
    )
    with pytest.raises(UnmigratedDatabase) as refused:
        await _check(login)
    assert str(refused.value) == (
        f"database schema is at 9002, ahead of this code's {head} by 9001, which is not "
        "backward-compatible: deploy code at 9002 or newer"
    )


async def test_a_database_behind_is_refused(migrated: tuple[str, str]) -> None:
    owner, login = migrated
    head = head_revision()
    await _sql(owner, "UPDATE alembic_version SET version_num = '0010'")
    with pytest.raises(UnmigratedDatabase) as refused:
        await _check(login)
    assert str(refused.value) == (
        f"database schema is at 0010, behind this code's {head}: run `facetoface migrate` first"
    )


async def _doctor(url: str) -> tuple[str, str, str | None]:
    """`doctor`'s migrations check on `url`: (status, detail, fix)."""
    db = Database(_settings(url))
    try:
        result = await doctor_migrations(_settings(url), DatabaseState(db=db))
    finally:
        await db.dispose()
    return str(result.status), result.detail, result.fix


async def test_doctor_judges_a_database_ahead_by_the_same_rule(migrated: tuple[str, str]) -> None:
    owner, login = migrated
    head = head_revision()
    await _sql(
        owner,
        "INSERT INTO schema_revisions (revision, down_revision, backward_compatible) "
        f"VALUES ('9001', '{head}', true)",
        "UPDATE alembic_version SET version_num = '9001'",
    )
    status, detail, _ = await _doctor(login)
    assert status == "pass", detail
    assert detail == (
        f"at 9001, ahead of this code's {head} by backward-compatible revision(s) only (9001): "
        "this code serves it"
    )
    await _sql(
        owner, "UPDATE schema_revisions SET backward_compatible = false WHERE revision = '9001'"
    )
    status, detail, fix = await _doctor(login)
    assert status == "fail"
    assert "9001, which is not backward-compatible" in detail
    assert fix is not None
    assert "deploy the code version that matches the database" in fix
