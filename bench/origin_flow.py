"""The origin's database flow for a start, replayed beside ours on the same database.

The origin (`start-tavus-session`, a Supabase Edge Function) read the user's context in five
sequential queries, then wrote the session in two separate inserts, each its own request with
no transaction around them. This module replays exactly that shape with asyncpg, in
autocommit, so the round trips and the database time of a start can be compared side by side
with ours.

*Ours* is the service's own public start path, `SessionService.start`, against the Tavus
simulator (answering at once): the same code a `POST /v1/sessions` runs after
authentication, with no stub and no repository internals, so this replay keeps measuring the
service whatever its data path becomes. The time of its one Tavus call (the create), as the
Tavus client itself measures each HTTP attempt, is subtracted from each sample: what remains is
the database part of a start plus our own CPU around it (mentor choice, context building, the
request to Tavus), so the comparison is, if anything, strict with us.

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
- Neither side's Tavus call is timed (the origin called Tavus between its reads and its
  inserts; ours calls it between its transactions). Rows written by either flow are deleted
  after each sample, and our conversation ended at the simulator, outside the timing.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.pgwire import CountingProxy
from facetoface.app import build_state, build_tavus_client
from facetoface.config import Settings
from facetoface.db import Database, Identity
from facetoface.sessions.service import SessionService

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
    conversation_id: str | None = None


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


class OurStart:
    """Ours: `SessionService.start` for a user, minus the time of its Tavus create call."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.db = db
        self.settings = settings
        self._tavus_s = 0.0
        self.tavus = build_tavus_client(settings, on_request=self._on_tavus_request)
        self.service: SessionService | None = None

    def _on_tavus_request(self, endpoint: str, outcome: str, seconds: float) -> None:
        self._tavus_s += seconds

    async def __call__(self, user_id: uuid.UUID) -> tuple[Written, float]:
        """Start a session; (what it wrote, the seconds its Tavus calls took)."""
        if self.service is None:  # wired as the app wires it (reads the installation id)
            self.service = (await build_state(self.settings, self.db, self.tavus)).sessions
        self._tavus_s = 0.0
        started = await self.service.start(Identity(user_id=user_id), None)
        tavus_s = self._tavus_s
        row = getattr(started, "session", None)
        if row is None or row.conversation_status != "active":
            raise RuntimeError(f"our start flow did not leave an active session: {started!r}")
        written = Written(row.id, row.tavus_conversation_id)
        return written, tavus_s

    async def end_at_tavus(self, written: Written) -> None:
        """End the conversation at the simulator (untimed), so none piles up there."""
        if written.conversation_id:
            await self.tavus.end_conversation(written.conversation_id)

    async def aclose(self) -> None:
        await self.tavus.aclose()


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
    ours: OurStart,
    cleanup_conn: Any,
    users: list[uuid.UUID],
    iterations: int,
    time_budget_s: float,
    proxy: CountingProxy | None = None,
) -> dict[str, Any]:
    """Time up to `iterations` starts of each flow, interleaved (origin, ours), sequentially,
    cycling through `users`, within `time_budget_s`; return per-flow latency. With `proxy` (the
    flows' connections go through it), also the round trips of each sample."""
    samples: dict[str, list[float]] = {"origin": [], "ours": []}
    cpu: dict[str, float] = dict.fromkeys(samples, 0.0)  # this process's CPU, per flow
    trips: dict[str, list[int]] = {"origin": [], "ours": []}
    tavus_s = 0.0  # subtracted from ours: its Tavus create, as the Tavus client timed it
    deadline = time.monotonic() + time_budget_s
    for i in range(iterations):
        if time.monotonic() > deadline:
            break
        user_id = users[i % len(users)]
        mark = proxy.log.mark() if proxy else 0
        started, cpu0 = time.perf_counter(), time.process_time()
        written = await origin_start(origin_conn, user_id)
        samples["origin"].append(time.perf_counter() - started)
        cpu["origin"] += time.process_time() - cpu0
        if proxy:
            trips["origin"].append(len(proxy.log.since(mark)))
        await delete_written(cleanup_conn, [written])

        mark = proxy.log.mark() if proxy else 0
        started, cpu0 = time.perf_counter(), time.process_time()
        written, tavus_call_s = await ours(user_id)
        samples["ours"].append(time.perf_counter() - started - tavus_call_s)
        tavus_s += tavus_call_s
        cpu["ours"] += time.process_time() - cpu0
        if proxy:
            trips["ours"].append(len(proxy.log.since(mark)))
        await ours.end_at_tavus(written)
        await delete_written(cleanup_conn, [written])
    result: dict[str, Any] = {name: _summary(values) for name, values in samples.items()}
    for name, values in samples.items():
        # Client-side CPU per start (Python: driver, SQLAlchemy, the service's own work and,
        # for ours, the Tavus client's), the rest is waiting.
        result[name]["client_cpu_ms"] = round(1000 * cpu[name] / max(len(values), 1), 3)
        result[name]["round_trips"] = max(trips[name], key=trips[name].count, default=None)
    result["origin"]["statements"] = ORIGIN_STATEMENTS
    result["ours"]["tavus_ms_subtracted_mean"] = round(
        1000 * tavus_s / max(len(samples["ours"]), 1), 3
    )
    return result
