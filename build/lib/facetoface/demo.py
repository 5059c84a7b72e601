"""Demo data for the walkthrough: users with complete (and partial) profiles, and a mentor
(built with `facetoface.seeding`, as the tests' and the benchmark's users are).

Ids are derived from the emails, so seeding twice changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from facetoface.config import DEV_PERSONA_ID, DEV_REPLICA_ID
from facetoface.models import MentorAvatar, Profile
from facetoface.seeding import (
    GoalSeed,
    MentorSeed,
    PreferencesSeed,
    UserSeed,
    avatar_row,
    user_rows,
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
        avatar_row(
            id=avatar,
            description="A calm growth mentor for daily rituals",
            tavus_replica_id=DEV_REPLICA_ID,
            tavus_persona_id=DEV_PERSONA_ID,
        ),
        # Maria: everything filled in, as the origin's onboarding would leave it.
        *user_rows(
            UserSeed(
                user_id=maria,
                email="maria@example.com",
                full_name="Maria Silva",
                preferences=PreferencesSeed(preferred_session_time=time(7, 30)),
                mentor=MentorSeed(id=demo_id("persona:maria-sage"), avatar_id=avatar),
            )
        ),
        # Alex: profile and goals only; the mentor falls back to the configured default.
        *user_rows(
            UserSeed(
                user_id=alex,
                email="alex@example.com",
                full_name="Alex Kim",
                language="en",
                timezone="UTC",
                onboarding_completed=False,
                assessment=None,
                preferences=None,
                focus_areas=(),
                goals=(
                    GoalSeed("Run a 10k in spring", goal_type="health", progress_percentage=15),
                ),
            )
        ),
        # Sam: a bare profile, the smallest context there is.
        *user_rows(
            UserSeed(
                user_id=sam,
                email="sam@example.com",
                full_name="Sam Dupont",
                language="fr",
                timezone="UTC",
                onboarding_completed=False,
                assessment=None,
                preferences=None,
                focus_areas=(),
                goals=(),
            )
        ),
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
