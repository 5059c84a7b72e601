"""All SQL of the operators' API: reads across every user's sessions (as the service role,
acting for nobody) and the reconciler's pass history (write and prune in one transaction)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from facetoface.conversations.status import LIVE_STATUSES, FailureCode
from facetoface.models import (
    DailySession,
    MentorConversation,
    Profile,
    ReconcileRun,
    TavusCallbackEvent,
)

#: Upper bounds (exclusive, seconds) of the duration distribution's buckets; the last is open.
DURATION_BUCKETS = (60, 300, 600, 900, 1800)
#: Failure codes written after a start succeeded (end and reconciler bookkeeping): not start
#: failures.
NOT_START_FAILURES = (FailureCode.tavus_end_failed.value, FailureCode.closed_by_reconciler.value)


@dataclass(frozen=True, slots=True)
class LiveSessionRow:
    session_id: uuid.UUID
    user_id: uuid.UUID
    session_status: str
    conversation_status: str
    tavus_conversation_id: str | None
    mentor_name: str | None
    failure_code: str | None
    created_at: datetime
    start_time: datetime | None
    replica_joined_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class UserLabel:
    """How an operator recognises a user: their email and display name."""

    email: str | None
    full_name: str | None


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    session_status: str
    count: int


@dataclass(frozen=True, slots=True)
class BucketCount:
    bucket: int
    count: int


@dataclass(frozen=True, slots=True)
class FailureCount:
    failure_code: str
    conversation_status: str
    count: int


@dataclass(frozen=True, slots=True)
class CallbackCount:
    event_type: str
    outcome: str
    count: int


@dataclass(frozen=True, slots=True)
class ReconcileRunRow:
    id: uuid.UUID
    started_at: datetime
    finished_at: datetime
    replica: str
    actions: dict[str, int]
    errors: int


def _live() -> list[Any]:
    # Literal values, so PostgreSQL matches the partial index on live rows.
    return [literal_column(f"'{status.value}'") for status in LIVE_STATUSES]


class OpsRepository:
    """Queries for operators. Run them in `db.transaction(role="service")`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def live_sessions(self, limit: int) -> list[LiveSessionRow]:
        """Live sessions of every user, oldest first."""
        mc, ds = MentorConversation, DailySession
        rows = await self.session.execute(
            select(
                ds.id.label("session_id"),
                ds.user_id,
                ds.session_status,
                mc.status.label("conversation_status"),
                mc.tavus_conversation_id,
                mc.mentor_name,
                mc.failure_code,
                mc.created_at,
                mc.start_time,
                mc.replica_joined_at,
                mc.updated_at,
            )
            .select_from(mc)
            .join(ds, ds.id == mc.daily_session_id)
            .where(mc.status.in_(_live()))
            .order_by(func.coalesce(mc.start_time, mc.created_at), mc.id)
            .limit(limit)
        )
        return [LiveSessionRow(**row._mapping) for row in rows]

    async def user_label(self, user_id: uuid.UUID) -> UserLabel | None:
        """The user's email and name; run it acting for that user (row-level security shows
        the service a profile only then)."""
        row = (
            await self.session.execute(
                select(Profile.email, Profile.full_name).where(Profile.id == user_id)
            )
        ).one_or_none()
        return UserLabel(email=row.email, full_name=row.full_name) if row is not None else None

    async def sessions_per_day(self, since: date) -> list[DayCount]:
        """Face-to-face sessions by the user's calendar date and status, from `since` on."""
        ds = DailySession
        rows = await self.session.execute(
            select(ds.session_date.label("day"), ds.session_status, func.count().label("count"))
            .select_from(ds)
            .join(MentorConversation, MentorConversation.daily_session_id == ds.id)
            .where(ds.session_date >= since)
            .group_by(ds.session_date, ds.session_status)
            .order_by(ds.session_date)
        )
        return [DayCount(**row._mapping) for row in rows]

    async def duration_buckets(self, since: datetime) -> list[BucketCount]:
        """Ended sessions created since `since`, counted by duration bucket (index into
        `DURATION_BUCKETS`, `len(DURATION_BUCKETS)` for the open last one)."""
        ds = DailySession
        bucket = case(
            *[(ds.duration_seconds < edge, index) for index, edge in enumerate(DURATION_BUCKETS)],
            else_=len(DURATION_BUCKETS),
        ).label("bucket")
        rows = await self.session.execute(
            select(bucket, func.count().label("count"))
            .select_from(ds)
            .join(MentorConversation, MentorConversation.daily_session_id == ds.id)
            .where(ds.duration_seconds.is_not(None), ds.created_at >= since)
            .group_by(bucket)
        )
        return [BucketCount(**row._mapping) for row in rows]

    async def start_failures(self, since: datetime) -> list[FailureCount]:
        """Starts since `since` that failed or whose outcome was (or still is) unknown, by
        failure code and where the conversation stands now."""
        mc = MentorConversation
        code = func.coalesce(mc.failure_code, "unknown").label("failure_code")
        rows = await self.session.execute(
            select(code, mc.status.label("conversation_status"), func.count().label("count"))
            .where(
                mc.created_at >= since,
                (mc.status.in_(["failed", "indeterminate"]))
                | (mc.failure_code.is_not(None) & mc.failure_code.not_in(NOT_START_FAILURES)),
            )
            .group_by(code, mc.status)
            .order_by(func.count().desc(), code)
        )
        return [FailureCount(**row._mapping) for row in rows]

    async def callback_outcomes(self, since: datetime) -> list[CallbackCount]:
        """Tavus callbacks received since `since`, by event type and outcome."""
        e = TavusCallbackEvent
        rows = await self.session.execute(
            select(e.event_type, e.outcome, func.count().label("count"))
            .where(e.received_at >= since)
            .group_by(e.event_type, e.outcome)
            .order_by(e.event_type, e.outcome)
        )
        return [CallbackCount(**row._mapping) for row in rows]

    async def session_owner(self, session_id: uuid.UUID) -> uuid.UUID | None:
        """The user a face-to-face session belongs to, if it exists."""
        ds = DailySession
        owner: uuid.UUID | None = (
            await self.session.execute(
                select(ds.user_id)
                .join(MentorConversation, MentorConversation.daily_session_id == ds.id)
                .where(ds.id == session_id)
            )
        ).scalar_one_or_none()
        return owner

    async def recent_runs(self, limit: int) -> list[ReconcileRunRow]:
        """The newest reconciler passes first."""
        r = ReconcileRun
        rows = await self.session.execute(
            select(r.id, r.started_at, r.finished_at, r.replica, r.actions, r.errors)
            .order_by(r.finished_at.desc(), r.id)
            .limit(limit)
        )
        return [ReconcileRunRow(**row._mapping) for row in rows]
