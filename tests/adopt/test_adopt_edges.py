"""What `--adopt` refuses (changing nothing), and the rarer rows it has to decide about."""

from __future__ import annotations

import pytest

from facetoface.db import run_migrations
from facetoface.migrations.adopt import AdoptRefused, adopt_database
from tests.adopt.origin_db import execute, scalar, settings
from tests.adopt.origin_db import origin_with_data as origin
from tests.support.postgres import PostgresServer, fresh_database


def test_an_empty_database_is_refused(pg_server: PostgresServer) -> None:
    with (
        fresh_database(pg_server, "adopt-empty") as name,
        pytest.raises(AdoptRefused, match="use `facetoface migrate`"),
    ):
        adopt_database(settings(pg_server.url(name)))


def test_a_partial_schema_is_refused(pg_server: PostgresServer) -> None:
    with fresh_database(pg_server, "adopt-partial") as name:
        url = pg_server.url(name)
        execute(url, "CREATE TABLE public.profiles (id uuid PRIMARY KEY)")
        with pytest.raises(AdoptRefused, match="missing onboarding_profiles"):
            adopt_database(settings(url))


def test_a_facetoface_database_has_nothing_to_do(pg_server: PostgresServer) -> None:
    with fresh_database(pg_server, "adopt-ours") as name:
        url = pg_server.url(name)
        run_migrations(settings(url))
        report = adopt_database(settings(url))
    assert report.outcome == "nothing_to_do"


def test_an_incompatible_column_type_is_refused_and_nothing_changes(
    pg_server: PostgresServer,
) -> None:
    with fresh_database(pg_server, "adopt-types") as name:
        url = pg_server.url(name)
        origin(
            url, "ALTER TABLE public.mentor_conversations ALTER COLUMN duration_seconds TYPE text"
        )
        with pytest.raises(AdoptRefused, match="mentor_conversations.duration_seconds is text"):
            adopt_database(settings(url))
        assert scalar(url, "SELECT to_regclass('public.alembic_version')") is None
        assert scalar(url, "SELECT to_regnamespace('facetoface_adopt_target')") is None
        assert scalar(url, "SELECT count(*) FROM pg_policies WHERE schemaname = 'public'") == 11


def test_duplicates_unknown_values_and_varchar_columns(pg_server: PostgresServer) -> None:
    with fresh_database(pg_server, "adopt-odd") as name:
        url = pg_server.url(name)
        origin(
            url,
            # The hand-made table typed its ids as varchar; a Tavus id stored twice (a retried
            # insert); a status and a session type facetoface does not know.
            "ALTER TABLE public.mentor_conversations ALTER COLUMN tavus_conversation_id"
            " TYPE varchar(64);"
            "ALTER TABLE public.mentor_conversations DROP CONSTRAINT"
            " mentor_conversations_session_type_check;"
            "INSERT INTO public.mentor_conversations (id, user_id, tavus_conversation_id,"
            " session_type, status, start_time, created_at) VALUES"
            " ('d0000000-0000-4000-8000-000000000011', '11111111-1111-4111-8111-111111111111',"
            "  'c5f2a9e31b7d4', 'extended', 'completed', now() - interval '3 days',"
            "  now() - interval '1 day'),"
            " ('d0000000-0000-4000-8000-000000000012', '33333333-3333-4333-8333-333333333333',"
            "  'cabcdefabcdef', 'quick', 'paused', now() - interval '6 days',"
            "  now() - interval '6 days')",
        )
        report = adopt_database(settings(url))
        assert (
            scalar(
                url,
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                " WHERE attrelid = 'mentor_conversations'::regclass"
                " AND attname = 'tavus_conversation_id'",
            )
            == "text"
        )
        status = scalar(
            url,
            "SELECT status || '/' || session_type FROM mentor_conversations"
            " WHERE id = 'd0000000-0000-4000-8000-000000000012'",
        )
    found = {(f.table, f.row_id, f.reason, f.action) for f in report.findings}
    assert (
        "mentor_conversations",
        "d0000000-0000-4000-8000-000000000011",
        "duplicate (tavus_conversation_id) of an older row",
        "moved to facetoface_adopt.quarantined_rows",
    ) in found
    odd = "d0000000-0000-4000-8000-000000000012"
    assert ("mentor_conversations", odd, "unknown status", "set to ended") in found
    assert ("mentor_conversations", odd, "unknown session_type", "set to face_to_face") in found
    assert status == "ended/face_to_face"
    assert any("varchar → text" in step for step in report.steps)
    assert report.outcome == "adopted"
