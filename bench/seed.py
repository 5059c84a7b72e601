"""The benchmark's users: complete profiles and a mentor, from the package's seeded-user
factory (`facetoface.seeding`), the same builder the demo and the tests use."""

from __future__ import annotations

import uuid

from bench.payloads import PERSONA_ID, REPLICA_ID
from facetoface.config import Settings
from facetoface.db import Database
from facetoface.seeding import MentorSeed, UserSeed, avatar_row, insert_rows, insert_users


def bench_user(user_id: uuid.UUID, avatar_id: uuid.UUID, n: int) -> UserSeed:
    """A user as the origin's onboarding leaves one (profile, assessment, preferences, three
    focus areas, goals — one no longer active) with a chosen mentor."""
    return UserSeed(
        user_id=user_id,
        email=f"bench{n}-{user_id.hex[:8]}@example.com",
        full_name=f"Bench User {n}",
        mentor=MentorSeed(avatar_id=avatar_id),
    )


async def seed_users(settings: Settings, count: int) -> list[uuid.UUID]:
    """Insert one mentor avatar and `count` complete users choosing it; returns their ids."""
    db = Database(settings)
    users = [uuid.uuid4() for _ in range(count)]
    try:
        # A bulk administrative insert (2,000 users for the growth phase): bounded by the
        # server's own timeouts, not a request's call deadline.
        async with db.transaction(deadline=False) as session:
            avatar = avatar_row(
                id=uuid.uuid4(), tavus_replica_id=REPLICA_ID, tavus_persona_id=PERSONA_ID
            )
            await insert_rows(session, [avatar])
            await insert_users(session, (bench_user(u, avatar.id, n) for n, u in enumerate(users)))
    finally:
        await db.dispose()
    return users
