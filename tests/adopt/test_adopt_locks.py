"""`--adopt` lets the origin app read while it plans, and blocks its reads only for the final
step (the issue: "exclusive locks only for the final short step").

While 3,000 conversations are adopted, another connection reads `mentor_conversations` with a
short `lock_timeout` at two moments the adoption's own statements mark: when it starts
linking conversations to daily sessions (the expensive part of the plan: the read goes
through, and the adopter holds SHARE ROW EXCLUSIVE, not ACCESS EXCLUSIVE) and right after it
takes ACCESS EXCLUSIVE (the read times out: the test would see a block). The moments are
SQLAlchemy's cursor events, run on the adopter's thread, so the adoption waits while the read
runs: nothing depends on timing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, event

from bench.adopt_scale import generated
from facetoface.migrations.adopt import adopt_database
from tests.adopt.origin_db import origin_schema as origin
from tests.adopt.origin_db import origin_with_data
from tests.adopt.origin_db import settings as adopt_settings
from tests.support.postgres import PostgresServer, fresh_database

pytestmark = [pytest.mark.e2e]

#: The plan's most expensive statement (both before and after the change: the old code ran it
#: under ACCESS EXCLUSIVE).
PLANNING = "CREATE TEMPORARY TABLE adopt_link_candidates"
FINAL_STEP = "IN ACCESS EXCLUSIVE MODE"


def adopter_modes(url: str) -> set[str]:
    """The lock modes another backend holds on public.mentor_conversations."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT mode FROM pg_locks WHERE granted AND pid <> pg_backend_pid()"
            " AND relation = 'public.mentor_conversations'::regclass"
        ).fetchall()
    return {mode for (mode,) in rows}


def origin_reads(url: str) -> bool:
    """Whether the origin app's kind of read goes through now (False: it waited for a lock)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '200ms'")
        try:
            conn.execute("SELECT count(*) FROM public.mentor_conversations")
        except psycopg.errors.LockNotAvailable:
            return False
    return True


@contextmanager
def watching(url: str) -> Iterator[dict[str, tuple[set[str], bool]]]:
    """While inside: at the plan's linking and after the final step's lock, the adopter's lock
    modes and whether a concurrent read went through, keyed by moment."""
    seen: dict[str, tuple[set[str], bool]] = {}

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith(PLANNING):
            seen["planning"] = (adopter_modes(url), origin_reads(url))

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if FINAL_STEP in statement:
            seen["final step"] = (adopter_modes(url), origin_reads(url))

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", before)
        event.remove(Engine, "after_cursor_execute", after)


def test_the_origin_reads_while_the_adoption_plans(pg_server: PostgresServer) -> None:
    with fresh_database(pg_server, "adopt-locks") as name:
        url = pg_server.url(name)
        origin(url, generated(750, 4))
        with watching(url) as seen:
            report = adopt_database(adopt_settings(url))
    assert report.outcome == "adopted"

    modes, read = seen["planning"]
    assert read, f"the origin's read waited while the adoption planned (it held {modes})"
    assert "ShareRowExclusiveLock" in modes, modes  # the origin's writes wait
    assert "AccessExclusiveLock" not in modes, modes

    modes, read = seen["final step"]
    assert not read, "the final step let a read through (then this test proves nothing)"
    assert "AccessExclusiveLock" in modes, modes


def test_the_report_states_both_lock_durations(pg_server: PostgresServer) -> None:
    with fresh_database(pg_server, "adopt-lock-times") as name:
        url = pg_server.url(name)
        origin_with_data(url)
        report = adopt_database(adopt_settings(url))
    locks = report.locks
    assert locks is not None
    assert 0 < locks.reads_blocked < locks.writes_blocked
    printed = re.search(
        r"took no writes for ([0-9.]+) s; reads went on for the first ([0-9.]+) s .*"
        r"waited only for the last ([0-9.]+) s \(the final step, ACCESS EXCLUSIVE\)",
        report.render(),
    )
    assert printed is not None, report.message
    assert printed.groups() == tuple(
        f"{seconds:.2f}"
        for seconds in (
            locks.writes_blocked,
            locks.writes_blocked - locks.reads_blocked,
            locks.reads_blocked,
        )
    )
