"""The one place a conversation's rows are locked and changed: `ConversationRepository.apply`.

Everything that changes a conversation — a Tavus callback, an event the reconciler fetched,
our end call, Tavus's answer to a create, the reconciler's verdict — is a `Delta` applied here,
together with what must commit with it (the callback's inbox row; the start's idempotency key).

One round trip: `Database.run` sends the identity and a call of `facetoface.apply_delta`
in one message. The function locks the conversation row, checks the callback token, the owner
and the Tavus id binding, stores the inbox row (`ON CONFLICT (dedupe_key) DO NOTHING`: a
duplicate changes nothing), merges the delta into the row's facts with the rules of
`state.merge` written in PL/pgSQL, derives the session (`state.derive`), writes both tables
and returns the session as written (`RETURNING`). Concurrent changes serialise on the row
lock; each sees the other's result, so no version check or retry is needed.

`tests/conversations/test_merge_sql.py` holds the function to `state.py`, the pure model of
the merge.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from facetoface.conversations.events import ParsedEvent
from facetoface.conversations.state import (
    ConversationState,
    Delta,
    transcript_blocks,
)
from facetoface.conversations.status import (
    LIVE_STATUSES,
    CallbackOutcome,
    ConversationStatus,
)
from facetoface.db import Database, GroupCommit, Identity, Role, Statement


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A session as the API shows it: both tables' columns side by side."""

    id: uuid.UUID
    user_id: uuid.UUID
    session_status: str
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: int | None
    created_at: datetime
    mentor_conversation_id: uuid.UUID
    conversation_status: str
    tavus_conversation_id: str | None
    conversation_url: str | None
    conversation_name: str
    start_time: datetime | None
    end_time: datetime | None
    shutdown_at: datetime | None
    shutdown_reason: str | None
    failure_code: str | None
    mentor_name: str | None
    mentor_avatar_url: str | None

    @classmethod
    def from_mapping(cls, data: Mapping[Any, Any]) -> SessionRow:
        return cls(**{name: data[name] for name in SESSION_FIELDS})


SESSION_FIELDS = tuple(f.name for f in fields(SessionRow))


def session_columns_sql(daily: str = "d", conversation: str = "m") -> str:
    """The `SessionRow` columns for SQL text, from a daily session and a conversation alias."""
    d, m = daily, conversation
    return (
        f"{d}.id, {d}.user_id, {d}.session_status, {d}.started_at, {d}.completed_at, "
        f"{d}.duration_seconds, {d}.created_at, {m}.id AS mentor_conversation_id, "
        f"{m}.status AS conversation_status, {m}.tavus_conversation_id, {m}.conversation_url, "
        f"{m}.conversation_name, {m}.start_time, {m}.end_time, {m}.shutdown_at, "
        f"{m}.shutdown_reason, {m}.failure_code, {m}.mentor_name, {m}.mentor_avatar_url"
    )


@dataclass(frozen=True, slots=True)
class InboxEvent:
    """A Tavus event to store in the inbox with its effect."""

    event: ParsedEvent
    dedupe_key: str
    known: bool
    received_at: datetime
    #: The exact body received, when storing it needed normalising (base64).
    raw_body: bytes | None = None

    @property
    def raw_body_b64(self) -> str | None:
        if self.raw_body is None or not self.event.normalized:
            return None
        return base64.b64encode(self.raw_body).decode()


@dataclass(frozen=True, slots=True)
class Extra:
    """Work that must commit with a conversation change (the start's idempotency key).

    `sql` runs right after the change, in the same message and transaction (it sees the
    change; its parameters are `params`).
    """

    sql: Statement
    params: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Applied:
    """What `apply` found and did."""

    #: The conversation row exists; its callback token matched (or none was asked for); and
    #: token, owner and Tavus id binding all matched (`authorized`).
    found: bool
    token_ok: bool
    authorized: bool
    #: The inbox row was new (always True without one); False = a duplicate, nothing changed.
    stored: bool
    outcome: CallbackOutcome | None
    before_status: str | None
    #: The session as written (None when nothing was written).
    session: SessionRow | None
    shutdown_reason: str | None = None

    @property
    def ended_now(self) -> bool:
        """This change ended a live conversation."""
        return (
            self.session is not None
            and self.before_status in LIVE_STATUSES
            and self.session.conversation_status == ConversationStatus.ended
        )


class ConversationRepository:
    """Applies deltas to conversations (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        #: Callbacks (an inbox event, for nobody) arrive many at once under load: concurrent
        #: ones share a round trip and a commit.
        self.callback_writes = GroupCommit(db, role="service", operation=_APPLY_OPERATION)

    async def apply(
        self,
        row_id: uuid.UUID,
        delta: Delta,
        *,
        identity: Identity | None = None,
        role: Role = "service",
        token_hash: bytes | None = None,
        owner: uuid.UUID | None = None,
        inbox: InboxEvent | None = None,
        extra: Extra | None = None,
        now: datetime,
    ) -> Applied:
        """Apply `delta` to conversation `row_id` (with `inbox` stored and `extra` done in the
        same transaction).

        `token_hash` (a callback's token) and `owner` (the caller) must match the row when
        given; `delta.conversation_id` must match the bound Tavus id when one is bound.
        """
        delta = delta.with_digests()
        params = _apply_params(row_id, delta, token_hash, owner, inbox, now)
        if inbox is not None and identity is None and role == "service" and extra is None:
            rows = await self.callback_writes.run(APPLY_SQL, params, order=str(row_id))
            return _applied(rows[0], True)
        if extra is not None:
            params.update(extra.params)
        rows = await self.db.run(
            APPLY_SQL,
            params,
            identity,
            role=role,
            then=(extra.sql,) if extra is not None else (),
            operation=_APPLY_OPERATION,
        )
        return _applied(rows[0], inbox is not None)


def state_from_row(data: Mapping[Any, Any]) -> ConversationState:
    """A conversation's facts from its `mentor_conversations` columns."""
    return ConversationState(**{f.name: data[f.name] for f in fields(ConversationState)})


def _apply_params(
    row_id: uuid.UUID,
    delta: Delta,
    token_hash: bytes | None,
    owner: uuid.UUID | None,
    inbox: InboxEvent | None,
    now: datetime,
) -> dict[str, Any]:
    from psycopg.types.json import Jsonb

    transcript = delta.transcript
    envelope = inbox.event.envelope if inbox is not None else None
    return {
        "row_id": row_id,
        "token_hash": token_hash,
        "owner": owner,
        "cid": delta.conversation_id,
        "now": now,
        # the inbox (NULL event_type: no inbox row)
        "event_id": uuid.uuid4(),
        "event_type": envelope.event_type if envelope is not None else None,
        "dedupe_key": inbox.dedupe_key if inbox is not None else None,
        "event_ts": envelope.timestamp if envelope is not None else None,
        "payload": Jsonb(inbox.event.payload) if inbox is not None else None,
        "raw_b64": inbox.raw_body_b64 if inbox is not None else None,
        "known": inbox.known if inbox is not None else False,
        "received_at": inbox.received_at if inbox is not None else now,
        # transitions
        "fail": delta.fail,
        "unresolved": delta.unresolved,
        "adopt": delta.adopt,
        "failure_code": delta.failure_code,
        "start_time": delta.start_time,
        "url": delta.conversation_url,
        # facts
        "joined_at": delta.joined_at,
        "shutdown_at": delta.shutdown_at,
        "shutdown_reason": delta.shutdown_reason,
        "closed_at": delta.closed_at,
        "transcript": Jsonb(transcript) if transcript is not None else None,
        "transcript_digest": delta.digests.get("transcript"),
        "transcript_blocks": (
            Jsonb(transcript_blocks(transcript)) if transcript is not None else None
        ),
        "recording": Jsonb(delta.recording) if delta.recording is not None else None,
        "recording_digest": delta.digests.get("recording"),
        "perception": delta.perception_analysis,
        "pca": Jsonb(delta.post_call_action) if delta.post_call_action is not None else None,
        "pca_digest": delta.digests.get("post_call_action"),
    }


def _applied(row: Mapping[str, Any], with_inbox: bool) -> Applied:
    written = row["mentor_conversation_id"] is not None
    stored = bool(row["stored_outcome"]) if with_inbox else written
    return Applied(
        found=bool(row["found"]),
        token_ok=bool(row["token_ok"]),
        authorized=bool(row["authorized"]),
        stored=stored,
        outcome=CallbackOutcome(row["stored_outcome"]) if row["stored_outcome"] else None,
        before_status=row["before_status"],
        session=SessionRow.from_mapping(row) if written else None,
        shutdown_reason=row["shutdown_reason"] if written else None,
    )


_APPLY_ARGS = (
    "row_id",
    "now",
    "token_hash",
    "owner",
    "cid",
    "event_type",
    "event_id",
    "dedupe_key",
    "event_ts",
    "payload",
    "raw_b64",
    "known",
    "received_at",
    "fail",
    "unresolved",
    "adopt",
    "failure_code",
    "start_time",
    "url",
    "joined_at",
    "shutdown_at",
    "shutdown_reason",
    "closed_at",
    "transcript",
    "transcript_digest",
    "transcript_blocks",
    "recording",
    "recording_digest",
    "perception",
    "pca",
    "pca_digest",
)
#: How the merge's round trips are labelled in the metrics, whichever way they are sent.
_APPLY_OPERATION = "apply:mentor_conversations"
#: The merge runs as `facetoface.apply_delta` (migration 0006): a PL/pgSQL function, so its
#: statements' plans are cached per server connection; each argument is named.
APPLY_SQL = Statement(
    "SELECT * FROM facetoface.apply_delta("
    + ", ".join(f"p_{name} => %({name})s" for name in _APPLY_ARGS)
    + ")"
)


# --- the timeline ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One stored event of a conversation, as its session's timeline shows it."""

    event_type: str
    event_timestamp: datetime | None
    received_at: datetime
    outcome: str


def timeline_json_sql(conversation: str = "m") -> str:
    """A scalar subquery: the events of conversation alias `conversation` as a JSON array, in
    the order they happened (then arrived). Only columns a user may read (RLS)."""
    return (
        "(SELECT coalesce(jsonb_agg(jsonb_build_object("
        "'event_type', e.event_type, 'event_timestamp', e.event_timestamp, "
        "'received_at', e.received_at, 'outcome', e.outcome) "
        "ORDER BY coalesce(e.event_timestamp, e.received_at), e.received_at, e.id), "
        "'[]'::jsonb) FROM tavus_callback_events e "
        f"WHERE e.mentor_conversation_id = {conversation}.id)"
    )


def timeline_from_json(items: list[dict[str, Any]]) -> list[TimelineEntry]:
    return [
        TimelineEntry(
            event_type=item["event_type"],
            event_timestamp=_parse_time(item.get("event_timestamp")),
            received_at=_parse_time(item["received_at"]) or datetime.min,
            outcome=item["outcome"],
        )
        for item in items
    ]


def _parse_time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def session_row_from_json(data: Mapping[str, Any]) -> SessionRow:
    """A `SessionRow` from `facetoface.session_json` (migration 0006): ids and times parsed."""
    values: dict[str, Any] = {}
    for name in SESSION_FIELDS:
        value = data.get(name)
        if name in _UUID_FIELDS and value is not None:
            value = uuid.UUID(value)
        elif name in _TIME_FIELDS:
            value = _parse_time(value)
        values[name] = value
    return SessionRow(**values)


_UUID_FIELDS = frozenset({"id", "user_id", "mentor_conversation_id"})
_TIME_FIELDS = frozenset(
    {"started_at", "completed_at", "created_at", "start_time", "end_time", "shutdown_at"}
)
