"""Deleting a user's data: one session, or everything of a user.

General-path SQL (several statements in one `Database.transaction`): these run rarely, and
their lock order matters more than their round trips.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from facetoface.models import (
    DailySession,
    IdempotencyKey,
    MentorConversation,
    Profile,
)


class DataRightsRepository:
    """Deleting a user's data: one session, or everything of a user."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def delete_session(self, user_id: uuid.UUID, session_id: uuid.UUID) -> bool:
        """Delete the caller's session; its conversation row and events go with it (FK
        cascades). False when it is not the caller's."""
        # Lock the conversation row first, in the order callbacks take locks (conversation,
        # then session); the cascade alone would lock the session row first and deadlock.
        await self.session.execute(
            select(MentorConversation.id)
            .where(
                MentorConversation.daily_session_id == session_id,
                MentorConversation.user_id == user_id,
            )
            .with_for_update()
        )
        # A stored start response names the session: a retry must not replay a deleted one.
        await self.session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.user_id == user_id, IdempotencyKey.daily_session_id == session_id
            )
        )
        result = await self.session.execute(
            delete(DailySession)
            .where(DailySession.id == session_id, DailySession.user_id == user_id)
            .returning(DailySession.id)
        )
        return result.first() is not None

    async def conversation_ids(self, user_id: uuid.UUID) -> list[str]:
        mc = MentorConversation
        rows = await self.session.execute(
            select(mc.tavus_conversation_id).where(
                mc.user_id == user_id, mc.tavus_conversation_id.is_not(None)
            )
        )
        return [row for row in rows.scalars() if row]

    async def delete_user(self, user_id: uuid.UUID) -> bool:
        """Delete the profile; every table keyed by the user cascades from it."""
        await self.session.execute(  # conversation rows first: the callbacks' lock order
            select(MentorConversation.id)
            .where(MentorConversation.user_id == user_id)
            .with_for_update()
        )
        result = await self.session.execute(
            delete(Profile).where(Profile.id == user_id).returning(Profile.id)
        )
        return result.first() is not None
