"""SQL of the reconciler: leased claims that N replicas can run at once, and row bookkeeping."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from facetoface.conversations.events import CARRIES_TRANSCRIPT
from facetoface.conversations.status import ConversationStatus, FailureCode
from facetoface.models import (
    DailySession,
    IdempotencyKey,
    MentorConversation,
    ReconcileRun,
    TavusCallbackEvent,
)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: uuid.UUID
    status: str
    conversation_name: str
    tavus_conversation_id: str | None
    created_at: datetime
    failure_code: str | None
    conversation_url: str | None


_ACTIVE = [ConversationStatus.active.value, ConversationStatus.ending.value]


class ReconcileRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _claim(
        self, where: Any, *, now: datetime, lease: timedelta, limit: int
    ) -> list[Claimed]:
        """Lease up to `limit` rows matching `where` whose lease is free.

        `FOR UPDATE SKIP LOCKED` lets replicas claim disjoint rows concurrently; the lease keeps
        them disjoint after commit, while
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

    async def release_leases(self, ids: list[uuid.UUID], until: datetime) -> int:
        """Free the leases of `ids` that are still the ones this claim took (ending at
        `until`: a row another replica claimed since is left alone), and give back the
        attempt the claim counted. Returns how many rows were released."""
        mc = MentorConversation
        result = await self.session.execute(
            update(mc)
            .where(mc.id.in_(ids), mc.reconcile_lease_until == until)
            .values(
                reconcile_lease_until=None,
                reconcile_attempts=func.greatest(mc.reconcile_attempts - 1, 0),
            )
            .returning(mc.id)
        )
        return len(result.all())

    async def claim_unresolved(
        self, *, now: datetime, starting_grace: timedelta, lease: timedelta, limit: int
    ) -> list[Claimed]:
        """Starts whose Tavus outcome we do not know: `indeterminate`, or `starting` for longer
        than a start can take (its process died, or its database write failed, between
        phases)."""
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
            and_(mc.status.in_(_ACTIVE), mc.start_time < now - max_age),
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
                mc.status.in_(_ACTIVE),
                mc.tavus_conversation_id.is_not(None),
                or_(mc.updated_at < now - quiet, mc.conversation_url.is_(None)),
            ),
            now=now,
            lease=lease,
            limit=limit,
        )

    async def claim_unverified(
        self,
        *,
        now: datetime,
        settle: timedelta,
        horizon: timedelta,
        max_attempts: int,
        lease: timedelta,
        limit: int,
    ) -> list[Claimed]:
        """Recently ended sessions whose record was not yet compared with Tavus's (once per
        session: any callback may have been lost, `replica_joined` too), and those whose Tavus
        end call failed."""
        mc = MentorConversation
        return await self._claim(
            and_(
                mc.status == ConversationStatus.ended.value,
                mc.tavus_conversation_id.is_not(None),
                mc.end_time < now - settle,
                mc.end_time > now - horizon,
                mc.reconcile_attempts < max_attempts,
                or_(
                    mc.callbacks_verified_at.is_(None),
                    mc.failure_code == FailureCode.tavus_end_failed.value,
                ),
            ),
            now=now,
            lease=lease,
            limit=limit,
        )

    async def statuses(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str | None]]:
        """Status and bound Tavus id of those of the given conversation rows that exist."""
        mc = MentorConversation
        rows = await self.session.execute(
            select(mc.id, mc.status, mc.tavus_conversation_id).where(mc.id.in_(ids))
        )
        return {row.id: (row.status, row.tavus_conversation_id) for row in rows}

    async def deleted_here(self, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Those of the given conversation ids whose rows were deleted here (migration 0011's
        `facetoface.deleted_conversations`)."""
        if not ids:
            return set()
        rows = await self.session.execute(
            text(
                "SELECT id FROM facetoface.deleted_conversations"
                " WHERE id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": ids},
        )
        return {row.id for row in rows}

    async def forget_deleted(self, before: datetime) -> int:
        """Forget the ids of rows deleted before `before` (their conversations ended long
        since: Tavus ends every call by its maximum duration)."""
        result = await self.session.execute(
            text("DELETE FROM facetoface.deleted_conversations WHERE deleted_at < :before"),
            {"before": before},
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def set_conversation_url(self, row_id: uuid.UUID, url: str, now: datetime) -> None:
        mc = MentorConversation
        await self.session.execute(
            update(mc)
            .where(mc.id == row_id, mc.conversation_url.is_(None))
            .values(conversation_url=url, updated_at=now, version=mc.version + 1)
        )

    async def clear_failure(self, row_id: uuid.UUID, code: FailureCode, now: datetime) -> None:
        mc = MentorConversation
        await self.session.execute(
            update(mc)
            .where(mc.id == row_id, mc.failure_code == code.value)
            .values(failure_code=None, updated_at=now, version=mc.version + 1)
        )

    async def mark_verified(self, row_id: uuid.UUID, now: datetime) -> None:
        """Tavus's record of this ended session was compared with ours; done for good."""
        mc = MentorConversation
        await self.session.execute(
            update(mc)
            .where(mc.id == row_id)
            .values(callbacks_verified_at=now, reconcile_error=None)
        )

    async def record_error(self, row_id: uuid.UUID, error: str) -> None:
        """The last error the reconciler met on this row (a bounded code; the pass goes on)."""
        mc = MentorConversation
        await self.session.execute(
            update(mc).where(mc.id == row_id).values(reconcile_error=error[:120])
        )

    async def purge_expired_keys(self, now: datetime, limit: int) -> int:
        """Delete up to `limit` expired idempotency keys; how many."""
        k = IdempotencyKey
        expired = select(k.user_id, k.key).where(k.expires_at <= now).limit(limit).subquery()
        result = await self.session.execute(
            delete(k).where(tuple_(k.user_id, k.key).in_(select(expired.c.user_id, expired.c.key)))
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def expire_transcripts(self, before: datetime, *, limit: int, now: datetime) -> int:
        """Drop transcripts (and the raw callbacks carrying them) of sessions that ended
        before `before`; returns how many sessions were cleared."""
        mc, e = MentorConversation, TavusCallbackEvent
        ids = list(
            (
                await self.session.execute(
                    select(mc.id)
                    .where(mc.end_time < before, mc.transcript.is_not(None))
                    .limit(limit)
                )
            ).scalars()
        )
        if not ids:
            return 0
        daily_ids = select(mc.daily_session_id).where(mc.id.in_(ids)).scalar_subquery()
        await self.session.execute(
            update(DailySession)
            .where(DailySession.id.in_(daily_ids))
            .values(conversation_transcript=None, updated_at=now)
        )
        await self.session.execute(
            update(mc)
            .where(mc.id.in_(ids))
            .values(transcript=None, transcript_digest=None, updated_at=now, version=mc.version + 1)
        )
        await self.session.execute(
            update(e)
            .where(
                e.mentor_conversation_id.in_(ids),
                e.event_type.in_(sorted(CARRIES_TRANSCRIPT)),
            )
            .values(payload={"redacted": "transcript retention"}, raw_body_b64=None)
        )
        return len(ids)

    async def record_pass(
        self,
        *,
        started_at: datetime,
        finished_at: datetime,
        replica: str,
        actions: dict[str, int],
        errors: int,
        keep: int,
    ) -> None:
        """Record a pass and prune all but the newest `keep` passes (one transaction, so N
        replicas writing at once never leave more than a few extra rows for long)."""
        r = ReconcileRun
        await self.session.execute(
            insert(r).values(
                id=uuid.uuid4(),
                started_at=started_at,
                finished_at=finished_at,
                replica=replica,
                actions=actions,
                errors=errors,
            )
        )
        newest = select(r.id).order_by(r.finished_at.desc(), r.id).limit(keep)
        await self.session.execute(delete(r).where(r.id.not_in(newest)))
