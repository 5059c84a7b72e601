"""Demo data for the walkthrough: users with complete (and partial) profiles, and a mentor.

Ids are derived from the emails, so seeding twice changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import date, time
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from facetoface.config import DEV_PERSONA_ID, DEV_REPLICA_ID
from facetoface.models import (
    MentorAvatar,
    OnboardingProfile,
    Profile,
    RitualPreferences,
    UserEmotionalCategory,
    UserGoal,
    UserPersona,
)

_NAMESPACE = uuid.UUID("6f1c2a52-8d7e-4c55-9a51-3d1f0f7f9b10")


def demo_id(name: str) -> uuid.UUID:
    """Stable id of a demo object."""
    return uuid.uuid5(_NAMESPACE, name)


#: The demo users `seed_demo_data` creates, by name.
DEMO_USERS = ("maria", "alex", "sam")


def demo_user_ids() -> list[uuid.UUID]:
    """Ids of the demo users (whether seeded or not)."""
    return [demo_id(name) for name in DEMO_USERS]


async def find_user_by_email(session: AsyncSession, email: str) -> uuid.UUID | None:
    """The profile id for `email` (case-insensitive), if any."""
    result = await session.execute(
        select(Profile.id).where(Profile.email == email.strip().lower()).limit(1)
    )
    return result.scalar_one_or_none()


def _demo_objects() -> list[Any]:
    maria, alex, sam = demo_user_ids()
    avatar = demo_id("avatar:sage")
    return [
        MentorAvatar(
            id=avatar,
            name="Sage",
            description="A calm growth mentor for daily rituals",
            thumbnail_url="https://example.com/avatars/sage.png",
            is_premium=False,
            is_active=True,
            tavus_replica_id=DEV_REPLICA_ID,
            tavus_persona_id=DEV_PERSONA_ID,
        ),
        # Maria: everything filled in, as the origin's onboarding would leave it.
        Profile(
            id=maria,
            email="maria@example.com",
            full_name="Maria Silva",
            language="pt",
            timezone="America/Sao_Paulo",
            onboarding_completed=True,
        ),
        OnboardingProfile(
            user_id=maria,
            disc_type="I",
            enneagram_type=7,
            confidence_score=Decimal("0.85"),
            personality_insights={"strengths": ["enthusiastic", "social"]},
        ),
        RitualPreferences(
            user_id=maria,
            timing="morning_person",
            duration="quick_focused",
            style="guided_structure",
            voice_id="warm_friend",
            focus_area="Managing work stress",
            session_frequency="daily",
            preferred_session_time=time(7, 30),
        ),
        UserEmotionalCategory(user_id=maria, category="stress_management", priority_level=1),
        UserEmotionalCategory(user_id=maria, category="work_life_balance", priority_level=2),
        UserEmotionalCategory(user_id=maria, category="personal_growth", priority_level=3),
        UserGoal(
            user_id=maria,
            goal_text="Meditate 10 minutes every morning",
            goal_type="mindfulness",
            progress_percentage=40,
            target_date=date(2026, 12, 31),
        ),
        UserGoal(
            user_id=maria,
            goal_text="Set boundaries with my manager",
            goal_type="career",
            smart_goal="Decline one after-hours request a week",
        ),
        UserGoal(user_id=maria, goal_text="An old goal", status="completed"),
        UserPersona(
            id=demo_id("persona:maria-sage"),
            user_id=maria,
            name="Sage",
            specialization="Stress and balance",
            mentor_avatar_id=avatar,
            is_active=True,
        ),
        # Alex: profile and goals only; the mentor falls back to the configured default.
        Profile(id=alex, email="alex@example.com", full_name="Alex Kim", language="en"),
        UserGoal(
            user_id=alex,
            goal_text="Run a 10k in spring",
            goal_type="health",
            progress_percentage=15,
        ),
        # Sam: a bare profile, the smallest context there is.
        Profile(id=sam, email="sam@example.com", full_name="Sam Dupont", language="fr"),
    ]


async def seed_demo_data(session: AsyncSession) -> list[tuple[str, str]]:
    """Insert the demo rows that are missing; returns (email, user id) of the demo users."""
    objects = _demo_objects()
    profiles = [o for o in objects if isinstance(o, Profile)]
    existing = set(
        (
            await session.execute(
                select(Profile.id).where(Profile.id.in_([p.id for p in profiles]))
            )
        ).scalars()
    )
    has_avatar = (
        await session.execute(select(MentorAvatar.id).where(MentorAvatar.id == objects[0].id))
    ).scalar_one_or_none()
    for obj in objects:
        if isinstance(obj, MentorAvatar):
            if has_avatar is None:
                session.add(obj)
        elif isinstance(obj, Profile):
            if obj.id not in existing:
                session.add(obj)
        elif obj.user_id not in existing:
            session.add(obj)
        await session.flush()  # parents before children
    return [(p.email, str(p.id)) for p in profiles]
