"""SQL of the console's development sign-in: the demo users' profiles."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from facetoface.models import Profile


@dataclass(frozen=True, slots=True)
class ProfileSummary:
    id: uuid.UUID
    email: str | None
    full_name: str | None


class ConsoleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def profile(self, user_id: uuid.UUID) -> ProfileSummary | None:
        """A profile's id, email and name (run as that user: row-level security applies)."""
        row = (
            await self.session.execute(
                select(Profile.id, Profile.email, Profile.full_name).where(Profile.id == user_id)
            )
        ).one_or_none()
        return ProfileSummary(**row._mapping) if row is not None else None
