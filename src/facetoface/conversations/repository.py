"""The one place a conversation's rows are locked and changed: `ConversationRepository.apply`.

Everything that changes a conversation — a Tavus callback, an event the reconciler fetched,
our end call, Tavus's answer to a create, the reconciler's verdict — is a `Delta` applied here,
together with what must commit with it (the callback's inbox row; the start's idempotency key).

- **PostgreSQL**: one round trip — `Database.run` sends the identity and a call of
  `facetoface.apply_delta` (migration 0006) in one message. The function locks the
  conversation row, checks the callback token, the owner and the Tavus id binding, stores the
  inbox row (`ON CONFLICT (dedupe_key) DO NOTHING`: a duplicate changes nothing), merges the
  delta into the row's facts with the rules of `state.merge` written in PL/pgSQL, derives the
  session (`state.derive`), writes both tables and returns the session as written
  (`RETURNING`). Concurrent changes serialise on the row lock; each sees the other's result,
  so no version check or retry is needed.
- **SQLite** (one writer at a time): the same steps as Python statements under the
  database's write lock, with `state.merge` and `state.derive` themselves.

`tests/conversations/test_merge_sql.py` holds the two to the same results.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from facetoface.conversations.events import ParsedEvent
from facetoface.conversations.state import (
    ConversationState,
    Delta,
    derive,
    merge,
    transcript_blocks,
)
from facetoface.conversations.status import (
    LIVE_STATUSES,
    CallbackOutcome,
    ConversationStatus,
)
from facetoface.db import Database, Identity, Role, Statement
from facetoface.models import DailySession, MentorConversation, TavusCallbackEvent


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


def _conversation_columns() -> list[Any]:
    mc = MentorConversation
    return [
        mc.id.label("mentor_conversation_id"),
        mc.status.label("conversation_status"),
        mc.tavus_conversation_id,
        mc.conversation_url,
        mc.conversation_name,
        mc.start_time,
        mc.end_time,
        mc.shutdown_at,
        mc.shutdown_reason,
        mc.failure_code,
        mc.mentor_name,
        mc.mentor_avatar_url,
    ]


def session_columns() -> list[Any]:
    """The `SessionRow` columns for SQLAlchemy Core (the SQLite path and general queries)."""
    ds = DailySession
    return [
        ds.id,
        ds.user_id,
        ds.session_status,
        ds.started_at,
        ds.completed_at,
        ds.duration_seconds,
        ds.created_at,
        *_conversation_columns(),
    ]


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

    On PostgreSQL `sql` runs right after the change, in the same message and transaction
    (it sees the change; its parameters are `params`); `sqlite` does the same work in the
    SQLite transaction after the change.
    """

    sql: Statement
    params: Mapping[str, Any]
    sqlite: Callable[[AsyncSession, SessionRow], Awaitable[None]]


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
        if self.db.is_postgres:
            params = _apply_params(row_id, delta, token_hash, owner, inbox, now)
            if extra is not None:
                params.update(extra.params)
            rows = await self.db.run(
                APPLY_SQL,
                params,
                identity,
                role=role,
                then=(extra.sql,) if extra is not None else (),
                operation="apply:mentor_conversations",
            )
            return _applied(rows[0], inbox is not None)
        return await self._apply_sqlite(
            row_id, delta, identity, role, token_hash, owner, inbox, extra, now
        )

    async def _apply_sqlite(
        self,
        row_id: uuid.UUID,
        delta: Delta,
        identity: Identity | None,
        role: Role,
        token_hash: bytes | None,
        owner: uuid.UUID | None,
        inbox: InboxEvent | None,
        extra: Extra | None,
        now: datetime,
    ) -> Applied:
        mc = MentorConversation
        async with self.db.transaction(identity, role=role) as session:
            row = (await session.execute(select(mc.__table__).where(mc.id == row_id))).one_or_none()
            if row is None:
                return Applied(False, False, False, False, None, None, None)
            data = row._mapping
            before = data["status"]
            token_ok = token_hash is None or data["callback_token_hash"] == token_hash
            if (
                not token_ok
                or (owner is not None and data["user_id"] != owner)
                or (
                    delta.conversation_id is not None
                    and data["tavus_conversation_id"] not in (None, delta.conversation_id)
                )
            ):
                return Applied(True, token_ok, False, False, None, before, None)
            outcome = None
            if inbox is not None:
                outcome = _outcome(before, inbox.known)
                inserted = await session.execute(
                    sqlite.insert(TavusCallbackEvent)
                    .values(_inbox_values(row_id, delta, inbox, outcome))
                    .on_conflict_do_nothing(index_elements=["dedupe_key"])
                    .returning(TavusCallbackEvent.id)
                )
                if inserted.first() is None:
                    return Applied(True, True, True, False, None, before, None)
            before_state = state_from_row(data)
            state = merge(before_state, delta)
            if state == before_state:
                # Nothing changed (an unknown event, a losing copy): the rows stay as they are.
                written = await read_session(session, row_id)
            else:
                written = await write_state(session, row_id, data["daily_session_id"], state, now)
            if extra is not None:
                await extra.sqlite(session, written)
        return Applied(True, True, True, True, outcome, before, written, state.shutdown_reason)


def state_from_row(data: Mapping[Any, Any]) -> ConversationState:
    """A conversation's facts from its `mentor_conversations` columns."""
    return ConversationState(**{f.name: data[f.name] for f in fields(ConversationState)})


async def write_state(
    session: AsyncSession,
    row_id: uuid.UUID,
    daily_session_id: uuid.UUID,
    state: ConversationState,
    now: datetime,
) -> SessionRow:
    """Store `state` and what derives from it on both tables (SQLite path); the session as
    written, from `RETURNING`."""
    mc = MentorConversation
    daily = _daily_table()
    view = derive(state)
    conversation = (
        await session.execute(
            update(mc)
            .where(mc.id == row_id)
            .values(
                status=state.status,
                tavus_conversation_id=state.tavus_conversation_id,
                conversation_url=state.conversation_url,
                failure_code=state.failure_code,
                start_time=state.start_time,
                replica_joined_at=state.replica_joined_at,
                shutdown_at=state.shutdown_at,
                shutdown_reason=state.shutdown_reason,
                closed_at=state.closed_at,
                end_time=view.end_time,
                duration_seconds=view.duration_seconds,
                transcript=state.transcript,
                transcript_digest=state.transcript_digest,
                recording=state.recording,
                recording_digest=state.recording_digest,
                perception_analysis=state.perception_analysis,
                post_call_actions=state.post_call_actions,
                updated_at=now,
                version=mc.version + 1,
            )
            .returning(*_conversation_columns())
        )
    ).one()
    session_part = (
        await session.execute(
            update(daily)
            .where(daily.c.id == daily_session_id)
            .values(
                session_status=view.session_status,
                started_at=view.started_at,
                completed_at=view.end_time,
                duration_seconds=view.duration_seconds,
                conversation_transcript=view.conversation_transcript,
                session_metadata=view.session_metadata,
                updated_at=now,
            )
            .returning(
                daily.c.id,
                daily.c.user_id,
                daily.c.session_status,
                daily.c.started_at,
                daily.c.completed_at,
                daily.c.duration_seconds,
                daily.c.created_at,
            )
        )
    ).one()
    return SessionRow.from_mapping({**session_part._mapping, **conversation._mapping})


async def read_session(session: AsyncSession, row_id: uuid.UUID) -> SessionRow:
    """The session of conversation `row_id` as stored."""
    row = (
        await session.execute(
            select(*session_columns())
            .select_from(DailySession)
            .join(MentorConversation, MentorConversation.daily_session_id == DailySession.id)
            .where(MentorConversation.id == row_id)
        )
    ).one()
    return SessionRow.from_mapping(row._mapping)


def _daily_table() -> Table:
    table = DailySession.__table__
    assert isinstance(table, Table)
    return table


def _outcome(status: str, known: bool) -> CallbackOutcome:
    if status == ConversationStatus.failed:
        return CallbackOutcome.no_effect  # never ran for the user; its id is kept
    return CallbackOutcome.applied if known else CallbackOutcome.ignored


def _inbox_values(
    row_id: uuid.UUID, delta: Delta, inbox: InboxEvent, outcome: CallbackOutcome
) -> dict[str, Any]:
    envelope = inbox.event.envelope
    return {
        "id": uuid.uuid4(),
        "mentor_conversation_id": row_id,
        "conversation_id": envelope.conversation_id,
        "event_type": envelope.event_type,
        "dedupe_key": inbox.dedupe_key,
        "event_timestamp": envelope.timestamp,
        "payload": inbox.event.payload,
        "raw_body_b64": inbox.raw_body_b64,
        "outcome": outcome.value,
        "received_at": inbox.received_at,
    }


# --- PostgreSQL ----------------------------------------------------------------------------
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


async def timeline(session: AsyncSession, row_id: uuid.UUID) -> list[TimelineEntry]:
    """A conversation's events in the order they happened (then arrived)."""
    e = TavusCallbackEvent
    rows = await session.execute(
        select(e.event_type, e.event_timestamp, e.received_at, e.outcome)
        .where(e.mentor_conversation_id == row_id)
        .order_by(e.received_at, e.id)
    )
    entries = [TimelineEntry(**row._mapping) for row in rows]
    return sorted(entries, key=lambda t: (t.event_timestamp or t.received_at, t.received_at))


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
