"""Test data builders: plain async functions with keyword defaults, on the package's seeded-user
factory (`facetoface.seeding`), with the test suite's own data."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import select

from facetoface.db import Database
from facetoface.models import DailySession, MentorConversation
from facetoface.seeding import (
    AssessmentSeed,
    GoalSeed,
    MentorSeed,
    PreferencesSeed,
    UserSeed,
    avatar_row,
    insert_rows,
    mentor_row,
    user_rows,
)
from facetoface.tavus import TavusClient

#: What `create_user(complete=True)` gives every test user: two focus areas, two active goals
#: and one archived (the mentor must never hear of it).
TEST_FOCUS_AREAS = ("stress_management", "work_life_balance")
TEST_GOALS = (
    GoalSeed(
        "Meditate 10 minutes every morning", progress_percentage=40, target_date=date(2026, 12, 31)
    ),
    GoalSeed("Set boundaries with my manager"),
    GoalSeed("Archived goal", status="archived"),
)


async def create_user(
    db: Database,
    *,
    full_name: str = "Maria Silva",
    language: str = "pt",
    complete: bool = True,
    subscription_tier: str = "free",
    timezone: str = "UTC",
) -> uuid.UUID:
    """A profile; with `complete`, also assessment, preferences, focus areas and goals."""
    user_id = uuid.uuid4()
    seed = UserSeed(
        user_id=user_id,
        email=f"{user_id.hex[:8]}@example.com",
        full_name=full_name,
        language=language,
        timezone=timezone,
        subscription_tier=subscription_tier,
        onboarding_completed=False,
        assessment=AssessmentSeed(personality_insights=None) if complete else None,
        preferences=PreferencesSeed(session_frequency=None) if complete else None,
        focus_areas=TEST_FOCUS_AREAS if complete else (),
        goals=TEST_GOALS if complete else (),
    )
    async with db.transaction() as session:
        await insert_rows(session, user_rows(seed))
    return user_id


async def create_persona(
    db: Database,
    user_id: uuid.UUID,
    *,
    name: str = "Sage",
    is_active: bool = True,
    premium: bool = False,
    tavus_persona_id: str | None = None,
    replica_id: str | None = None,
) -> uuid.UUID:
    """A mentor avatar and the user's persona pointing at it."""
    persona_id = uuid.uuid4()
    avatar = avatar_row(
        id=uuid.uuid4(),
        name=f"{name} avatar",
        description=None,
        thumbnail_url="https://example.com/a.png",
        is_premium=premium,
        tavus_replica_id="ravatar00001",
        tavus_persona_id="pavatar00001",
    )
    mentor = MentorSeed(
        id=persona_id,
        avatar_id=avatar.id,
        name=name,
        specialization=None,
        is_active=is_active,
        tavus_persona_id=tavus_persona_id,
        replica_id=replica_id,
    )
    async with db.transaction() as session:
        await insert_rows(session, [avatar, mentor_row(user_id, mentor)])
    return persona_id


async def session_rows(db: Database, session_id: uuid.UUID | str) -> dict[str, Any]:
    """Both stored rows of a session, as dicts."""
    sid = uuid.UUID(str(session_id))
    async with db.transaction() as session:
        daily = (
            await session.execute(select(DailySession).where(DailySession.id == sid))
        ).scalar_one()
        conv = (
            await session.execute(
                select(MentorConversation).where(MentorConversation.daily_session_id == sid)
            )
        ).scalar_one()
        return {
            "daily": {c.key: getattr(daily, c.key) for c in DailySession.__table__.columns},
            "conversation": {
                c.key: getattr(conv, c.key) for c in MentorConversation.__table__.columns
            },
        }


async def count_rows(db: Database, model: Any) -> int:
    from sqlalchemy import func

    async with db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def unused_tavus() -> TavusClient:
    """A Tavus client for code that needs one but, in the test at hand, never calls Tavus
    (it points at a closed port, so a call would fail loudly)."""
    return TavusClient("http://127.0.0.1:9/v2", "unused")
