"""A Jepsen-style checker: after a scenario (and a reconciler pass), do the invariants hold?

What clients were told (the `History`):

- every answer is a documented one: a 2xx, a 4xx problem document with a `code` the API
  documents (or the HTTP server's own 431 for oversized headers), or a 503 with one of the
  documented 503 codes *and* `Retry-After` — never a 500, never another 5xx, never a request
  that got no answer at all;
- every conversation Tavus created was announced to its user: acknowledged (201), or answered
  `503 session_outcome_unknown` naming its session — never "nothing happened".

What Tavus (the simulator) and our database hold in the end:

- every start we acknowledged (201) maps to exactly one Tavus conversation, and no session
  has two conversations (duplicates);
- no conversation of this installation is running at Tavus without a live session (orphans);
- every callback acknowledged with a 2xx — by us to a test's own post, or to the simulator's
  deliveries — is stored (lost callbacks); with `verify_events`, so is every event Tavus holds
  for a session that ended (the reconciler's verification pass filled the gaps);
- every session is terminal, or live with its conversation running at Tavus (unexplained).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from facetoface.conversations.events import (
    MalformedCallback,
    dedupe_key,
    parse_body,
    parse_event,
)
from facetoface.conversations.status import LIVE_STATUSES
from facetoface.db import Database
from facetoface.models import MentorConversation, TavusCallbackEvent
from tavus_sim import SimServer

#: The only 5xx answers a user may ever get: each a 503 with `Retry-After` (README).
DOCUMENTED_503 = frozenset(
    {
        "database_unavailable",
        "session_outcome_unknown",
        "tavus_unavailable",
        "tavus_capacity_reached",
        "busy",
    }
)
#: The 4xx codes of the routes the scenarios call (README: the start's error table, the
#: session routes, the callback route).
DOCUMENTED_4XX = frozenset(
    {
        "unauthorized",
        "profile_not_found",
        "mentor_not_found",
        "session_not_found",
        "session_already_active",
        "invalid_idempotency_key",
        "anonymous_not_allowed",
        "idempotency_key_in_flight",
        "idempotency_key_mismatch",
        "payload_too_large",
        "validation_error",
        "rate_limited",
        "invalid_cursor",
        "callback_not_found",
        "malformed_callback",
        "session_deleted",
        "erasure_in_progress",
    }
)


def answer_label(status: int, code: str | None) -> str:
    """How an answer is counted: `201`, `503 database_unavailable`."""
    return f"{status} {code}" if code else str(status)


def problem_code(response: httpx.Response) -> str | None:
    """The `code` of a problem document, None for anything else."""
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


@dataclass
class History:
    """What clients were told during a scenario."""

    starts: list[dict[str, Any]] = field(default_factory=list)  # 201 bodies (not replays)
    start_statuses: Counter[int] = field(default_factory=Counter)
    callbacks: list[tuple[uuid.UUID, bytes]] = field(default_factory=list)  # acked 2xx
    other_statuses: Counter[int] = field(default_factory=Counter)
    #: Every answer recorded through `record`, by `answer_label`.
    answers: Counter[str] = field(default_factory=Counter)
    #: Requests that got no answer at all (a transport error), by exception name.
    unanswered: Counter[str] = field(default_factory=Counter)
    #: Session ids (`daily_sessions.id`) users were told `session_outcome_unknown` about.
    unknown_outcomes: set[str] = field(default_factory=set)
    #: Session ids users were given (201, first answers and replays).
    acknowledged: set[str] = field(default_factory=set)
    #: Each answer that breaks the contract, described.
    violations: list[str] = field(default_factory=list)
    #: Whether starts went through `record` (then the "announced" invariant is checked).
    starts_recorded: bool = False

    def operations(self) -> int:
        return sum(self.start_statuses.values()) + sum(self.other_statuses.values())

    @property
    def sent(self) -> int:
        """Requests recorded through `record` / `record_unanswered`."""
        return sum(self.answers.values()) + sum(self.unanswered.values())

    def record(
        self,
        response: httpx.Response,
        *,
        start: bool = False,
        callback: tuple[uuid.UUID, bytes] | None = None,
    ) -> str | None:
        """Count one answer and judge it against the contract; returns its problem `code`.

        `start`: the answer of `POST /v1/sessions`. `callback`: (row id, raw body) of a
        callback post — acknowledged if 2xx."""
        status = response.status_code
        code = problem_code(response)
        self.answers[answer_label(status, code)] += 1
        if start:
            self.starts_recorded = True
            self.start_statuses[status] += 1
        else:
            self.other_statuses[status] += 1
        self._judge(response, code)
        if start and status == 201:
            body = response.json()
            self.acknowledged.add(body["id"])
            if body["status"] in {"started", "in_progress"} and not body["conversation_url"]:
                self.violations.append(f"a live session without its join URL: {body}")
            if response.headers.get("idempotent-replayed") is None:
                self.starts.append(body)
        if code == "session_outcome_unknown":
            session_id = response.json().get("session_id")
            if isinstance(session_id, str):
                self.unknown_outcomes.add(session_id)
        if callback is not None and 200 <= status < 300:
            self.callbacks.append(callback)
        return code

    def record_unanswered(self, exc: BaseException, *, expected: bool = False) -> None:
        """A request that got no answer (connection refused, reset, timed out). Unless
        `expected` (the scenario killed the process serving it), that is a violation."""
        self.unanswered[type(exc).__name__] += 1
        if not expected:
            self.violations.append(f"no answer: {type(exc).__name__}: {exc}")

    def _judge(self, response: httpx.Response, code: str | None) -> None:
        status = response.status_code
        where = f"{response.request.method} {_route(response.request.url.path)}"
        if status >= 500:
            if status != 503 or code not in DOCUMENTED_503:
                self.violations.append(f"{where}: {status} {code}: {response.text[:200]}")
                return
            retry_after = response.headers.get("retry-after", "")
            if not retry_after.isdigit() or int(retry_after) < 1:
                self.violations.append(f"{where}: {status} {code} without Retry-After")
        elif status == 431:
            return  # the HTTP server's own refusal of oversized headers (RFC 6585), no document
        elif status >= 400 and code not in DOCUMENTED_4XX:
            self.violations.append(f"{where}: {status} {code}: {response.text[:200]}")


def _route(path: str) -> str:
    """A path with its ids and tokens masked (callback paths carry secrets)."""
    parts = path.split("/")
    if path.startswith("/v1/callbacks/"):
        return "/".join(parts[:4]) + "/{id}/{token}"
    return "/".join("{id}" if len(part) >= 32 else part for part in parts)


@dataclass
class Verdict:
    acknowledged_starts: int
    conversations_at_tavus: int
    duplicates: int
    orphans: int
    lost_callbacks: int
    unexplained_sessions: int
    statuses: dict[str, int]
    #: Answers that broke the contract (500s, undocumented codes, 503s without Retry-After,
    #: requests without an answer).
    violations: list[str] = field(default_factory=list)
    #: Conversations Tavus created whose user was neither given the session nor told
    #: `session_outcome_unknown`.
    unannounced: int = 0
    #: Events Tavus holds for an ended session that we do not (with `verify_events`).
    unrecovered_events: int = 0

    @property
    def ok(self) -> bool:
        return not (
            self.duplicates
            or self.orphans
            or self.lost_callbacks
            or self.unexplained_sessions
            or self.violations
            or self.unannounced
            or self.unrecovered_events
        )


async def check(
    db: Database,
    sim: SimServer,
    history: History,
    prefix: str,
    *,
    ignore: Collection[str] = (),
    planted: Collection[str] = (),
    verify_events: bool = False,
) -> Verdict:
    """Judge a history against Tavus's (the simulator's) and our database's final state.

    `prefix` is what this installation's conversation names start with; conversations in
    `ignore` (ids) are someone else's even if named like ours (a twin planted them);
    conversations in `planted` were created at Tavus by the test itself, not by a user's
    start (no user was told about them; every other invariant applies).
    `verify_events`: every event Tavus holds for a session that ended here must be stored.
    """
    conversations = [
        c for c in sim.conversations()["conversations"] if c["conversation_id"] not in ignore
    ]
    by_name = Counter(c.get("conversation_name") for c in conversations)
    ours = [c for c in conversations if (c.get("conversation_name") or "").startswith(prefix)]
    async with db.transaction() as session:
        rows = {
            row.id: row
            for row in await session.execute(
                select(
                    MentorConversation.id,
                    MentorConversation.daily_session_id,
                    MentorConversation.status,
                    MentorConversation.tavus_conversation_id,
                )
            )
        }
        stored = list(
            await session.execute(
                select(
                    TavusCallbackEvent.mentor_conversation_id,
                    TavusCallbackEvent.event_type,
                    TavusCallbackEvent.dedupe_key,
                )
            )
        )
    stored_keys = {event.dedupe_key for event in stored}
    stored_types = {(event.mentor_conversation_id, event.event_type) for event in stored}

    def row_of(conversation: dict[str, Any]) -> Any:
        try:
            return rows.get(uuid.UUID(conversation["conversation_name"].removeprefix(prefix)))
        except ValueError:
            return None

    # 1. one conversation per acknowledged start (and none created twice for one session)
    duplicates = sum(count - 1 for name, count in by_name.items() if name and count > 1)
    acked = {body["mentor_conversation_id"]: body for body in history.starts}
    for row_id, body in acked.items():
        matching = [c for c in ours if c["conversation_name"] == f"{prefix}{row_id}"]
        if len(matching) != 1 or matching[0]["conversation_id"] != body["conversation_id"]:
            duplicates += 1

    # 2. nothing runs at Tavus without a live session
    live = {s.value for s in LIVE_STATUSES}
    orphans = 0
    for conversation in ours:
        if conversation["status"] != "active":
            continue
        row = row_of(conversation)
        if row is None or row.status not in live:
            orphans += 1

    # 3. every acknowledged callback stored: the test's own posts (exactly, by dedupe key)
    # and the simulator's deliveries answered 2xx (by event type: the sim keeps no body)
    lost = 0
    for row_id, body in history.callbacks:
        if dedupe_key(row_id, parse_body(body)) not in stored_keys:
            lost += 1
    unrecovered = 0
    for conversation in ours:
        row = row_of(conversation)
        deliveries = conversation.get("deliveries", [])
        delivered = {d["event_type"] for d in deliveries if d["outcome"] == "delivered"}
        if row is None:
            lost += len(delivered)
            continue
        lost += sum((row.id, event_type) not in stored_types for event_type in delivered)
        if verify_events and row.status == "ended":
            unrecovered += _missing_events(row.id, conversation, stored_keys)

    # 4. every session terminal, or live with its conversation running at Tavus
    active_ids = {c["conversation_id"] for c in ours if c["status"] == "active"}
    unexplained = 0
    for row in rows.values():
        if row.status in {"ended", "failed"}:
            continue
        if row.status in {"active", "ending"} and row.tavus_conversation_id in active_ids:
            continue
        unexplained += 1

    # 5. every conversation Tavus created was announced to its user
    unannounced = 0
    if history.starts_recorded:
        told = history.acknowledged | history.unknown_outcomes
        for conversation in ours:
            if conversation["conversation_id"] in planted:
                continue
            row = row_of(conversation)
            if row is None or str(row.daily_session_id) not in told:
                unannounced += 1

    return Verdict(
        acknowledged_starts=len(acked),
        conversations_at_tavus=len(ours),
        duplicates=duplicates,
        orphans=orphans,
        lost_callbacks=lost,
        unexplained_sessions=unexplained,
        statuses=dict(Counter(row.status for row in rows.values())),
        violations=list(history.violations),
        unannounced=unannounced,
        unrecovered_events=unrecovered,
    )


def _missing_events(row_id: uuid.UUID, conversation: dict[str, Any], stored: set[str]) -> int:
    missing = 0
    for event in conversation.get("events", []):
        try:
            parsed = parse_event({**event, "conversation_id": conversation["conversation_id"]})
        except MalformedCallback:
            continue  # the reconciler skips those too (counted `malformed`)
        if dedupe_key(row_id, parsed) not in stored:
            missing += 1
    return missing


def callback_body(conversation_id: str, event_type: str, **properties: Any) -> bytes:
    return json.dumps(
        {
            "conversation_id": conversation_id,
            "event_type": event_type,
            "message_type": event_type.split(".")[0],
            "timestamp": "2026-11-25T10:00:00Z",
            "properties": properties,
        }
    ).encode()
