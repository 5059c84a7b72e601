"""The gauges' queries (sessions; the webhook outbox), counted at scrape time."""

from __future__ import annotations

from datetime import timedelta

from facetoface.clock import utcnow
from facetoface.conversations.status import LIVE_STATUSES_SQL
from facetoface.db import Database, Statement
from facetoface.outbox import DeliveryStatus

#: Tavus ends a call at `max_call_duration`; a session still live this long after that has
#: lost its shutdown callback (and may still bill): `facetoface_sessions_past_max_duration`.
PAST_MAX_GRACE_SECONDS = 300

#: Literal statuses, so PostgreSQL matches the partial index on live rows in every plan.
COUNT_SQL = Statement(
    "SELECT count(*) AS live, "
    "count(*) FILTER (WHERE coalesce(start_time, created_at) < %(cutoff)s) AS past "
    f"FROM mentor_conversations WHERE status IN ({LIVE_STATUSES_SQL})"
)


async def count_sessions(db: Database, max_call_duration_seconds: int) -> tuple[int, int]:
    """(live sessions, live sessions started more than max duration + grace ago)."""
    cutoff = utcnow() - timedelta(seconds=max_call_duration_seconds + PAST_MAX_GRACE_SECONDS)
    # As the service's own role: under row-level security the login role reads no table.
    [row] = await db.run(COUNT_SQL, {"cutoff": cutoff}, role="service", operation="gauges")
    return int(row["live"]), int(row["past"])


#: The outbox's gauges: one scan of the pending rows (the due index) and of the failed ones.
WEBHOOK_COUNT_SQL = Statement(
    "SELECT count(*) FILTER (WHERE status = %(pending)s) AS pending, "
    "coalesce(extract(epoch FROM %(now)s - min(next_attempt_at) FILTER ("
    "WHERE status = %(pending)s AND next_attempt_at <= %(now)s)), 0) AS oldest_due, "
    "count(*) FILTER (WHERE status = %(failed)s) AS failed "
    "FROM webhook_events WHERE status IN (%(pending)s, %(failed)s)"
)


async def count_webhook_events(db: Database) -> tuple[int, float, int]:
    """(events not delivered yet, seconds the oldest due one has waited, events failed)."""
    params = {
        "now": utcnow(),
        "pending": DeliveryStatus.pending.value,
        "failed": DeliveryStatus.failed.value,
    }
    [row] = await db.run(WEBHOOK_COUNT_SQL, params, role="service", operation="gauges")
    return int(row["pending"]), float(row["oldest_due"]), int(row["failed"])
