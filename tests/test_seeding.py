"""The seeded-user factory the demo, the tests and the benchmark share (facetoface.seeding)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from facetoface.config import Settings
from facetoface.db import Database
from facetoface.models import (
    MentorAvatar,
    OnboardingProfile,
    Profile,
    RitualPreferences,
    UserEmotionalCategory,
    UserGoal,
    UserPersona,
)
from facetoface.seeding import (
    FOCUS_AREAS,
    GOALS,
    MentorSeed,
    UserSeed,
    avatar_row,
    insert_rows,
    insert_users,
    user_rows,
)


@pytest.fixture
async def db(database_settings: dict[str, Any]) -> AsyncIterator[Database]:
    """The worker's database, emptied, as its owner (seeding writes past row-level security,
    as `seed-demo` and the benchmark do)."""
    database = Database(
        Settings(_env_file=None, environment="test", **database_settings)  # type: ignore[call-arg]
    )
    yield database
    await database.dispose()


def _seed(n: int, avatar_id: uuid.UUID | None = None) -> UserSeed:
    user_id = uuid.uuid4()
    mentor = MentorSeed(avatar_id=avatar_id) if avatar_id else None
    return UserSeed(user_id=user_id, email=f"u{n}@example.com", full_name=f"U {n}", mentor=mentor)


async def _count(db: Database, model: type) -> int:
    async with db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def test_a_default_seed_is_a_complete_user() -> None:
    avatar_id = uuid.uuid4()
    rows = user_rows(_seed(1, avatar_id))
    assert isinstance(rows[0], Profile)
    assert rows[0].onboarding_completed is True
    kinds = [type(r) for r in rows]
    assert kinds.count(OnboardingProfile) == 1
    assert kinds.count(RitualPreferences) == 1
    categories = [r for r in rows if isinstance(r, UserEmotionalCategory)]
    assert [(c.category, c.priority_level) for c in categories] == [
        (category, i) for i, category in enumerate(FOCUS_AREAS, start=1)
    ]
    goals = [r for r in rows if isinstance(r, UserGoal)]
    assert [g.goal_text for g in goals] == [g.text for g in GOALS]
    assert [g.status for g in goals].count("completed") == 1
    (persona,) = [r for r in rows if isinstance(r, UserPersona)]
    assert persona.mentor_avatar_id == avatar_id
    assert all(getattr(r, "user_id", rows[0].id) == rows[0].id for r in rows)


def test_a_bare_seed_is_a_profile_alone() -> None:
    seed = UserSeed(
        user_id=uuid.uuid4(),
        email="bare@example.com",
        full_name="Bare",
        assessment=None,
        preferences=None,
        focus_areas=(),
        goals=(),
    )
    assert [type(r) for r in user_rows(seed)] == [Profile]


async def test_insert_users_writes_every_row_of_many_users(db: Database) -> None:
    async with db.transaction() as session:
        avatar = avatar_row(id=uuid.uuid4(), tavus_replica_id="r1", tavus_persona_id=None)
        await insert_rows(session, [avatar])
        count = await insert_users(session, (_seed(n, avatar.id) for n in range(7)), batch_size=3)
    assert count == 7
    assert await _count(db, MentorAvatar) == 1
    assert await _count(db, Profile) == 7
    assert await _count(db, OnboardingProfile) == 7
    assert await _count(db, RitualPreferences) == 7
    assert await _count(db, UserEmotionalCategory) == 7 * len(FOCUS_AREAS)
    assert await _count(db, UserGoal) == 7 * len(GOALS)
    assert await _count(db, UserPersona) == 7
