"""SQL of the webhook delivery: leased claims N replicas can run at once, outcomes, the
operators' list and "send again", retention."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from facetoface.models import WebhookEvent
from facetoface.outbox import DeliveryStatus


@dataclass(frozen=True, slots=True)
class Claimed:
    """An event this replica holds the lease of."""

    id: uuid.UUID
    event_type: str
    data: dict[str, Any]
    occurred_at: datetime
    attempts: int
    created_at: datetime
    retry_until: datetime | None
    lease_token: uuid.UUID


@dataclass(frozen=True, slots=True)
class EventRow:
    """An event as the operators' console lists it."""

    id: uuid.UUID
    event_type: str
    event_key: str
    status: str
    attempts: int
    last_error: str | None
    occurred_at: datetime
    created_at: datetime
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    data: dict[str, Any]


_ROW_COLUMNS = (
    WebhookEvent.id,
    WebhookEvent.event_type,
    WebhookEvent.event_key,
    WebhookEvent.status,
    WebhookEvent.attempts,
    WebhookEvent.last_error,
    WebhookEvent.occurred_at,
    WebhookEvent.created_at,
    WebhookEvent.next_attempt_at,
    WebhookEvent.last_attempt_at,
    WebhookEvent.delivered_at,
    WebhookEvent.data,
)
_PENDING = DeliveryStatus.pending.value


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(self, *, now: datetime, lease: timedelta, limit: int) -> list[Claimed]:
        """Lease up to `limit` due events, oldest first. `FOR UPDATE SKIP LOCKED` lets replicas
        claim disjoint events at once; the lease keeps them disjoint after the commit, while
        the HTTP calls run with no transaction open."""
        w = WebhookEvent
        due = (
            select(w.id)
            .where(
                w.status == _PENDING,
                w.next_attempt_at <= now,
                or_(w.lease_until.is_(None), w.lease_until < now),
            )
            .order_by(w.next_attempt_at, w.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        token = uuid.uuid4()
        rows = await self.session.execute(
            update(w)
            .where(w.id.in_(due.scalar_subquery()))
            .values(lease_until=now + lease, lease_token=token)
            .returning(
                w.id,
                w.event_type,
                w.data,
                w.occurred_at,
                w.attempts,
                w.created_at,
                w.retry_until,
                w.lease_token,
            )
        )
        return [Claimed(**row._mapping) for row in rows]

    async def record(
        self,
        claimed: Claimed,
        *,
        now: datetime,
        status: DeliveryStatus,
        error: str | None,
        next_attempt_at: datetime,
    ) -> bool:
        """One attempt's outcome, written only by the lease's holder (a replica whose lease ran
        out and was taken over writes nothing); True when written."""
        w = WebhookEvent
        result = await self.session.execute(
            update(w)
            .where(w.id == claimed.id, w.lease_token == claimed.lease_token)
            .values(
                status=status.value,
                attempts=w.attempts + 1,
                last_attempt_at=now,
                last_error=error[:300] if error else None,
                delivered_at=now if status is DeliveryStatus.delivered else None,
                next_attempt_at=next_attempt_at,
                lease_until=None,
                lease_token=None,
            )
        )
        return bool(getattr(result, "rowcount", 0))

    async def expire(self, *, now: datetime, window: timedelta, error: str, limit: int) -> int:
        """Mark failed the pending events past their retry window that no one holds (on a
        deployment that does not deliver, nothing else ever will); how many."""
        w = WebhookEvent
        past = or_(
            w.retry_until < now,
            and_(w.retry_until.is_(None), w.created_at < now - window),
        )
        stale = (
            select(w.id)
            .where(w.status == _PENDING, past, or_(w.lease_until.is_(None), w.lease_until < now))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        result = await self.session.execute(
            update(w)
            .where(w.id.in_(stale.scalar_subquery()))
            .values(status=DeliveryStatus.failed.value, last_error=error, lease_until=None)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def purge(self, *, before: datetime, limit: int) -> int:
        """Delete delivered and failed events recorded before `before`; how many."""
        w = WebhookEvent
        old = (
            select(w.id)
            .where(w.status != _PENDING, w.created_at < before)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        result = await self.session.execute(delete(w).where(w.id.in_(old.scalar_subquery())))
        return int(getattr(result, "rowcount", 0) or 0)

    async def events(self, *, status: DeliveryStatus | None, limit: int) -> list[EventRow]:
        """The newest events (of one status), for the operators."""
        w = WebhookEvent
        query = select(*_ROW_COLUMNS).order_by(w.created_at.desc(), w.id).limit(limit)
        if status is not None:
            query = query.where(w.status == status.value)
        return [EventRow(**row._mapping) for row in await self.session.execute(query)]

    async def counts(self, now: datetime) -> tuple[dict[str, int], float | None]:
        """Events by status, and the age in seconds of the oldest due pending one."""
        w = WebhookEvent
        by_status = {
            row.status: int(row.n)
            for row in await self.session.execute(
                select(w.status, func.count().label("n")).group_by(w.status)
            )
        }
        oldest = (
            await self.session.execute(
                select(func.min(w.next_attempt_at)).where(
                    w.status == _PENDING, w.next_attempt_at <= now
                )
            )
        ).scalar_one()
        return by_status, (now - oldest).total_seconds() if oldest is not None else None

    async def send_again(self, event_id: uuid.UUID, *, now: datetime, window: timedelta) -> bool:
        """Make an event due now with a fresh retry window (same id: receivers that already
        have it dedupe it); False when there is no such event."""
        w = WebhookEvent
        result = await self.session.execute(
            update(w)
            .where(w.id == event_id)
            .values(
                status=_PENDING,
                next_attempt_at=now,
                retry_until=now + window,
                lease_until=None,
                lease_token=None,
            )
        )
        return bool(getattr(result, "rowcount", 0))

    async def event(self, event_id: uuid.UUID) -> EventRow | None:
        row = (
            await self.session.execute(select(*_ROW_COLUMNS).where(WebhookEvent.id == event_id))
        ).first()
        return EventRow(**row._mapping) if row is not None else None
