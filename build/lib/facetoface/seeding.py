"""Seeded users: the one place that builds a user's rows, for the demo (`facetoface seed-demo`),
the tests and the benchmark.

A `UserSeed` says what a user holds; its defaults are a user as the origin app's onboarding
leaves one: a profile, the personality assessment, ritual preferences, three focus areas,
goals (one of them no longer active) and, optionally, a chosen mentor. `user_rows` turns a
seed into model rows (the profile first), `mentor_row` builds a chosen mentor alone and
`avatar_row` a mentor avatar; `insert_rows` and `insert_users` write them, parents first, in a
few bulk statements. Nothing here commits: callers insert inside their own transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from facetoface.models import (
    Base,
    MentorAvatar,
    OnboardingProfile,
    Profile,
    RitualPreferences,
    UserEmotionalCategory,
    UserGoal,
    UserPersona,
)
from facetoface.models.user_goal import GoalStatus


@dataclass(frozen=True, slots=True)
class AssessmentSeed:
    """The onboarding personality assessment (DISC, Enneagram)."""

    disc_type: str = "I"
    enneagram_type: int | None = 7
    confidence_score: Decimal | None = Decimal("0.85")
    personality_insights: dict[str, Any] | None = field(
        default_factory=lambda: {"strengths": ["enthusiastic", "social"]}
    )


@dataclass(frozen=True, slots=True)
class PreferencesSeed:
    """How the user likes their sessions (`None`: the column's default)."""

    timing: str = "morning_person"
    duration: str = "quick_focused"
    style: str = "guided_structure"
    voice_id: str = "warm_friend"
    focus_area: str = "Managing work stress"
    session_frequency: str | None = "daily"
    preferred_session_time: time | None = None


@dataclass(frozen=True, slots=True)
class GoalSeed:
    """A goal (`None`: the column's default)."""

    text: str
    goal_type: str | None = None
    status: str | None = None
    progress_percentage: int | None = None
    target_date: date | None = None
    smart_goal: str | None = None


@dataclass(frozen=True, slots=True)
class MentorSeed:
    """The user's chosen mentor (a `user_personas` row), usually pointing at an avatar."""

    avatar_id: uuid.UUID | None
    name: str = "Sage"
    specialization: str | None = "Stress and balance"
    is_active: bool = True
    tavus_persona_id: str | None = None
    replica_id: str | None = None
    id: uuid.UUID | None = None


FOCUS_AREAS = ("stress_management", "work_life_balance", "personal_growth")
GOALS = (
    GoalSeed(
        "Meditate 10 minutes every morning",
        goal_type="mindfulness",
        progress_percentage=40,
        target_date=date(2026, 12, 31),
    ),
    GoalSeed(
        "Set boundaries with my manager",
        goal_type="career",
        smart_goal="Decline one after-hours request a week",
    ),
    GoalSeed("An old goal", status=GoalStatus.completed),
)


@dataclass(frozen=True, slots=True)
class UserSeed:
    """A user and everything they hold. The defaults make a complete user; pass
    `assessment=None`, `preferences=None`, `focus_areas=()`, `goals=()` for less."""

    user_id: uuid.UUID
    email: str
    full_name: str
    language: str = "pt"
    timezone: str = "America/Sao_Paulo"
    subscription_tier: str = "free"
    onboarding_completed: bool = True
    assessment: AssessmentSeed | None = field(default_factory=AssessmentSeed)
    preferences: PreferencesSeed | None = field(default_factory=PreferencesSeed)
    focus_areas: Sequence[str] = FOCUS_AREAS
    goals: Sequence[GoalSeed] = GOALS
    mentor: MentorSeed | None = None


def avatar_row(
    *,
    tavus_replica_id: str,
    tavus_persona_id: str | None,
    name: str = "Sage",
    description: str | None = "A calm growth mentor",
    thumbnail_url: str | None = "https://example.com/avatars/sage.png",
    is_premium: bool = False,
    is_active: bool = True,
    id: uuid.UUID | None = None,
) -> MentorAvatar:
    """A mentor avatar: display metadata and the Tavus replica (and persona) behind it."""
    return MentorAvatar(
        **_given(id=id),
        name=name,
        description=description,
        thumbnail_url=thumbnail_url,
        is_premium=is_premium,
        is_active=is_active,
        tavus_replica_id=tavus_replica_id,
        tavus_persona_id=tavus_persona_id,
    )


def user_rows(seed: UserSeed) -> list[Base]:
    """The rows of one seeded user; the profile comes first (every other row references it)."""
    uid = seed.user_id
    rows: list[Base] = [
        Profile(
            id=uid,
            email=seed.email,
            full_name=seed.full_name,
            language=seed.language,
            timezone=seed.timezone,
            subscription_tier=seed.subscription_tier,
            onboarding_completed=seed.onboarding_completed,
        )
    ]
    if (a := seed.assessment) is not None:
        rows.append(
            OnboardingProfile(
                user_id=uid,
                disc_type=a.disc_type,
                enneagram_type=a.enneagram_type,
                confidence_score=a.confidence_score,
                personality_insights=a.personality_insights,
            )
        )
    if (p := seed.preferences) is not None:
        rows.append(
            RitualPreferences(
                user_id=uid,
                timing=p.timing,
                duration=p.duration,
                style=p.style,
                voice_id=p.voice_id,
                focus_area=p.focus_area,
                preferred_session_time=p.preferred_session_time,
                **_given(session_frequency=p.session_frequency),
            )
        )
    rows += [
        UserEmotionalCategory(user_id=uid, category=category, priority_level=priority)
        for priority, category in enumerate(seed.focus_areas, start=1)
    ]
    rows += [
        UserGoal(
            user_id=uid,
            goal_text=g.text,
            target_date=g.target_date,
            smart_goal=g.smart_goal,
            **_given(
                goal_type=g.goal_type, status=g.status, progress_percentage=g.progress_percentage
            ),
        )
        for g in seed.goals
    ]
    if seed.mentor is not None:
        rows.append(mentor_row(uid, seed.mentor))
    return rows


def mentor_row(user_id: uuid.UUID, mentor: MentorSeed) -> UserPersona:
    """The user's chosen mentor (for a user seeded before, or as part of `user_rows`)."""
    return UserPersona(
        **_given(id=mentor.id),
        user_id=user_id,
        name=mentor.name,
        specialization=mentor.specialization,
        mentor_avatar_id=mentor.avatar_id,
        is_active=mentor.is_active,
        tavus_persona_id=mentor.tavus_persona_id,
        replica_id=mentor.replica_id,
    )


async def insert_rows(session: AsyncSession, rows: Iterable[Base]) -> None:
    """Insert rows in two rounds: avatars and profiles, then what references them (each
    round one bulk INSERT per table)."""
    parents: list[Base] = []
    children: list[Base] = []
    for row in rows:
        (parents if isinstance(row, MentorAvatar | Profile) else children).append(row)
    for batch in (parents, children):
        if batch:
            session.add_all(batch)
            await session.flush()


async def insert_users(
    session: AsyncSession, seeds: Iterable[UserSeed], *, batch_size: int = 500
) -> int:
    """Insert many seeded users, `batch_size` at a time; returns how many. The avatars their
    mentors point at must exist already (insert them first, e.g. with `insert_rows`)."""
    count = 0
    batch: list[Base] = []
    for seed in seeds:
        batch += user_rows(seed)
        count += 1
        if count % batch_size == 0:
            await insert_rows(session, batch)
            batch = []
    await insert_rows(session, batch)
    return count


def _given(**values: Any) -> dict[str, Any]:
    """Only the values given: a `None` leaves the column to its model default."""
    return {key: value for key, value in values.items() if value is not None}
