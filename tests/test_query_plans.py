"""The hot statements' plans on a database with history: index use, no scan over history.

A database of its own is filled in SQL (bench/growth_fill.py, the benchmark's growth phase)
with 4,000 past sessions of 40 users — 100 each, with their conversations and 4.6 inbox rows
each — and `VACUUM ANALYZE`d, so the planner knows the tables are not small. Each statement
then runs under `EXPLAIN (ANALYZE, FORMAT JSON)` exactly as the service sends it: through
`Database` as the application's login role, with the caller's identity and role prefix, so
row-level security's policies are in the plan. The assertions are about rows read, not time:
a statement that serves one page or the recent sessions must not read a user's whole history,
or everyone's.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy.dialects import postgresql

from bench import growth_fill
from facetoface.clock import utcnow
from facetoface.db import Database, Identity, Statement, run_migrations
from facetoface.reconcile.repository import ReconcileRepository
from facetoface.seeding import UserSeed, insert_users
from facetoface.sessions.repository import LIST_SQL, START_SQL, StartLimits, start_params
from tests.conftest import app_role_url, base_settings
from tests.support.postgres import PostgresServer, create_app_role, fresh_database

USERS = 40
HISTORY = 4_000  # 100 past sessions per user
HISTORY_TABLES = ("mentor_conversations", "daily_sessions", "tavus_callback_events")


@dataclass
class Filled:
    db: Database
    users: list[uuid.UUID]


@pytest.fixture(scope="module")
def filled_url(pg_server: PostgresServer) -> Iterator[str]:
    """A migrated database of this module's own (the shared one is emptied between tests)."""
    with fresh_database(pg_server, "plans") as name:
        url = pg_server.url(name)
        run_migrations(base_settings(database_url=url))
        create_app_role(pg_server, name)
        yield url


@pytest.fixture(scope="module")
async def filled(filled_url: str) -> AsyncIterator[Filled]:
    users = [uuid.uuid4() for _ in range(USERS)]
    owner = Database(base_settings(database_url=filled_url))
    try:
        async with owner.transaction() as session:
            await insert_users(
                session,
                (
                    UserSeed(user_id=u, email=f"plan{n}@example.com", full_name=f"Plan {n}")
                    for n, u in enumerate(users)
                ),
            )
    finally:
        await owner.dispose()
    conn = await asyncpg.connect(filled_url)
    try:
        await growth_fill.fill(conn, users, HISTORY)
    finally:
        await conn.close()
    db = Database(base_settings(database_url=app_role_url(filled_url)))
    try:
        yield Filled(db, users)
    finally:
        await db.dispose()


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def explain(
    db: Database, sql: str, params: dict[str, Any], identity: Identity | None, role: Any
) -> list[dict[str, Any]]:
    """Every node of the statement's executed plan, as the service would send it."""
    rows = await db.run(
        Statement(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}"), params, identity, role=role
    )
    [document] = rows[0].values()
    return list(_nodes(document[0]["Plan"]))


def history_scans(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [n for n in nodes if n.get("Relation Name") in HISTORY_TABLES]


def rows_read(node: dict[str, Any]) -> float:
    """Rows the scan produced, filtered ones included (all loops)."""
    loops = node.get("Actual Loops", 1)
    removed = node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)
    return float((node["Actual Rows"] + removed) * loops)


class _NoRows(list[Any]):
    def scalars(self) -> list[Any]:
        return []


class _Capture:
    """Stands in for the session to take the first statement a repository method builds
    (answering it with no rows, so the method stops there)."""

    def __init__(self) -> None:
        self.statement: Any = None

    async def execute(self, statement: Any) -> _NoRows:
        if self.statement is None:
            self.statement = statement
        return _NoRows()


def compiled(statement: Any) -> tuple[str, dict[str, Any]]:
    """SQLAlchemy's statement as psycopg text (`%(name)s`) and its parameters."""
    done = statement.compile(dialect=postgresql.psycopg.dialect())  # type: ignore[attr-defined]
    return str(done), dict(done.params)


async def test_the_session_list_walks_the_index_to_the_page_limit(filled: Filled) -> None:
    user = filled.users[0]
    params = {"user_id": user, "limit": 10, "before_at": None, "before_id": None}
    nodes = await explain(filled.db, LIST_SQL.text, params, Identity(user), "user")
    scans = history_scans(nodes)
    assert scans, nodes
    assert not [n for n in scans if n["Node Type"] == "Seq Scan"], scans
    # The first page reads its own ten sessions, not the user's hundred.
    for scan in scans:
        assert rows_read(scan) <= 10, scan
    # The next page starts at the cursor in the index, and reads ten again.
    cursor = await filled.db.run(LIST_SQL, params | {"limit": 10}, Identity(user), role="user")
    last = cursor[-1]
    after = params | {"before_at": last["created_at"], "before_id": last["id"]}
    next_page = await explain(filled.db, LIST_SQL.text, after, Identity(user), "user")
    for scan in history_scans(next_page):
        assert rows_read(scan) <= 10, scan


async def test_the_reconciler_claims_recent_unverified_sessions_without_reading_history(
    filled: Filled,
) -> None:
    capture = _Capture()
    await ReconcileRepository(capture).claim_unverified(  # type: ignore[arg-type]
        now=utcnow(),
        settle=timedelta(minutes=2),
        horizon=timedelta(hours=24),
        max_attempts=5,
        lease=timedelta(minutes=5),
        limit=50,
    )
    sql, params = compiled(capture.statement)
    nodes = await explain(filled.db, sql, params, None, "service")
    scans = history_scans(nodes)
    assert not [n for n in scans if n["Node Type"] == "Seq Scan"], scans
    assert "ix_mentor_conversations_unverified_end_time" in {n.get("Index Name") for n in scans}
    # History is verified and old: nothing of it is read.
    assert sum(rows_read(n) for n in scans) == 0, scans


async def test_retention_finds_expired_transcripts_without_reading_history(
    filled: Filled,
) -> None:
    capture = _Capture()
    now = utcnow()
    # History ended 2 to 350 days ago; a 400-day retention has nothing to clear.
    await ReconcileRepository(capture).expire_transcripts(  # type: ignore[arg-type]
        now - timedelta(days=400), limit=50, now=now
    )
    sql, params = compiled(capture.statement)
    scans = history_scans(await explain(filled.db, sql, params, None, "service"))
    assert not [n for n in scans if n["Node Type"] == "Seq Scan"], scans
    assert sum(rows_read(n) for n in scans) == 0, scans


#: "Since last time" (`facetoface.start_session`'s cursor) as one `ORDER BY … LIMIT`
#: statement: the user's latest ended sessions. The function reads it through a cursor
#: (migration 0015) because under `facetoface_service`'s policy `caller IS NULL OR user_id =
#: caller` this statement read and sorted every ended session of the user; the service
#: acting for a user runs as `facetoface_delegate` now, whose policy is `user_id = caller`.
RECENT_SQL = (
    "SELECT m.id, d.completed_at FROM mentor_conversations m"
    " CROSS JOIN LATERAL (SELECT x.completed_at FROM daily_sessions x"
    " WHERE x.id = m.daily_session_id OFFSET 0) d"
    " WHERE m.user_id = %(user_id)s AND m.status = 'ended'"
    " ORDER BY m.created_at DESC, m.id DESC LIMIT %(limit)s"
)


async def test_acting_for_a_user_the_planner_sees_the_users_id(filled: Filled) -> None:
    """The service's policies for a user are plain (`user_id = caller`): a statement that
    wants a user's three latest sessions walks the user's index backward and stops at three,
    like the tables' owner would, instead of reading all hundred and sorting them."""
    user = filled.users[2]
    params = {"user_id": user, "limit": 3}
    nodes = await explain(filled.db, RECENT_SQL, params, Identity(user), "service")
    scans = history_scans(nodes)
    assert {n["Relation Name"] for n in scans} == {"mentor_conversations", "daily_sessions"}
    assert not [n for n in scans if n["Node Type"] == "Seq Scan"], scans
    for scan in scans:
        assert rows_read(scan) <= 3, scan
    assert not [n for n in nodes if n["Node Type"] == "Sort"], nodes


async def test_since_last_time_reads_a_few_sessions_not_the_users_history(filled: Filled) -> None:
    """A start's context (here its preview: `start_session` writing nothing) reads the
    user's last few ended sessions, not all hundred. Inside the function the plan cannot be
    EXPLAINed from outside, so this backend's table statistics count what the call read
    (before and after: the view also holds earlier transactions' unflushed counts)."""
    user = filled.users[1]
    now = utcnow()
    limits = StartLimits(now - timedelta(days=1), 1000, 5, 5, 500, "p", "r")
    params = start_params(user, mentor_id=None, now=now, limits=limits, new=None, key=None)
    counts = (
        "SELECT relname, seq_tup_read, idx_tup_fetch FROM pg_stat_xact_user_tables "
        "WHERE relname IN ('mentor_conversations', 'daily_sessions', 'tavus_callback_events')"
    )
    async with filled.db.transaction(Identity(user), role="service") as session:
        connection = await session.connection()
        before = {r.relname: r for r in (await connection.exec_driver_sql(counts)).all()}
        [row] = (await connection.exec_driver_sql(START_SQL.text, params)).mappings().all()
        after = {r.relname: r for r in (await connection.exec_driver_sql(counts)).all()}
    assert len(row["previous_sessions"]) == limits.previous_rows
    read = {
        table: (
            after[table].seq_tup_read - before[table].seq_tup_read,
            after[table].idx_tup_fetch - before[table].idx_tup_fetch,
        )
        for table in after
    }
    # The three sessions, and the latest one again for its recap; each one's daily session;
    # nothing of the inbox; no table scanned.
    assert read["mentor_conversations"][1] <= limits.previous_rows + 1, read
    assert read["daily_sessions"][1] <= limits.previous_rows, read
    assert read.get("tavus_callback_events", (0, 0)) == (0, 0), read
    assert all(seq == 0 for seq, _ in read.values()), read
