"""The origin's database flow for a start, replayed beside ours on the same database.

The origin (`start-tavus-session`, a Supabase Edge Function) read the user's context in five
sequential queries, then wrote the session in two separate inserts, each its own request with
no transaction around them. This module replays exactly that shape with asyncpg, in
autocommit, so the round trips and the database time of a start can be compared side by side
with ours (`SessionRepository.load_start_data` + `insert_session` in one transaction, then
`mark_active` in a second, as `SessionService.start` runs them).

It lives in `bench/` only: the service never runs it.

How the replay differs from the origin, and why it is still a fair count of round trips:

- The origin inserted `mentor_conversations` first, without a `daily_session_id`, then
  `daily_sessions`. Our schema (kept compatible for readers) links the two one-to-one with a
  NOT NULL foreign key and adds NOT NULL columns the origin lacked (`callback_token_hash`,
  `conversation_name`, `version`). The replay therefore inserts `daily_sessions` first and
  fills those columns. The number of statements (2 inserts) and their sequential, separate,
  autocommit nature are unchanged; only their order and a few column values differ.
- The origin made each query as an HTTP request to PostgREST, which wraps every request in a
  transaction and sets the JWT claims first. The replay sends each statement directly over one
  warm asyncpg connection with cached prepared statements: cheaper per round trip than the
  origin ever was, so any gain measured here is a lower bound.
- Both sides do database work only: neither builds the mentor context nor calls Tavus here
  (the origin called Tavus between its reads and its inserts; ours between its two
  transactions). Rows written by either flow are deleted after each sample, outside the timing.
"""

from __future__ import annotations

import hashlib
import inspect
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from facetoface.db import Database, Identity, StatementCounter
from facetoface.sessions.repository import SessionRepository

ORIGIN_READS = (
    # profiles by id (the origin used `select('*')` on each table)
    "SELECT * FROM profiles WHERE id = $1",
    "SELECT * FROM onboarding_profiles WHERE user_id = $1",
    "SELECT * FROM ritual_preferences WHERE user_id = $1",
    "SELECT * FROM user_emotional_categories WHERE user_id = $1 ORDER BY priority_level",
    "SELECT * FROM user_goals WHERE user_id = $1 AND status = 'active'",
)
ORIGIN_INSERT_DAILY = """
INSERT INTO daily_sessions
    (id, user_id, session_type, session_status, session_date, started_at, created_at, updated_at)
VALUES ($1, $2, 'face_to_face', 'started', $3, $4, $4, $4)
"""
ORIGIN_INSERT_CONVERSATION = """
INSERT INTO mentor_conversations
    (id, user_id, daily_session_id, tavus_conversation_id, conversation_url, conversation_name,
     persona_id, replica_id, session_type, status, start_time, callback_token_hash, version,
     created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'face_to_face', 'active', $9, $10, 0, $9, $9)
"""
ORIGIN_STATEMENTS = len(ORIGIN_READS) + 2


@dataclass(frozen=True, slots=True)
class Written:
    daily_session_id: uuid.UUID


def _fake_conversation() -> tuple[str, str]:
    conversation_id = "c" + secrets.token_hex(6)
    return conversation_id, f"http://127.0.0.1:9/rooms/{conversation_id}"


async def origin_start(conn: Any, user_id: uuid.UUID) -> Written:
    """Five sequential reads, then two separate inserts, all in autocommit (asyncpg)."""
    for query in ORIGIN_READS:
        await conn.fetch(query, user_id)
    now = datetime.now(UTC)
    daily_id, conversation_row_id = uuid.uuid4(), uuid.uuid4()
    conversation_id, conversation_url = _fake_conversation()
    await conn.execute(ORIGIN_INSERT_DAILY, daily_id, user_id, now.date(), now)
    await conn.execute(
        ORIGIN_INSERT_CONVERSATION,
        conversation_row_id,
        user_id,
        daily_id,
        conversation_id,
        conversation_url,
        f"origin:{conversation_row_id}",
        "p0000default",
        "r0000default",
        now,
        hashlib.sha256(secrets.token_bytes(16)).digest(),
    )
    return Written(daily_id)


def _service_transaction_kwargs() -> dict[str, Any]:
    """How `SessionService.start` opens its two transactions: as the service's own database
    role when the service has roles (row-level security), else plainly."""
    parameters = inspect.signature(Database.transaction).parameters
    return {"role": "service"} if "role" in parameters else {}


async def our_start(db: Database, user_id: uuid.UUID) -> Written:
    """The database part of `SessionService.start`: phase 1 and phase 3 transactions."""
    identity = Identity(user_id=user_id)
    kwargs = _service_transaction_kwargs()
    now = datetime.now(UTC)
    daily_id, conversation_row_id = uuid.uuid4(), uuid.uuid4()
    async with db.transaction(identity, **kwargs) as session:
        repo = SessionRepository(session)
        data = await repo.load_start_data(user_id, None)
        persona = data.persona
        await repo.insert_session(
            user_id=user_id,
            daily_session_id=daily_id,
            mentor_conversation_id=conversation_row_id,
            session_date=now.date(),
            now=now,
            conversation_name=f"bench:{conversation_row_id}",
            persona=persona,
            persona_id=(persona.tavus_persona_id or persona.avatar_persona_id) if persona else None,
            replica_id=(persona.replica_id or persona.avatar_replica_id) if persona else None,
            mentor_name=persona.name if persona else None,
            mentor_avatar_url=persona.avatar_thumbnail_url if persona else None,
            callback_token_hash=hashlib.sha256(secrets.token_bytes(16)).digest(),
        )
    # (the Tavus create happens here in the service)
    conversation_id, conversation_url = _fake_conversation()
    async with db.transaction(identity, **kwargs) as session:
        row = await SessionRepository(session).mark_active(
            conversation_row_id,
            tavus_conversation_id=conversation_id,
            conversation_url=conversation_url,
            start_time=now,
            now=datetime.now(UTC),
        )
    if row is None or row.conversation_status != "active":
        raise RuntimeError("our start flow did not leave an active session")
    return Written(daily_id)


async def delete_written(conn: Any, written: list[Written]) -> None:
    """Remove what the flows wrote (mentor_conversations goes with it: ON DELETE CASCADE)."""
    if written:
        await conn.execute(
            "DELETE FROM daily_sessions WHERE id = ANY($1::uuid[])",
            [w.daily_session_id for w in written],
        )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _summary(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "n": len(ms),
        "mean_ms": round(sum(ms) / len(ms), 3) if ms else float("nan"),
        "p50_ms": round(_pct(ms, 0.50), 3),
        "p95_ms": round(_pct(ms, 0.95), 3),
        "p99_ms": round(_pct(ms, 0.99), 3),
    }


async def compare(
    *,
    origin_conn: Any,
    ours: Database,
    ours_no_ping: Database,
    cleanup_conn: Any,
    users: list[uuid.UUID],
    iterations: int,
    time_budget_s: float,
) -> dict[str, Any]:
    """Time `iterations` starts of each flow, interleaved (origin, ours, ours without the
    pool's pre-ping), sequentially, cycling through `users`; return per-flow latency."""
    samples: dict[str, list[float]] = {"origin": [], "ours": [], "ours_no_pre_ping": []}
    cpu: dict[str, float] = dict.fromkeys(samples, 0.0)  # this process's CPU, per flow
    counter = StatementCounter(ours.engine)
    statements: list[int] = []
    deadline = time.monotonic() + time_budget_s
    try:
        for i in range(iterations):
            if time.monotonic() > deadline:
                break
            user_id = users[i % len(users)]
            written: list[Written] = []
            started, cpu0 = time.perf_counter(), time.process_time()
            written.append(await origin_start(origin_conn, user_id))
            samples["origin"].append(time.perf_counter() - started)
            cpu["origin"] += time.process_time() - cpu0
            await delete_written(cleanup_conn, written)
            written.clear()

            counter.reset()
            started, cpu0 = time.perf_counter(), time.process_time()
            written.append(await our_start(ours, user_id))
            samples["ours"].append(time.perf_counter() - started)
            cpu["ours"] += time.process_time() - cpu0
            statements.append(counter.count)
            await delete_written(cleanup_conn, written)
            written.clear()

            started, cpu0 = time.perf_counter(), time.process_time()
            written.append(await our_start(ours_no_ping, user_id))
            samples["ours_no_pre_ping"].append(time.perf_counter() - started)
            cpu["ours_no_pre_ping"] += time.process_time() - cpu0
            await delete_written(cleanup_conn, written)
    finally:
        counter.close()
    result: dict[str, Any] = {name: _summary(values) for name, values in samples.items()}
    for name, values in samples.items():
        # Client-side CPU per start (Python: driver, SQLAlchemy), the rest is waiting.
        result[name]["client_cpu_ms"] = round(1000 * cpu[name] / max(len(values), 1), 3)
    result["origin"]["statements"] = ORIGIN_STATEMENTS
    result["ours"]["statements"] = max(statements) if statements else None
    result["ours_no_pre_ping"]["statements"] = result["ours"]["statements"]
    return result
