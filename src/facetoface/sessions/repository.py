"""The sessions feature's SQL: a start's first round trip, the end claim, and the reads.

Round trips on PostgreSQL (counted on the wire by `tests/sessions/test_round_trips.py`):

- start: 1 here (`facetoface.start_session`, migration 0006: the replay check, the context,
  the decision and the rows in one call) + 1 when Tavus answered (`ConversationService`);
- end: 1 here (`claim_end`) + 1 to close (`ConversationService.close`);
- every read: 1.

Each is one `Database.run` message: the identity and the statement together.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from facetoface.conversations.repository import (
    Extra,
    SessionRow,
    TimelineEntry,
    session_columns_sql,
    session_row_from_json,
    timeline_from_json,
    timeline_json_sql,
)
from facetoface.conversations.state import post_call_action_list
from facetoface.conversations.status import LIVE_STATUSES_SQL, ConversationStatus
from facetoface.db import Database, Identity, Statement
from facetoface.sessions.idempotency import KeyClaim, KeyState
from facetoface.sessions.start_protocol import Refusal, StartOutcome

LIVE_INDEX = "uq_mentor_conversations_live_user_id"


@dataclass(frozen=True, slots=True)
class SessionSelector:
    """How a caller names one of their sessions: by its id (the API), or by any of the ids the
    origin's end call sends. Every id given must name the same session (else: none)."""

    daily_session_id: uuid.UUID | None = None
    mentor_conversation_id: uuid.UUID | None = None
    tavus_conversation_id: str | None = None

    def __post_init__(self) -> None:
        if (
            self.daily_session_id is None
            and self.mentor_conversation_id is None
            and self.tavus_conversation_id is None
        ):
            raise ValueError("name the session by at least one id")

    def params(self) -> dict[str, Any]:
        return {
            "sel_daily": self.daily_session_id,
            "sel_row": self.mentor_conversation_id,
            "sel_tavus": self.tavus_conversation_id,
        }


@dataclass(frozen=True, slots=True)
class NewSession:
    """The rows a start writes, if it may."""

    daily_session_id: uuid.UUID
    mentor_conversation_id: uuid.UUID
    conversation_name: str
    callback_token_hash: bytes


@dataclass(frozen=True, slots=True)
class StartLimits:
    """What bounds a start: the per-user quota, and the context's size in rows and text."""

    recent_since: datetime
    start_limit: int
    goal_rows: int
    category_rows: int
    text_chars: int
    default_persona_id: str | None
    default_replica_id: str | None
    #: "Since last time": previous sessions, the user's last lines of the latest one, goals
    #: updated since it ended.
    previous_rows: int = 3
    recap_rows: int = 3
    changed_goal_rows: int = 3


@dataclass(frozen=True, slots=True)
class StartAttempt:
    """What a start's first round trip found and did (`start_protocol` says what each value
    of `outcome`, `refusal` and `key_state` means)."""

    outcome: StartOutcome
    refusal: Refusal | None = None
    key_state: KeyState | None = None
    key_session: SessionRow | None = None
    live_session: SessionRow | None = None
    profile: dict[str, Any] | None = None
    onboarding: dict[str, Any] | None = None
    ritual: dict[str, Any] | None = None
    categories: list[dict[str, Any]] = field(default_factory=list)
    goals: list[dict[str, Any]] = field(default_factory=list)
    persona: dict[str, Any] | None = None
    persona_id: str | None = None
    replica_id: str | None = None
    mentor_name: str | None = None
    mentor_avatar_url: str | None = None
    recent_starts: int = 0
    oldest_recent_start: datetime | None = None
    created_at: datetime | None = None
    #: The user lets the mentor remember (`user_preferences.mentor_memory`, default true); the
    #: three "since last time" parts are loaded only then.
    mentor_memory: bool = True
    previous_sessions: list[dict[str, Any]] = field(default_factory=list)
    recap: list[str] = field(default_factory=list)
    changed_goals: list[dict[str, Any]] = field(default_factory=list)
    #: What the mentor changed in the latest session, and whether the user undid it.
    mentor_changes: list[dict[str, Any]] = field(default_factory=list)
    #: A private room's join credential of `key_session` / `live_session` (their owner's).
    key_meeting_token: str | None = None
    live_meeting_token: str | None = None


@dataclass(frozen=True, slots=True)
class SessionExtras:
    """What a session's detail view adds: Tavus's post-call data."""

    transcript: list[dict[str, Any]] | None
    recording: dict[str, Any] | None
    perception_analysis: str | None
    post_call_actions: list[dict[str, Any]] | None
    replica_joined_at: datetime | None
    conversation_transcript: str | None
    #: A private room's join credential, while the session is live (for its owner only).
    meeting_token: str | None = None
    #: The post-call report (`summary`, `next_steps`, `mood`, `received_at`), once it came.
    report: dict[str, Any] | None = None


# --- PostgreSQL statements ---------------------------------------------------------------
def start_params(
    user_id: uuid.UUID,
    *,
    mentor_id: uuid.UUID | None,
    now: datetime,
    limits: StartLimits,
    new: NewSession | None,
    key: KeyClaim | None,
) -> dict[str, Any]:
    """`START_SQL`'s parameters (`new` None: load and decide, write nothing)."""
    return {
        "user_id": user_id,
        "mentor_id": mentor_id,
        "now": now,
        "insert": new is not None,
        "recent_since": limits.recent_since,
        "start_limit": limits.start_limit,
        "goal_rows": limits.goal_rows,
        "category_rows": limits.category_rows,
        "text_chars": limits.text_chars,
        "previous_rows": limits.previous_rows,
        "recap_rows": limits.recap_rows,
        "changed_goal_rows": limits.changed_goal_rows,
        "key": key.key if key else None,
        "request_hash": key.request_hash if key else None,
        "key_locked_until": key.locked_until if key else None,
        "key_expires_at": key.expires_at if key else None,
        "daily_id": new.daily_session_id if new else None,
        "row_id": new.mentor_conversation_id if new else None,
        "conversation_name": new.conversation_name if new else None,
        "token_hash": new.callback_token_hash if new else None,
        "default_persona": limits.default_persona_id,
        "default_replica": limits.default_replica_id,
    }


#: `facetoface.start_session` (migrations 0006, 0009), its arguments named as `start_params`.
START_SQL = Statement(
    "SELECT * FROM facetoface.start_session("
    + ", ".join(
        f"p_{name} => %({name})s"
        for name in start_params(
            uuid.UUID(int=0),
            mentor_id=None,
            now=datetime.min,
            limits=StartLimits(datetime.min, 0, 0, 0, 0, None, None),
            new=None,
            key=None,
        )
    )
    + ")"
)
_FROM = "FROM daily_sessions d JOIN mentor_conversations m ON m.daily_session_id = d.id"
GET_SQL = Statement(
    f"SELECT {session_columns_sql()} {_FROM} "
    "WHERE d.id = %(session_id)s AND d.user_id = %(user_id)s"
)
#: The conversation columns `session_columns_sql` reads (the list's lateral selects them).
_LIST_M_COLUMNS = (
    "m.id, m.status, m.tavus_conversation_id, m.conversation_url, m.conversation_name, "
    "m.start_time, m.end_time, m.shutdown_at, m.shutdown_reason, m.failure_code, "
    "m.mentor_name, m.mentor_avatar_url"
)
#: A page of the caller's sessions. It walks `(user_id, created_at, id)` of daily_sessions
#: backward from the cursor (a row comparison: an index condition) and looks each row's
#: conversation up by its unique key until the page is full, so a page costs its own size
#: whatever the user's history. `OFFSET 0` keeps the lateral a per-row lookup: as a plain
#: join the planner read all of the user's conversations, hashed and sorted them (bench
#: growth phase, bench/README.md).
LIST_SQL = Statement(
    f"SELECT {session_columns_sql()} FROM daily_sessions d "
    f"CROSS JOIN LATERAL (SELECT {_LIST_M_COLUMNS} FROM mentor_conversations m "
    "WHERE m.daily_session_id = d.id OFFSET 0) m "
    "WHERE d.user_id = %(user_id)s AND (%(before_at)s::timestamptz IS NULL "
    "OR (d.created_at, d.id) < (%(before_at)s::timestamptz, %(before_id)s::uuid)) "
    "ORDER BY d.created_at DESC, d.id DESC LIMIT %(limit)s"
)
#: Run as the service acting for the caller (`facetoface_delegate`, whose policies confine it
#: to the caller's rows): only the service may read a private room's meeting token, shown
#: while live.
DETAIL_SQL = Statement(
    f"SELECT {session_columns_sql()}, m.transcript, m.recording, m.perception_analysis, "
    "m.post_call_actions, m.replica_joined_at, d.conversation_transcript, "
    f"CASE WHEN m.status IN ({LIVE_STATUSES_SQL}) THEN m.meeting_token END AS meeting_token, "
    f"{timeline_json_sql('m')} AS events, "
    # The post-call report (migration 0013's `session_reports`, written by the tools feature).
    "(SELECT jsonb_build_object('summary', r.summary, 'next_steps', r.next_steps, 'mood', "
    "r.mood, 'received_at', r.received_at) FROM session_reports r "
    f"WHERE r.mentor_conversation_id = m.id) AS report {_FROM} "
    "WHERE d.id = %(session_id)s AND d.user_id = %(user_id)s"
)
#: Mark the caller's selected live session `ending` and read it back, in one statement
#: (migration 0010): the read sees any end that committed while the claim waited.
CLAIM_END_SQL = Statement(
    "SELECT * FROM facetoface.claim_end(p_user_id => %(user_id)s, p_now => %(now)s, "
    "p_sel_daily => %(sel_daily)s, p_sel_row => %(sel_row)s, p_sel_tavus => %(sel_tavus)s)"
)


class SessionRepository:
    """A start's first round trip, the end claim, and the reads of the caller's sessions."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- start ----------------------------------------------------------------------------
    async def start(
        self,
        identity: Identity,
        *,
        mentor_id: uuid.UUID | None,
        now: datetime,
        limits: StartLimits,
        new: NewSession | None,
        key: KeyClaim | None,
    ) -> StartAttempt:
        """Check the key, load the context, decide, and (with `new`) write the rows."""
        params = start_params(
            identity.user_id, mentor_id=mentor_id, now=now, limits=limits, new=new, key=key
        )
        rows = await self.db.run(
            START_SQL, params, identity, role="service", operation="start:daily_sessions"
        )
        return _attempt(rows[0])

    # --- end ------------------------------------------------------------------------------
    async def claim_end(
        self, identity: Identity, selector: SessionSelector, now: datetime
    ) -> tuple[SessionRow | None, bool]:
        """Mark the caller's live session `ending`: (the session, whether it was claimed).
        (None, False) when the selector names none of the caller's sessions."""
        [claim] = await self.db.run(
            CLAIM_END_SQL,
            {"user_id": identity.user_id, "now": now, **selector.params()},
            identity,
            role="service",
            operation="update:mentor_conversations",
        )
        if claim["session"] is None:
            return None, False
        return session_row_from_json(claim["session"]), bool(claim["claimed"])

    # --- reads ----------------------------------------------------------------------------
    async def get(self, identity: Identity, session_id: uuid.UUID) -> SessionRow | None:
        """The caller's session by id; None for anyone else's (existence is not leaked)."""
        params = {"session_id": session_id, "user_id": identity.user_id}
        rows = await self.db.run(GET_SQL, params, identity, role="user")
        return SessionRow.from_mapping(rows[0]) if rows else None

    async def page(
        self,
        identity: Identity,
        *,
        limit: int,
        before: tuple[datetime, uuid.UUID] | None = None,
    ) -> list[SessionRow]:
        """The caller's sessions, newest first, strictly before the `before` cursor."""
        params = {
            "user_id": identity.user_id,
            "limit": limit,
            "before_at": before[0] if before else None,
            "before_id": before[1] if before else None,
        }
        rows = await self.db.run(LIST_SQL, params, identity, role="user")
        return [SessionRow.from_mapping(row) for row in rows]

    async def detail(
        self, identity: Identity, session_id: uuid.UUID
    ) -> tuple[SessionRow, SessionExtras, list[TimelineEntry]] | None:
        """The caller's session with what Tavus's callbacks added to it, and its timeline."""
        params = {"session_id": session_id, "user_id": identity.user_id}
        rows = await self.db.run(DETAIL_SQL, params, identity, role="service")
        if not rows:
            return None
        return (
            SessionRow.from_mapping(rows[0]),
            _extras(rows[0]),
            timeline_from_json(rows[0]["events"]),
        )


# --- helpers ---------------------------------------------------------------------------------
def _attempt(row: Mapping[str, Any]) -> StartAttempt:
    key_session, live_session = row["key_session"], row["live_session"]
    return StartAttempt(
        outcome=StartOutcome(row["outcome"]),
        refusal=Refusal(row["refusal"]) if row["refusal"] else None,
        key_state=KeyState(row["key_state"]) if row["key_state"] else None,
        key_session=session_row_from_json(row["key_session"]) if row["key_session"] else None,
        live_session=(session_row_from_json(row["live_session"]) if row["live_session"] else None),
        profile=row["profile"],
        onboarding=row["onboarding"],
        ritual=row["ritual"],
        categories=row["categories"] or [],
        goals=row["goals"] or [],
        persona=row["persona"],
        persona_id=row["persona_id"],
        replica_id=row["replica_id"],
        mentor_name=row["mentor_name"],
        mentor_avatar_url=row["mentor_avatar_url"],
        recent_starts=row["recent_starts"] or 0,
        oldest_recent_start=row["oldest_recent_start"],
        created_at=row["created_at"],
        mentor_memory=row["mentor_memory"] is not False,
        previous_sessions=row["previous_sessions"] or [],
        recap=row["recap"] or [],
        changed_goals=row["changed_goals"] or [],
        mentor_changes=row["mentor_changes"] or [],
        key_meeting_token=(key_session or {}).get("meeting_token"),
        live_meeting_token=(live_session or {}).get("meeting_token"),
    )


def _extras(data: Mapping[Any, Any]) -> SessionExtras:
    return SessionExtras(
        transcript=data["transcript"],
        recording=data["recording"],
        perception_analysis=data["perception_analysis"],
        post_call_actions=post_call_action_list(data["post_call_actions"]),
        replica_joined_at=data["replica_joined_at"],
        conversation_transcript=data["conversation_transcript"],
        meeting_token=data.get("meeting_token"),
        report=data.get("report"),
    )


# --- private rooms -----------------------------------------------------------------------------
#: A private room's meeting token, stored with the adoption of Tavus's answer (same message,
#: same transaction), and only on a session that is live: one that ended meanwhile keeps none.
ROOM_TOKEN_SQL = (
    "UPDATE mentor_conversations SET meeting_token = %(rt_token)s "
    f"WHERE id = %(rt_row)s AND status = '{ConversationStatus.active.value}'"
)


def room_token_extra(row_id: uuid.UUID, meeting_token: str, key: Extra | None) -> Extra:
    """What a private room's start writes with its adoption: the meeting token (and, with an
    `Idempotency-Key`, the key's `done`, as `key_extra` does)."""
    params: dict[str, Any] = {"rt_row": row_id, "rt_token": meeting_token}
    sql = ROOM_TOKEN_SQL
    if key is not None:
        # One statement for both (an Extra is one statement): the key's update as a CTE.
        sql = f"WITH key_done AS ({key.sql.text}) {ROOM_TOKEN_SQL}"
        params.update(key.params)
    return Extra(sql=Statement(sql), params=params)
