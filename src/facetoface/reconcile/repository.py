"""SQL of the reconciler: leased claims that N replicas can run at once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from facetoface.models import ConversationStatus, MentorConversation


@dataclass(frozen=True, slots=True)
class Claimed:
    id: uuid.UUID
    status: str
    conversation_name: str
    tavus_conversation_id: str | None
    created_at: datetime
    failure_code: str | None
    conversation_url: str | None


class ReconcileRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _claim(
        self, where: Any, *, now: datetime, lease: timedelta, limit: int
    ) -> list[Claimed]:
        """Lease up to `limit` rows matching `where` whose lease is free.

        `FOR UPDATE SKIP LOCKED` lets replicas claim disjoint rows concurrently (SQLite has one
        writer at a time and ignores it); the lease keeps them disjoint after commit, while
        the Tavus calls run without a transaction open.
        """
        mc = MentorConversation
        free = or_(mc.reconcile_lease_until.is_(None), mc.reconcile_lease_until < now)
        candidates = (
            select(mc.id)
            .where(where, free)
            .order_by(mc.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = await self.session.execute(
            update(mc)
            .where(mc.id.in_(candidates.scalar_subquery()))
            .values(reconcile_lease_until=now + lease, reconcile_attempts=mc.reconcile_attempts + 1)
            .returning(
                mc.id,
                mc.status,
                mc.conversation_name,
                mc.tavus_conversation_id,
                mc.created_at,
                mc.failure_code,
                mc.conversation_url,
            )
        )
        return [Claimed(**row._mapping) for row in rows]

    async def claim_unresolved(
        self, *, now: datetime, starting_grace: timedelta, lease: timedelta, limit: int
    ) -> list[Claimed]:
        """Starts whose Tavus outcome we do not know: `indeterminate`, or `starting` for longer
        than a start can take (its process died between phases)."""
        mc = MentorConversation
        return await self._claim(
            or_(
                mc.status == ConversationStatus.indeterminate.value,
                and_(
                    mc.status == ConversationStatus.starting.value,
                    mc.created_at < now - starting_grace,
                ),
            ),
            now=now,
            lease=lease,
            limit=limit,
        )

    async def claim_overdue(
        self, *, now: datetime, max_age: timedelta, lease: timedelta, limit: int
    ) -> list[Claimed]:
        """Live sessions older than the call cap plus grace: Tavus should have ended them."""
        mc = MentorConversation
        return await self._claim(
            and_(
                mc.status.in_([ConversationStatus.active.value, ConversationStatus.ending.value]),
                mc.start_time < now - max_age,
            ),
            now=now,
            lease=lease,
            limit=limit,
        )

    async def claim_quiet_live(
        self, *, now: datetime, quiet: timedelta, lease: timedelta, limit: int
    ) -> list[Claimed]:
        """Active sessions we have heard nothing about for a while (Tavus may have ended them
        and the shutdown callback been lost), or whose join URL we never learnt (a callback
        adopted them after the create's answer was lost)."""
        mc = MentorConversation
        return await self._claim(
            and_(
                mc.status.in_([ConversationStatus.active.value, ConversationStatus.ending.value]),
                mc.tavus_conversation_id.is_not(None),
                or_(mc.updated_at < now - quiet, mc.conversation_url.is_(None)),
            ),
            now=now,
            lease=lease,
            limit=limit,
        )

    async def claim_incomplete(
        self,
        *,
        now: datetime,
        settle: timedelta,
        horizon: timedelta,
        max_attempts: int,
        lease: timedelta,
        limit: int,
    ) -> list[Claimed]:
        """Ended sessions still missing Tavus's shutdown or transcript (a lost callback), or
        whose Tavus end call failed."""
        mc = MentorConversation
        return await self._claim(
            and_(
                mc.status == ConversationStatus.ended.value,
                mc.tavus_conversation_id.is_not(None),
                mc.end_time < now - settle,
                mc.end_time > now - horizon,
                mc.reconcile_attempts < max_attempts,
                or_(
                    mc.shutdown_at.is_(None),
                    mc.transcript.is_(None),
                    mc.failure_code == "tavus_end_failed",
                ),
            ),
            now=now,
            lease=lease,
            limit=limit,
        )

    async def statuses(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str | None]]:
        """Status and bound Tavus id of the given conversation rows."""
        mc = MentorConversation
        rows = await self.session.execute(
            select(mc.id, mc.status, mc.tavus_conversation_id).where(mc.id.in_(ids))
        )
        return {row.id: (row.status, row.tavus_conversation_id) for row in rows}

    async def set_conversation_url(self, row_id: uuid.UUID, url: str, now: datetime) -> None:
        mc = MentorConversation
        await self.session.execute(
            update(mc)
            .where(mc.id == row_id, mc.conversation_url.is_(None))
            .values(conversation_url=url, updated_at=now, version=mc.version + 1)
        )

    async def clear_failure(self, row_id: uuid.UUID, code: str, now: datetime) -> None:
        mc = MentorConversation
        await self.session.execute(
            update(mc)
            .where(mc.id == row_id, mc.failure_code == code)
            .values(failure_code=None, updated_at=now, version=mc.version + 1)
        )
