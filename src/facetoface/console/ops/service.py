"""What operators see and do: live sessions, statistics, the reconciler's passes, Tavus as
this replica sees it, callback outcomes; ending a stuck session.

Reads span every user, so they run as the service role acting for nobody
(`db.transaction(role="service")`); ending a session goes through `SessionService.end`, acting
for the session's owner, exactly as the owner's own end would.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import structlog

from facetoface.clock import utcnow
from facetoface.config import Settings
from facetoface.console.ops.repository import DURATION_BUCKETS, OpsRepository, UserLabel
from facetoface.console.ops.schemas import (
    BreakerState,
    BulkheadState,
    CallbackOutcome,
    CallbackOutcomes,
    DaySessions,
    DurationBucket,
    LiveSession,
    LiveSessions,
    ReconcilePass,
    ReconcilePasses,
    StartFailure,
    Stats,
    TavusState,
)
from facetoface.conversations.repository import SessionRow
from facetoface.db import Database, Identity
from facetoface.errors import NotFound
from facetoface.health import TavusHealth
from facetoface.models.reconcile_run import RECONCILE_RUNS_KEPT
from facetoface.observability.context import replica_name
from facetoface.sessions import SessionService
from facetoface.tavus import TavusClient

log = structlog.get_logger(__name__)

#: Live sessions listed at most (the oldest first: those are the ones to look at).
LIVE_SESSIONS_LIMIT = 200


class OpsSessionNotFound(NotFound):
    code = "session_not_found"
    title = "Session not found"


def _bucket_label(low: int, high: int | None) -> str:
    if high is None:
        return f"{low // 60} min+"
    if low == 0:
        return f"< {high // 60} min"
    return f"{low // 60}–{high // 60} min"


class OpsService:
    """The operators' reads and actions; one instance per app."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        tavus: TavusClient,
        sessions: SessionService,
        tavus_health: TavusHealth,
    ) -> None:
        self.settings = settings
        self.db = db
        self.tavus = tavus
        self.sessions = sessions
        self.tavus_health = tavus_health

    async def live_sessions(self) -> LiveSessions:
        """Every user's live sessions, oldest first, with their age against the cap."""
        async with self.db.transaction(role="service") as session:
            rows = await OpsRepository(session).live_sessions(LIVE_SESSIONS_LIMIT)
        labels = await self._user_labels({row.user_id for row in rows})
        cap = self.settings.session_max_call_duration_seconds
        now = utcnow()
        items = []
        for row in rows:
            age = int((now - (row.start_time or row.created_at)).total_seconds())
            label = labels.get(row.user_id)
            items.append(
                LiveSession(
                    id=row.session_id,
                    user_id=row.user_id,
                    user_email=label.email if label is not None else None,
                    user_name=label.full_name if label is not None else None,
                    status=row.session_status,
                    conversation_status=row.conversation_status,
                    conversation_id=row.tavus_conversation_id,
                    mentor_name=row.mentor_name,
                    failure_code=row.failure_code,
                    created_at=row.created_at,
                    started_at=row.start_time,
                    replica_joined_at=row.replica_joined_at,
                    last_change_at=row.updated_at,
                    age_seconds=max(0, age),
                    overdue=age > cap,
                )
            )
        return LiveSessions(
            max_call_duration_seconds=cap,
            reconciler_closes_after_seconds=cap + self.settings.reconcile_overdue_grace_seconds,
            items=items,
        )

    async def _user_labels(self, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, UserLabel]:
        """Each user's email and name, so operators see who, not only a UUID.

        Row-level security shows the service a profile only while it acts for that user (the
        service has no read of every profile, and this view adds none): one short read per
        distinct user, bounded by the live list's limit.
        """
        labels: dict[uuid.UUID, UserLabel] = {}
        for user_id in sorted(user_ids):
            async with self.db.transaction(Identity(user_id), role="service") as session:
                label = await OpsRepository(session).user_label(user_id)
            if label is not None:
                labels[user_id] = label
        return labels

    async def stats(self, days: int) -> Stats:
        """Sessions per day, the duration distribution and start failures over `days` days."""
        now = utcnow()
        first_day = now.date() - timedelta(days=days - 1)
        since = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC)
        async with self.db.transaction(role="service") as session:
            repo = OpsRepository(session)
            per_day = await repo.sessions_per_day(first_day)
            buckets = await repo.duration_buckets(since)
            failures = await repo.start_failures(since)
        # Dates are the users' own (their time zone): one can be a day ahead of UTC's.
        by_day: dict[str, dict[str, int]] = {}
        for count in per_day:
            by_day.setdefault(count.day.isoformat(), {})[count.session_status] = count.count
        last_day = max([now.date(), *(c.day for c in per_day)])
        days_out = []
        day = first_day
        while day <= last_day:
            statuses = by_day.get(day.isoformat(), {})
            days_out.append(DaySessions(date=day, total=sum(statuses.values()), by_status=statuses))
            day += timedelta(days=1)
        counts = {b.bucket: b.count for b in buckets}
        edges = (0, *DURATION_BUCKETS)
        durations = [
            DurationBucket(
                label=_bucket_label(low, high),
                min_seconds=low,
                max_seconds=high,
                count=counts.get(index, 0),
            )
            for index, (low, high) in enumerate(zip(edges, (*DURATION_BUCKETS, None), strict=True))
        ]
        return Stats(
            days=days,
            since=first_day,
            sessions_per_day=days_out,
            durations=durations,
            start_failures=[
                StartFailure(
                    failure_code=f.failure_code,
                    conversation_status=f.conversation_status,
                    count=f.count,
                )
                for f in failures
            ],
        )

    async def reconcile_passes(self, limit: int) -> ReconcilePasses:
        """The newest reconciler passes of every replica."""
        async with self.db.transaction(role="service") as session:
            runs = await OpsRepository(session).recent_runs(limit)
        return ReconcilePasses(
            kept=RECONCILE_RUNS_KEPT,
            items=[
                ReconcilePass(
                    id=run.id,
                    started_at=run.started_at,
                    finished_at=run.finished_at,
                    duration_ms=round((run.finished_at - run.started_at).total_seconds() * 1000),
                    replica=run.replica,
                    actions=dict(run.actions or {}),
                    errors=run.errors,
                )
                for run in runs
            ],
        )

    def tavus_state(self) -> TavusState:
        """This replica's circuit breaker, bulkhead and retry budget, and Tavus as last seen."""
        breaker = self.tavus.breaker
        in_flight, limit = self.tavus.bulkhead
        return TavusState(
            replica=replica_name(),
            breaker=BreakerState(
                state=breaker.state,
                consecutive_failures=breaker.consecutive_failures,
                threshold=breaker.threshold,
                cooldown_seconds=breaker.cooldown_seconds,
                retry_after_seconds=round(breaker.retry_after_seconds(), 1),
            ),
            bulkhead=BulkheadState(in_flight=in_flight, limit=limit),
            retry_budget_tokens=round(self.tavus.retry_budget_tokens, 2),
            last_seen=self.tavus_health.snapshot(),
        )

    async def callback_outcomes(self, hours: int) -> CallbackOutcomes:
        """Tavus callbacks received in the last `hours`, by event type and outcome."""
        since = utcnow() - timedelta(hours=hours)
        async with self.db.transaction(role="service") as session:
            counts = await OpsRepository(session).callback_outcomes(since)
        totals: dict[str, int] = {}
        for count in counts:
            totals[count.outcome] = totals.get(count.outcome, 0) + count.count
        return CallbackOutcomes(
            hours=hours,
            since=since,
            totals=totals,
            items=[
                CallbackOutcome(event_type=c.event_type, outcome=c.outcome, count=c.count)
                for c in counts
            ],
        )

    async def end_session(self, operator: Identity, session_id: uuid.UUID) -> SessionRow:
        """End any user's session (a stuck one): the same end as its owner's own, acting for
        the owner — at Tavus, then our records. Idempotent."""
        async with self.db.transaction(role="service") as session:
            owner = await OpsRepository(session).session_owner(session_id)
        if owner is None:
            raise OpsSessionNotFound("No session with this id exists.")
        row = await self.sessions.end(Identity(user_id=owner), session_id)
        log.info(
            "ops.session_ended",
            session_id=str(session_id),
            operator_id=str(operator.user_id),
            session_status=row.session_status,
        )
        return row
