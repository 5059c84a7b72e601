"""Deleting a user's data: one session, or everything of a user.

General-path SQL (several statements in one `Database.transaction`): these run rarely, and
their lock order matters more than their round trips.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from facetoface.conversations.status import LIVE_STATUSES
from facetoface.models import (
    DailySession,
    IdempotencyKey,
    MentorConversation,
    Profile,
)

#: Marks a user as being erased (migration 0011), holding the per-user lock a start that may
#: write takes shared (sessions/sql/start_session.sql): a start in its first round trip
#: commits before the mark does, and every later one sees the mark.
_MARK_ERASURE = (
    text(
        "SELECT pg_advisory_xact_lock(hashtext('facetoface.erasure'), hashtext(CAST(:u AS text)))"
    ),
    text("INSERT INTO facetoface.erasures (user_id) VALUES (:u) ON CONFLICT DO NOTHING"),
)
_UNMARK_ERASURE = text("DELETE FROM facetoface.erasures WHERE user_id = :u")


class DataRightsRepository:
    """Deleting a user's data: one session, or everything of a user."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_session(self, user_id: uuid.UUID, session_id: uuid.UUID) -> str | None:
        """Lock the caller's session's conversation row and return the Tavus id bound to it
        now (a start whose create was in flight may have bound one since it was read)."""
        # Lock the conversation row first, in the order callbacks take locks (conversation,
        # then session); the cascade alone would lock the session row first and deadlock.
        bound: str | None = await self.session.scalar(
            select(MentorConversation.tavus_conversation_id)
            .where(
                MentorConversation.daily_session_id == session_id,
                MentorConversation.user_id == user_id,
            )
            .with_for_update()
        )
        return bound

    async def delete_session(self, user_id: uuid.UUID, session_id: uuid.UUID) -> bool:
        """Delete the caller's session (locked first: `lock_session`); its conversation row
        and events go with it (FK cascades). False when it is not the caller's."""
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

    async def conversation_ids(self, user_id: uuid.UUID, *, lock: bool = False) -> set[str]:
        """The Tavus ids bound to the user's conversations (`lock`: their rows locked, in
        the callbacks' lock order, before the user is deleted)."""
        mc = MentorConversation
        query = select(mc.id, mc.tavus_conversation_id).where(mc.user_id == user_id)
        if lock:
            query = query.with_for_update()
        rows = await self.session.execute(query)
        return {row.tavus_conversation_id for row in rows if row.tavus_conversation_id}

    async def mark_erasure(self, user_id: uuid.UUID) -> None:
        """From now on no session starts for the user (see `_MARK_ERASURE`)."""
        for statement in _MARK_ERASURE:
            await self.session.execute(statement, {"u": user_id})

    async def live_sessions(self, user_id: uuid.UUID) -> list[tuple[uuid.UUID, str, str | None]]:
        """The user's live sessions: (session id, conversation name, bound Tavus id)."""
        mc = MentorConversation
        rows = await self.session.execute(
            select(mc.daily_session_id, mc.conversation_name, mc.tavus_conversation_id).where(
                mc.user_id == user_id, mc.status.in_([s.value for s in LIVE_STATUSES])
            )
        )
        return [(row[0], row[1], row[2]) for row in rows]

    async def delete_user(self, user_id: uuid.UUID) -> bool:
        """Delete the profile (the conversation rows locked first: `conversation_ids` with
        `lock`) and the user's erasure mark; every table keyed by the user cascades from the
        profile."""
        await self.session.execute(_UNMARK_ERASURE, {"u": user_id})
        result = await self.session.execute(
            delete(Profile).where(Profile.id == user_id).returning(Profile.id)
        )
        return result.first() is not None
