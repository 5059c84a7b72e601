"""The session gauges' one query, counted at scrape time."""

from __future__ import annotations

from datetime import timedelta

from facetoface.clock import utcnow
from facetoface.conversations.status import LIVE_STATUSES_SQL
from facetoface.db import Database, Statement

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
