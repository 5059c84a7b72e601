"""The metric helpers: bounded labels, SQL operation names, engine instrumentation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import StaticPool

from facetoface.app import metric_labels
from facetoface.observability import metrics
from facetoface.observability.metrics import (
    callback_event_type,
    configure_labels,
    instrument_engine,
    observe_http_request,
    record_reconciler_action,
    shutdown_reason_label,
    sql_operation,
)
from tests.conftest import base_settings


@pytest.fixture(autouse=True)
def _labels() -> None:
    """The label sets the app hands the metrics at wiring time (`create_app` does this)."""
    configure_labels(metric_labels())


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("statement", "operation"),
    [
        ("SELECT daily_sessions.id FROM daily_sessions WHERE id = ?", "select:daily_sessions"),
        (
            "SELECT m.id, (SELECT count(*) FROM tavus_callback_events) AS n "
            "FROM mentor_conversations AS m JOIN daily_sessions ON 1 = 1",
            "select:mentor_conversations",
        ),
        (
            "SELECT (SELECT json_object('a', profiles.full_name) FROM profiles "
            "WHERE profiles.id = $1) AS profile, (SELECT 1 FROM user_goals) AS goals",
            "select:profiles",
        ),
        ('SELECT "user_goals".id FROM public."user_goals"', "select:user_goals"),
        ("INSERT INTO mentor_conversations (id) VALUES (?)", "insert:mentor_conversations"),
        ("UPDATE mentor_conversations SET status=? WHERE id=?", "update:mentor_conversations"),
        ("DELETE FROM idempotency_keys WHERE user_id = $1", "delete:idempotency_keys"),
        (
            "WITH anon_2 AS (INSERT INTO daily_sessions (id) VALUES ($1) RETURNING id) "
            "INSERT INTO mentor_conversations (id) SELECT $2 WHERE EXISTS "
            "(SELECT anon_2.id FROM anon_2)",
            "insert:mentor_conversations",
        ),
        (
            "WITH upd AS (UPDATE mentor_conversations SET status=$1 RETURNING id), "
            "daily_upd AS (UPDATE daily_sessions SET x=$2 RETURNING id) "
            "SELECT (SELECT count(*) FROM daily_upd) AS matched FROM upd",
            "update:mentor_conversations",
        ),
        ("WITH x AS (SELECT 1) SELECT * FROM profiles", "select:profiles"),
        ("SELECT 1", "select"),
        ("BEGIN ISOLATION LEVEL REPEATABLE READ", "begin"),
        ("SELECT version_num FROM alembic_version", "select:alembic_version"),
        ("SET LOCAL statement_timeout = 1000", "set"),
        ("SELECT * FROM pg_catalog.pg_class", "select:other"),
        ("select x from 'from' where y = 'FROM secrets'", "select:other"),
        ("EXPLAIN SELECT 1", "other"),
        ("", "other"),
    ],
)
def test_sql_operation(statement: str, operation: str) -> None:
    assert sql_operation(statement) == operation


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        ("max_call_duration reached", "max_call_duration"),
        ("participant_left_timeout", "participant_left_timeout"),
        ("Participant_Absent_Timeout  reached", "participant_absent_timeout"),
        ("bot_could_not_join_meeting_it_was_probably_ended", "bot_could_not_join_meeting"),
        ("end_conversation_endpoint_hit", "end_conversation_endpoint_hit"),
        ("internal error occurred at step 3", "internal_error"),
        ("user_end", "user_end"),
        ("something new from Tavus", "other"),
        (None, "unknown"),
        ("", "unknown"),
    ],
)
def test_shutdown_reason_label_is_bounded(reason: str | None, label: str) -> None:
    assert shutdown_reason_label(reason) == label


def test_callback_event_types_are_bounded() -> None:
    assert callback_event_type("system.shutdown") == "system.shutdown"
    assert callback_event_type("application.transcription_ready") == (
        "application.transcription_ready"
    )
    assert callback_event_type("conversation_ended") == "conversation_ended"
    assert callback_event_type("application.whatever_" + "x" * 80) == "other"


def test_reconciler_actions_are_bounded() -> None:
    before = sample("facetoface_reconciler_actions_total", action="other")
    record_reconciler_action("adopted")
    record_reconciler_action("Robert'); DROP TABLE --")
    assert sample("facetoface_reconciler_actions_total", action="other") == before + 1
    assert sample("facetoface_reconciler_actions_total", action="adopted") >= 1


def test_http_observation_skips_probes_and_bounds_methods() -> None:
    before = sample("facetoface_http_requests_total", method="other", route="/x", status="405")
    for route in ("/metrics", "/healthz", "/readyz"):
        observe_http_request("GET", route, 200, 0.01)
        assert (
            sample("facetoface_http_requests_total", method="GET", route=route, status="200") == 0
        )
    observe_http_request("BREW", "/x", 405, 0.01)
    after = sample("facetoface_http_requests_total", method="other", route="/x", status="405")
    assert after == before + 1


def test_tavus_hook_bounds_its_labels() -> None:
    before = sample("facetoface_tavus_requests_total", endpoint="other", outcome="other")
    metrics.record_tavus_request("surprise", "weird", 0.1)
    after = sample("facetoface_tavus_requests_total", endpoint="other", outcome="other")
    assert after == before + 1


# --- engine instrumentation ----------------------------------------------------------------
@pytest.fixture
def engine(pg_database_url: str) -> Iterator[Engine]:
    """A blocking engine on the worker's database, instrumented (twice: still one observation
    per statement), on one connection that holds a temporary `profiles` table: it shadows the
    real one (the temporary schema is searched first), so the statements label as
    `<verb>:profiles` and touch no real row."""
    url = base_settings(database_url=pg_database_url).sqlalchemy_url
    engine = create_engine(url, poolclass=StaticPool)
    instrument_engine(engine)
    instrument_engine(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TEMPORARY TABLE profiles (id integer PRIMARY KEY)"))
    yield engine
    engine.dispose()


def test_statements_are_timed_by_operation(engine: Engine) -> None:
    name = "facetoface_db_query_duration_seconds_count"
    before = sample(name, operation="insert:profiles")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO profiles (id) VALUES (1)"))
    assert sample(name, operation="insert:profiles") == before + 1


def test_driver_errors_are_counted_by_kind(engine: Engine) -> None:
    errors = "facetoface_db_errors_total"
    kinds = ("integrity", "programming", "data", "timeout")
    before = {kind: sample(errors, kind=kind) for kind in kinds}
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO profiles (id) VALUES (7)"))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("INSERT INTO profiles (id) VALUES (7)"))
    with pytest.raises(ProgrammingError), engine.begin() as conn:
        conn.execute(text("SELECT * FROM no_such_table"))
    with pytest.raises(DataError), engine.begin() as conn:
        conn.execute(text("SELECT 1 / 0"))
    with engine.connect() as conn:
        conn.execute(text("SET LOCAL statement_timeout = 1"))
        with pytest.raises(OperationalError):  # QueryCanceled
            conn.execute(text("SELECT pg_sleep(1)"))
        conn.rollback()
    assert {kind: sample(errors, kind=kind) - before[kind] for kind in kinds} == {
        "integrity": 1,
        "programming": 1,
        "data": 1,
        "timeout": 1,
    }


async def test_failed_connects_are_counted() -> None:
    # Nothing listens on port 9: the connect itself fails (no statement ever runs).
    engine = create_async_engine(
        "postgresql+psycopg://nobody:nothing@127.0.0.1:9/none", connect_args={"connect_timeout": 2}
    )
    instrument_engine(engine)
    before = sample("facetoface_db_errors_total", kind="connect")
    try:
        with pytest.raises(OperationalError):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    assert sample("facetoface_db_errors_total", kind="connect") == before + 1
