"""The origin's writers keep working: its onboarding's supabase-js inserts, as the signed-in user
under row-level security (`authenticated`, the user's claims) and without ids, succeed; the
origin's column defaults fill in what it left out; its CHECK sets still refuse bad values."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from facetoface.db import Database, Identity
from tests.security.rls import DENIED, rows, sqlstate_of
from tests.support.factories import create_user

CHECK_VIOLATION = "23514"

#: What the origin's onboarding sends (PostgREST turns each into one INSERT … RETURNING *).
ONBOARDING = {
    "onboarding_profiles": {
        "disc_type": "S",
        "enneagram_type": 2,
        "confidence_score": 0.82,
        "assessment_transcript": "…",
    },
    "ritual_preferences": {
        "timing": "evening_person",
        "duration": "deeper_dive",
        "style": "open_conversation",
        "voice_id": "gentle_guide",
        "focus_area": "Sleeping better",
    },
    "user_emotional_categories": {"category": "mindfulness"},
    "user_goals": {"goal_text": "Walk 20 minutes after dinner"},
}


def _insert(table: str, values: dict[str, object]) -> tuple[str, dict[str, object]]:
    columns = ["user_id", *values]
    sql = (
        f"INSERT INTO public.{table} ({', '.join(columns)})"
        f" VALUES ({', '.join(':' + c for c in columns)}) RETURNING *"
    )
    return sql, values


async def _signed_in(owner: Database) -> Identity:
    user_id = await create_user(owner, complete=False)
    return Identity(user_id, {"sub": str(user_id), "role": "authenticated"})


async def test_onboarding_inserts_without_ids_get_the_origins_defaults(
    owner: Database, app_db: Database
) -> None:
    user = await _signed_in(owner)
    stored = {}
    for table, values in ONBOARDING.items():
        sql, params = _insert(table, values)
        [row] = await rows(app_db, sql, {**params, "user_id": user.user_id}, identity=user)
        stored[table] = row._mapping

    for row in stored.values():
        assert isinstance(row["id"], uuid.UUID)
        assert row["user_id"] == user.user_id
        assert row["created_at"] is not None
    assert stored["onboarding_profiles"]["completed_at"] is not None
    assert stored["ritual_preferences"]["session_frequency"] == "daily"
    assert stored["ritual_preferences"]["reminder_enabled"] is True
    assert stored["user_emotional_categories"]["priority_level"] == 1
    goal = stored["user_goals"]
    assert (goal["goal_type"], goal["status"], goal["progress_percentage"], goal["source"]) == (
        "emotional_wellness",
        "active",
        0,
        "onboarding",
    )
    # What the user wrote, the mentor context reads (the start's own query, as the service).
    [context] = await rows(
        app_db,
        "SELECT count(*) AS goals FROM public.user_goals WHERE user_id = :u",
        {"u": user.user_id},
        identity=user,
        role="service",
    )
    assert context.goals == 1


async def test_updates_keep_updated_at_current(owner: Database, app_db: Database) -> None:
    user = await _signed_in(owner)
    sql, params = _insert("user_goals", ONBOARDING["user_goals"])
    [goal] = await rows(app_db, sql, {**params, "user_id": user.user_id}, identity=user)

    [updated] = await rows(
        app_db,
        "UPDATE public.user_goals SET progress_percentage = 50 WHERE id = :id RETURNING updated_at",
        {"id": goal.id},
        identity=user,
    )

    assert updated.updated_at > goal.updated_at


@pytest.mark.parametrize(
    ("table", "bad"),
    [
        ("onboarding_profiles", {"disc_type": "X"}),
        ("onboarding_profiles", {"confidence_score": 0.5}),
        ("onboarding_profiles", {"enneagram_type": 10}),
        ("ritual_preferences", {"voice_id": "robot"}),
        ("ritual_preferences", {"timing": "night_owl"}),
        ("user_emotional_categories", {"category": "anger"}),
        ("user_emotional_categories", {"category": "mindfulness", "priority_level": 6}),
        ("user_goals", {"goal_type": "wealth"}),
        ("user_goals", {"goal_text": "x", "progress_percentage": 101}),
        ("user_goals", {"goal_text": "x", "source": "imported"}),
    ],
)
async def test_the_origins_check_sets_hold(
    owner: Database, app_db: Database, table: str, bad: dict[str, object]
) -> None:
    user = await _signed_in(owner)
    sql, params = _insert(table, {**ONBOARDING[table], **bad})
    state = await sqlstate_of(app_db, sql, {**params, "user_id": user.user_id}, identity=user)
    assert state == CHECK_VIOLATION


async def test_writing_someone_elses_rows_is_refused(owner: Database, app_db: Database) -> None:
    user = await _signed_in(owner)
    victim = await _signed_in(owner)
    for table, values in ONBOARDING.items():
        sql, params = _insert(table, values)
        state = await sqlstate_of(app_db, sql, {**params, "user_id": victim.user_id}, identity=user)
        assert state == DENIED, table


async def test_session_rows_default_their_ids_too(owner: Database) -> None:
    """The origin's session tables (written by the service, or by hand in SQL) as well."""
    user_id = await create_user(owner, complete=False)
    [daily] = await rows(
        owner,
        "INSERT INTO daily_sessions (user_id, session_type) VALUES (:u, 'face_to_face')"
        " RETURNING id, session_status, session_date",
        {"u": user_id},
    )
    assert isinstance(daily.id, uuid.UUID)
    assert daily.session_status == "started"
    assert isinstance(daily.session_date, date)
    [avatar] = await rows(
        owner,
        "INSERT INTO mentor_avatars (name, tavus_replica_id) VALUES ('Sage', 'r1') RETURNING id",
    )
    assert isinstance(avatar.id, uuid.UUID)
