"""History written in SQL for the growth phase: past sessions over many users, each with its
daily session, its conversation (ended, verified, a short transcript) and its callback inbox
rows — what years of use leave behind, made in seconds instead of years.

Rows are numbered: session `i` belongs to user `i mod len(users)`, its ids are derived from
`i` (so a later `fill` continues where the last one stopped), and it ended between 2 and
365 days ago — outside the reconciler's recent window, as history is. On average 4.6 inbox rows
per session: the four callbacks Tavus posts for every call, and a fifth (a repeated shutdown
notice) for three sessions in five.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from facetoface.conversations.status import CallbackOutcome, ConversationStatus, SessionStatus

#: Inbox rows per session: the four posted for every call, the fifth for 3 in 5 sessions.
EVENT_TYPES = (
    "system.replica_joined",
    "system.shutdown",
    "application.transcription_ready",
    "application.perception_analysis",
    "system.shutdown",
)
#: A short transcript (the "since last time" recap reads the user's last lines of it).
_TRANSCRIPT = (
    '[{"role":"assistant","content":"Hello again. How did the week go?"},'
    '{"role":"user","content":"Better: I kept the morning walks."},'
    '{"role":"assistant","content":"Good. What got in the way on the other days?"},'
    '{"role":"user","content":"Late meetings, mostly."}]'
)

_DAILY = """
INSERT INTO daily_sessions (id, user_id, session_type, session_status, duration_seconds,
                            session_date, started_at, completed_at, created_at, updated_at)
SELECT md5('bench-d-' || i)::uuid, ($1::uuid[])[1 + i % $4], 'face_to_face', $5,
       600, (t.created_at)::date, t.created_at, t.created_at + interval '10 minutes',
       t.created_at, t.created_at + interval '10 minutes'
  FROM generate_series($2::bigint, $3::bigint - 1) AS i,
       LATERAL (SELECT now() - interval '2 days'
                       - (hashtext('bench-t-' || i)::bigint + 2147483648) * interval '7 ms'
                       AS created_at) t
"""
# 2^32 × 7 ms ≈ 348 days: a session's age is a hash of its number, spread over the year.
_CONVERSATIONS = """
INSERT INTO mentor_conversations (
  id, user_id, daily_session_id, tavus_conversation_id, conversation_name, persona_id,
  replica_id, mentor_name, session_type, status, start_time, end_time, duration_seconds,
  shutdown_reason, replica_joined_at, shutdown_at, callback_token_hash, created_at, updated_at,
  closed_at, transcript, perception_analysis, version, reconcile_attempts,
  callbacks_verified_at)
SELECT md5('bench-m-' || i)::uuid, d.user_id, d.id, 'cbench' || i, 'bench history ' || i,
       'p0000bench00', 'r0000bench00', 'Sage', 'face_to_face', $3, d.started_at,
       d.completed_at, 600, 'participant_left', d.started_at, d.completed_at,
       '\\x00'::bytea, d.created_at, d.completed_at, d.completed_at, $4::jsonb,
       'calm, attentive', 3, 1, d.completed_at + interval '5 minutes'
  FROM generate_series($1::bigint, $2::bigint - 1) AS i
  JOIN daily_sessions d ON d.id = md5('bench-d-' || i)::uuid
"""
_EVENTS = """
INSERT INTO tavus_callback_events (mentor_conversation_id, conversation_id, event_type,
                                   dedupe_key, event_timestamp, payload, outcome, received_at)
SELECT m.id, m.tavus_conversation_id, ($3::text[])[k], 'bench:' || i || ':' || k,
       m.end_time + k * interval '1 second',
       jsonb_build_object('event_type', ($3::text[])[k], 'conversation_id',
                          m.tavus_conversation_id, 'properties',
                          jsonb_build_object('replica_id', 'r0000bench00')),
       $4, m.end_time + k * interval '1 second'
  FROM generate_series($1::bigint, $2::bigint - 1) AS i
  JOIN mentor_conversations m ON m.id = md5('bench-m-' || i)::uuid
 CROSS JOIN LATERAL generate_series(1, CASE WHEN i % 5 < 3 THEN 5 ELSE 4 END) AS k
"""

#: Rows per statement: big enough to be fast, small enough to keep each transaction short.
CHUNK = 50_000


async def history_count(conn: Any) -> int:
    """How many history sessions `fill` has written so far (its next number)."""
    count = await conn.fetchval(
        "SELECT count(*) FROM mentor_conversations WHERE conversation_name LIKE 'bench history %'"
    )
    return int(count)


async def fill(conn: Any, users: list[uuid.UUID], total: int) -> dict[str, float]:
    """Add history sessions until `total` exist (numbered from what is there), then
    `VACUUM ANALYZE` the tables; the seconds each part took."""
    start = await history_count(conn)
    t0 = time.monotonic()
    for lo in range(start, total, CHUNK):
        hi = min(lo + CHUNK, total)
        async with conn.transaction():
            await conn.execute(_DAILY, users, lo, hi, len(users), SessionStatus.completed.value)
            await conn.execute(_CONVERSATIONS, lo, hi, ConversationStatus.ended.value, _TRANSCRIPT)
            await conn.execute(_EVENTS, lo, hi, list(EVENT_TYPES), CallbackOutcome.applied.value)
    t1 = time.monotonic()
    for table in ("daily_sessions", "mentor_conversations", "tavus_callback_events"):
        await conn.execute(f"VACUUM ANALYZE {table}")
    return {"insert_s": round(t1 - t0, 1), "vacuum_analyze_s": round(time.monotonic() - t1, 1)}


async def table_sizes(conn: Any) -> dict[str, dict[str, int]]:
    """Rows and bytes (with indexes and TOAST) of the tables that grow."""
    out: dict[str, dict[str, int]] = {}
    for table in ("daily_sessions", "mentor_conversations", "tavus_callback_events"):
        row = await conn.fetchrow(
            "SELECT reltuples::bigint AS rows, pg_total_relation_size(oid) AS bytes "
            "FROM pg_class WHERE oid = $1::regclass",
            table,
        )
        out[table] = {"rows": int(row["rows"]), "bytes": int(row["bytes"])}
    return out
