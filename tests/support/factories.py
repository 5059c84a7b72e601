"""Test data builders: plain async functions with keyword defaults."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from facetoface.db import Database
from facetoface.models import (
    DailySession,
    MentorAvatar,
    MentorConversation,
    OnboardingProfile,
    Profile,
    RitualPreferences,
    UserEmotionalCategory,
    UserGoal,
    UserPersona,
)
from facetoface.tavus import TavusClient


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
    async with db.transaction() as session:
        session.add(
            Profile(
                id=user_id,
                email=f"{user_id.hex[:8]}@example.com",
                full_name=full_name,
                language=language,
                subscription_tier=subscription_tier,
                timezone=timezone,
            )
        )
        await session.flush()
        if complete:
            session.add_all(
                [
                    OnboardingProfile(
                        user_id=user_id,
                        disc_type="I",
                        enneagram_type=7,
                        confidence_score=Decimal("0.85"),
                    ),
                    RitualPreferences(
                        user_id=user_id,
                        timing="morning_person",
                        duration="quick_focused",
                        style="guided_structure",
                        voice_id="warm_friend",
                        focus_area="Managing work stress",
                    ),
                    UserEmotionalCategory(
                        user_id=user_id, category="stress_management", priority_level=1
                    ),
                    UserEmotionalCategory(
                        user_id=user_id, category="work_life_balance", priority_level=2
                    ),
                    UserGoal(
                        user_id=user_id,
                        goal_text="Meditate 10 minutes every morning",
                        progress_percentage=40,
                        target_date=date(2026, 12, 31),
                    ),
                    UserGoal(user_id=user_id, goal_text="Set boundaries with my manager"),
                    UserGoal(user_id=user_id, goal_text="Archived goal", status="archived"),
                ]
            )
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
    async with db.transaction() as session:
        avatar = MentorAvatar(
            name=f"{name} avatar",
            thumbnail_url="https://example.com/a.png",
            is_premium=premium,
            tavus_replica_id="ravatar00001",
            tavus_persona_id="pavatar00001",
        )
        session.add(avatar)
        await session.flush()
        session.add(
            UserPersona(
                id=persona_id,
                user_id=user_id,
                name=name,
                mentor_avatar_id=avatar.id,
                is_active=is_active,
                tavus_persona_id=tavus_persona_id,
                replica_id=replica_id,
            )
        )
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
