"""The sessions feature's SQL: a start's first round trip, the end claim, and the reads.

Round trips on PostgreSQL (counted on the wire by `tests/sessions/test_round_trips.py`):

- start: 1 here (`facetoface.start_session`, migration 0006: the replay check, the context,
  the decision and the rows in one call) + 1 when Tavus answered (`ConversationService`);
- end: 1 here (`claim_end`) + 1 to close (`ConversationService.close`);
- every read: 1.

Each is one `Database.run` message: the identity and the statement together. SQLite, the
single-process development database, runs the same steps as plain statements in one
transaction under its write lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from facetoface.conversations.repository import (
    Extra,
    SessionRow,
    TimelineEntry,
    session_columns,
    session_columns_sql,
    session_row_from_json,
    timeline,
    timeline_from_json,
    timeline_json_sql,
)
from facetoface.conversations.state import post_call_action_list
from facetoface.conversations.status import LIVE_STATUSES, ConversationStatus, SessionStatus
from facetoface.db import Database, Identity, Statement
from facetoface.models import (
    DailySession,
    IdempotencyKey,
    MentorAvatar,
    MentorConversation,
    OnboardingProfile,
    Profile,
    RitualPreferences,
    UserEmotionalCategory,
    UserGoal,
    UserPersona,
    UserPreference,
)

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

    def where(self) -> Any:
        """The same condition for SQLAlchemy (the SQLite path)."""
        mc, ds = MentorConversation, DailySession
        conditions = [
            condition
            for value, condition in (
                (self.daily_session_id, ds.id == self.daily_session_id),
                (self.mentor_conversation_id, mc.id == self.mentor_conversation_id),
                (
                    self.tavus_conversation_id,
                    mc.tavus_conversation_id == self.tavus_conversation_id,
                ),
            )
            if value is not None
        ]
        return and_(*conditions)


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """An `Idempotency-Key` to claim with the session's rows."""

    key: str
    request_hash: bytes
    locked_until: datetime
    expires_at: datetime


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
    """What a start's first round trip found and did.

    `outcome`: `inserted` (the rows are written), `refused` (`refusal` says why), `conflict`
    (another session is live: `live_session`), `key` (the Idempotency-Key answers:
    `key_state` is `mismatch`, `done` (replay `key_session`), `in_flight` or `unresolved`), or
    `preview` (nothing was to be written).
    """

    outcome: str
    refusal: str | None = None
    key_state: str | None = None
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
_LIVE_SQL = ", ".join(f"'{s.value}'" for s in sorted(LIVE_STATUSES))
_FROM = "FROM daily_sessions d JOIN mentor_conversations m ON m.daily_session_id = d.id"
GET_SQL = Statement(
    f"SELECT {session_columns_sql()} {_FROM} "
    "WHERE d.id = %(session_id)s AND d.user_id = %(user_id)s"
)
LIST_SQL = Statement(
    f"SELECT {session_columns_sql()} {_FROM} WHERE d.user_id = %(user_id)s "
    "AND (%(before_at)s::timestamptz IS NULL OR d.created_at < %(before_at)s::timestamptz "
    "OR (d.created_at = %(before_at)s::timestamptz AND d.id < %(before_id)s::uuid)) "
    "ORDER BY d.created_at DESC, d.id DESC LIMIT %(limit)s"
)
#: Run as `facetoface_service` acting for the caller (its policies confine it to the caller's
#: rows): only the service may read a private room's meeting token, shown while live.
DETAIL_SQL = Statement(
    f"SELECT {session_columns_sql()}, m.transcript, m.recording, m.perception_analysis, "
    "m.post_call_actions, m.replica_joined_at, d.conversation_transcript, "
    f"CASE WHEN m.status IN ({_LIVE_SQL}) THEN m.meeting_token END AS meeting_token, "
    f"{timeline_json_sql('m')} AS events {_FROM} "
    "WHERE d.id = %(session_id)s AND d.user_id = %(user_id)s"
)
#: Mark the caller's selected live session `ending` and read it back, in one statement
#: (migration 0010): the read sees any end that committed while the claim waited.
CLAIM_END_SQL = Statement(
    "SELECT * FROM facetoface.claim_end(p_user_id => %(user_id)s, p_now => %(now)s, "
    "p_sel_daily => %(sel_daily)s, p_sel_row => %(sel_row)s, p_sel_tavus => %(sel_tavus)s)"
)
#: The start's key, completed with the adopted session (runs after `apply`).
KEY_DONE_SQL = Statement(
    "UPDATE idempotency_keys SET state = 'done', locked_until = %(k_now)s "
    "WHERE user_id = %(k_user)s AND key = %(k_key)s AND daily_session_id = %(k_daily)s"
)
#: The start created nothing: forget the key so a retry may try again.
KEY_RELEASE_SQL = Statement(
    "DELETE FROM idempotency_keys "
    "WHERE user_id = %(k_user)s AND key = %(k_key)s AND daily_session_id = %(k_daily)s"
)
#: The start's outcome is unknown: retries may look at its session now.
KEY_UNLOCK_SQL = Statement(
    "UPDATE idempotency_keys SET locked_until = %(k_now)s "
    "WHERE user_id = %(k_user)s AND key = %(k_key)s AND daily_session_id = %(k_daily)s"
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
        if self.db.is_postgres:
            params = start_params(
                identity.user_id, mentor_id=mentor_id, now=now, limits=limits, new=new, key=key
            )
            rows = await self.db.run(
                START_SQL, params, identity, role="service", operation="start:daily_sessions"
            )
            return _attempt(rows[0])
        async with self.db.transaction(identity, role="service") as session:
            return await _start_sqlite(session, identity.user_id, mentor_id, now, limits, new, key)

    # --- end ------------------------------------------------------------------------------
    async def claim_end(
        self, identity: Identity, selector: SessionSelector, now: datetime
    ) -> tuple[SessionRow | None, bool]:
        """Mark the caller's live session `ending`: (the session, whether it was claimed).
        (None, False) when the selector names none of the caller's sessions."""
        if self.db.is_postgres:
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
        mc = MentorConversation
        async with self.db.transaction(identity, role="service") as session:
            current = await _get_one(
                session,
                and_(
                    DailySession.user_id == identity.user_id,
                    mc.user_id == identity.user_id,
                    selector.where(),
                ),
            )
            if current is None or current.conversation_status not in LIVE_STATUSES:
                return current, False
            await session.execute(
                update(mc)
                .where(mc.id == current.mentor_conversation_id)
                .values(
                    status=ConversationStatus.ending.value, updated_at=now, version=mc.version + 1
                )
            )
            claimed = await _get_one(session, mc.id == current.mentor_conversation_id)
        return claimed, True

    # --- reads ----------------------------------------------------------------------------
    async def get(self, identity: Identity, session_id: uuid.UUID) -> SessionRow | None:
        """The caller's session by id; None for anyone else's (existence is not leaked)."""
        params = {"session_id": session_id, "user_id": identity.user_id}
        if self.db.is_postgres:
            rows = await self.db.run(GET_SQL, params, identity, role="user")
            return SessionRow.from_mapping(rows[0]) if rows else None
        async with self.db.transaction(identity) as session:
            return await _get_one(
                session,
                and_(DailySession.id == session_id, DailySession.user_id == identity.user_id),
            )

    async def page(
        self,
        identity: Identity,
        *,
        limit: int,
        before: tuple[datetime, uuid.UUID] | None = None,
    ) -> list[SessionRow]:
        """The caller's sessions, newest first, strictly before the `before` cursor."""
        if self.db.is_postgres:
            params = {
                "user_id": identity.user_id,
                "limit": limit,
                "before_at": before[0] if before else None,
                "before_id": before[1] if before else None,
            }
            rows = await self.db.run(LIST_SQL, params, identity, role="user")
            return [SessionRow.from_mapping(row) for row in rows]
        ds = DailySession
        query = (
            select(*session_columns())
            .select_from(ds)
            .join(MentorConversation, MentorConversation.daily_session_id == ds.id)
            .where(ds.user_id == identity.user_id)
            .order_by(ds.created_at.desc(), ds.id.desc())
            .limit(limit)
        )
        if before is not None:
            created_at, session_id = before
            query = query.where(
                or_(
                    ds.created_at < created_at,
                    and_(ds.created_at == created_at, ds.id < session_id),
                )
            )
        async with self.db.transaction(identity) as session:
            return [SessionRow.from_mapping(row._mapping) for row in await session.execute(query)]

    async def detail(
        self, identity: Identity, session_id: uuid.UUID
    ) -> tuple[SessionRow, SessionExtras, list[TimelineEntry]] | None:
        """The caller's session with what Tavus's callbacks added to it, and its timeline."""
        params = {"session_id": session_id, "user_id": identity.user_id}
        if self.db.is_postgres:
            rows = await self.db.run(DETAIL_SQL, params, identity, role="service")
            if not rows:
                return None
            return (
                SessionRow.from_mapping(rows[0]),
                _extras(rows[0]),
                timeline_from_json(rows[0]["events"]),
            )
        mc = MentorConversation
        async with self.db.transaction(identity) as session:
            row = (
                await session.execute(
                    select(
                        *session_columns(),
                        mc.transcript,
                        mc.recording,
                        mc.perception_analysis,
                        mc.post_call_actions,
                        mc.replica_joined_at,
                        DailySession.conversation_transcript,
                    )
                    .select_from(DailySession)
                    .join(mc, mc.daily_session_id == DailySession.id)
                    .where(DailySession.id == session_id, DailySession.user_id == identity.user_id)
                )
            ).one_or_none()
            if row is None:
                return None
            events = await timeline(session, row.mentor_conversation_id)
            token = await _live_meeting_token(session, row.mentor_conversation_id)
        extras = replace(_extras(row._mapping), meeting_token=token)
        return SessionRow.from_mapping(row._mapping), extras, events


# --- idempotency keys ------------------------------------------------------------------------
def key_extra(
    action: str, user_id: uuid.UUID, key: str, daily_session_id: uuid.UUID, now: datetime
) -> Extra:
    """What a start's conversation change does to its key, in the same transaction:
    `done` (adopted), `release` (nothing was created), `unlock` (the outcome is unknown)."""
    sql = {"done": KEY_DONE_SQL, "release": KEY_RELEASE_SQL, "unlock": KEY_UNLOCK_SQL}[action]
    params = {"k_user": user_id, "k_key": key, "k_daily": daily_session_id, "k_now": now}

    async def on_sqlite(session: AsyncSession, _: SessionRow) -> None:
        k = IdempotencyKey
        mine = and_(k.user_id == user_id, k.key == key, k.daily_session_id == daily_session_id)
        if action == "release":
            await session.execute(delete(k).where(mine))
        elif action == "done":
            await session.execute(update(k).where(mine).values(state="done", locked_until=now))
        else:
            await session.execute(update(k).where(mine).values(locked_until=now))

    return Extra(sql=sql, params=params, sqlite=on_sqlite)


# --- helpers ---------------------------------------------------------------------------------
def _attempt(row: Mapping[str, Any]) -> StartAttempt:
    key_session, live_session = row["key_session"], row["live_session"]
    return StartAttempt(
        outcome=row["outcome"],
        refusal=row["refusal"],
        key_state=row["key_state"],
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
    )


async def _get_one(session: AsyncSession, where: Any) -> SessionRow | None:
    row = (
        await session.execute(
            select(*session_columns())
            .select_from(DailySession)
            .join(MentorConversation, MentorConversation.daily_session_id == DailySession.id)
            .where(where)
        )
    ).one_or_none()
    return SessionRow.from_mapping(row._mapping) if row is not None else None


def local_date(now: datetime, timezone: Any) -> date:
    """The session's calendar date in the user's own timezone (the origin used UTC's)."""
    if isinstance(timezone, str) and timezone:
        try:
            return now.astimezone(ZoneInfo(timezone)).date()
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return now.date() if now.tzinfo is None else now.astimezone(ZoneInfo("UTC")).date()


# --- SQLite: the same steps as `facetoface.start_session`, as statements -------------------
async def _start_sqlite(
    session: AsyncSession,
    user_id: uuid.UUID,
    mentor_id: uuid.UUID | None,
    now: datetime,
    limits: StartLimits,
    new: NewSession | None,
    key: KeyClaim | None,
) -> StartAttempt:
    mc, k = MentorConversation, IdempotencyKey
    if key is not None:
        stored = (
            await session.execute(
                select(k).where(k.user_id == user_id, k.key == key.key, k.expires_at > now)
            )
        ).scalar_one_or_none()
        if stored is not None:
            keyed = (
                await _get_one(session, DailySession.id == stored.daily_session_id)
                if stored.daily_session_id
                else None
            )
            status = keyed.conversation_status if keyed else None
            if stored.request_hash != key.request_hash:
                return StartAttempt("key", key_state="mismatch")
            if stored.state == "done" or status in {"active", "ending", "ended"}:
                stored.state, stored.locked_until = "done", now
                token = (
                    await _live_meeting_token(session, keyed.mentor_conversation_id)
                    if keyed
                    else None
                )
                return StartAttempt(
                    "key", key_state="done", key_session=keyed, key_meeting_token=token
                )
            if status is None and stored.locked_until > now:
                return StartAttempt("key", key_state="in_flight")
            if status in {"starting", "indeterminate"}:
                state = "in_flight" if stored.locked_until > now else "unresolved"
                return StartAttempt("key", key_state=state, key_session=keyed)
    data = await _load_context(session, user_id, mentor_id, limits)
    recent = (
        await session.execute(
            select(func.count(), func.min(mc.created_at)).where(
                mc.user_id == user_id,
                mc.created_at >= limits.recent_since,
                mc.status != ConversationStatus.failed.value,
            )
        )
    ).one()
    persona = data["persona"]
    persona_id = _present(persona, "tavus_persona_id") or _present(persona, "avatar_persona_id")
    replica_id = _present(persona, "replica_id") or _present(persona, "avatar_replica_id")
    if persona_id is None and replica_id is None:
        persona_id = limits.default_persona_id or None
        replica_id = limits.default_replica_id or None
    attempt = StartAttempt(
        outcome="refused",
        profile=data["profile"],
        onboarding=data["onboarding"],
        ritual=data["ritual"],
        categories=data["categories"],
        goals=data["goals"],
        persona=persona,
        persona_id=persona_id,
        replica_id=replica_id,
        mentor_name=_present(persona, "name") or (persona or {}).get("avatar_name"),
        mentor_avatar_url=(persona or {}).get("avatar_thumbnail_url"),
        recent_starts=recent[0] or 0,
        oldest_recent_start=recent[1],
        mentor_memory=data["mentor_memory"],
        previous_sessions=data["previous_sessions"],
        recap=data["recap"],
        changed_goals=data["changed_goals"],
    )
    refusal = start_refusal(attempt, mentor_id=mentor_id, limits=limits, inserting=new is not None)
    if refusal is not None or new is None:
        outcome = "refused" if new is not None else "preview"
        return _replace(attempt, outcome=outcome, refusal=refusal)
    profile = data["profile"] or {}
    try:
        async with session.begin_nested():
            if key is not None:
                await session.execute(
                    sqlite.insert(k)
                    .values(
                        user_id=user_id,
                        key=key.key,
                        request_hash=key.request_hash,
                        state="in_flight",
                        daily_session_id=new.daily_session_id,
                        created_at=now,
                        locked_until=key.locked_until,
                        expires_at=key.expires_at,
                    )
                    .on_conflict_do_update(
                        index_elements=["user_id", "key"],
                        set_={
                            "request_hash": key.request_hash,
                            "state": "in_flight",
                            "daily_session_id": new.daily_session_id,
                            "created_at": now,
                            "locked_until": key.locked_until,
                            "expires_at": key.expires_at,
                        },
                    )
                )
            await session.execute(
                insert(DailySession).values(
                    id=new.daily_session_id,
                    user_id=user_id,
                    session_type="face_to_face",
                    session_status=SessionStatus.started.value,
                    session_date=local_date(now, profile.get("timezone")),
                    created_at=now,
                    updated_at=now,
                )
            )
            await session.execute(
                insert(mc).values(
                    id=new.mentor_conversation_id,
                    user_id=user_id,
                    daily_session_id=new.daily_session_id,
                    user_persona_id=uuid.UUID(str(persona["id"])) if persona else None,
                    conversation_name=new.conversation_name,
                    persona_id=persona_id,
                    replica_id=replica_id,
                    mentor_name=attempt.mentor_name,
                    mentor_avatar_url=attempt.mentor_avatar_url,
                    session_type="face_to_face",
                    status=ConversationStatus.starting.value,
                    callback_token_hash=new.callback_token_hash,
                    version=0,
                    reconcile_attempts=0,
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError as exc:
        if "mentor_conversations.user_id" not in str(exc.orig) and LIVE_INDEX not in str(exc.orig):
            raise
        live = await _get_one(
            session,
            and_(mc.user_id == user_id, mc.status.in_([s.value for s in LIVE_STATUSES])),
        )
        token = await _live_meeting_token(session, live.mentor_conversation_id) if live else None
        return _replace(attempt, outcome="conflict", live_session=live, live_meeting_token=token)
    return _replace(attempt, outcome="inserted", created_at=now)


def start_refusal(
    attempt: StartAttempt, *, mentor_id: uuid.UUID | None, limits: StartLimits, inserting: bool
) -> str | None:
    """Why a start may not write its rows (None: it may). `facetoface.start_session` decides
    the same on PostgreSQL; the order of the checks is the order of the answers."""
    persona = attempt.persona
    premium = bool(persona and persona.get("avatar_is_premium"))
    tier = (attempt.profile or {}).get("subscription_tier") or "free"
    if attempt.profile is None:
        return "profile_not_found"
    if mentor_id is not None and persona is None:
        return "mentor_not_found"
    if premium and tier != "paid":
        return "premium_mentor_required"
    if attempt.recent_starts >= limits.start_limit:
        return "rate_limited"
    if attempt.persona_id is None and attempt.replica_id is None:
        return "mentor_not_configured"
    if not inserting:
        return "not_inserting"
    return None


def _present(data: dict[str, Any] | None, name: str) -> str | None:
    value = (data or {}).get(name)
    return value if isinstance(value, str) and value else None


def _replace(attempt: StartAttempt, **changes: Any) -> StartAttempt:
    return replace(attempt, **changes)


async def _load_context(
    session: AsyncSession, user_id: uuid.UUID, mentor_id: uuid.UUID | None, limits: StartLimits
) -> dict[str, Any]:
    """The context rows, capped in rows and characters like `facetoface.start_session`."""
    p, o, r = Profile, OnboardingProfile, RitualPreferences
    c, g, up, ma = UserEmotionalCategory, UserGoal, UserPersona, MentorAvatar
    cap = limits.text_chars

    def text(column: Any) -> Any:
        return func.substr(column, 1, cap)

    profile = (
        await session.execute(
            select(
                text(p.full_name).label("full_name"),
                func.substr(p.language, 1, 16).label("language"),
                func.substr(p.timezone, 1, 64).label("timezone"),
                p.subscription_tier,
            ).where(p.id == user_id)
        )
    ).one_or_none()
    onboarding = (
        await session.execute(
            select(o.disc_type, o.enneagram_type, o.confidence_score).where(o.user_id == user_id)
        )
    ).one_or_none()
    ritual = (
        await session.execute(
            select(
                text(r.timing).label("timing"),
                text(r.duration).label("duration"),
                text(r.style).label("style"),
                text(r.voice_id).label("voice_id"),
                text(r.focus_area).label("focus_area"),
                text(r.session_frequency).label("session_frequency"),
                r.preferred_session_time,
            ).where(r.user_id == user_id)
        )
    ).one_or_none()
    categories = await session.execute(
        select(text(c.category).label("category"), c.priority_level)
        .where(c.user_id == user_id)
        .order_by(c.priority_level.is_(None), c.priority_level, c.category)
        .limit(limits.category_rows)
    )
    goals = await session.execute(
        select(
            text(g.goal_text).label("goal_text"),
            text(g.goal_type).label("goal_type"),
            text(g.smart_goal).label("smart_goal"),
            g.target_date,
            g.progress_percentage,
        )
        .where(g.user_id == user_id, g.status == "active")
        .order_by(
            g.target_date.is_(None),
            g.target_date,
            g.progress_percentage.is_(None),
            g.progress_percentage.desc(),
            g.goal_text,
        )
        .limit(limits.goal_rows)
    )
    chosen = up.id == mentor_id if mentor_id is not None else up.is_active.is_(True)
    persona = (
        await session.execute(
            select(
                up.id,
                text(up.name).label("name"),
                up.tavus_persona_id,
                up.replica_id,
                text(ma.name).label("avatar_name"),
                ma.thumbnail_url.label("avatar_thumbnail_url"),
                ma.tavus_persona_id.label("avatar_persona_id"),
                ma.tavus_replica_id.label("avatar_replica_id"),
                func.coalesce(ma.is_premium, False).label("avatar_is_premium"),
            )
            .select_from(up)
            .outerjoin(ma, ma.id == up.mentor_avatar_id)
            .where(up.user_id == user_id, chosen)
            .order_by(up.updated_at.desc(), up.id)
            .limit(1)
        )
    ).one_or_none()

    def as_dict(row: Any) -> dict[str, Any] | None:
        return dict(row._mapping) if row is not None else None

    return {
        "profile": as_dict(profile),
        "onboarding": as_dict(onboarding),
        "ritual": as_dict(ritual),
        "categories": [dict(row._mapping) for row in categories],
        "goals": [dict(row._mapping) for row in goals],
        "persona": as_dict(persona),
        **await _load_since_last_time(session, user_id, limits),
    }


async def _load_since_last_time(
    session: AsyncSession, user_id: uuid.UUID, limits: StartLimits
) -> dict[str, Any]:
    """The user's memory choice and, when it is on, "since last time" — capped in rows and
    characters like `facetoface.start_session` (migration 0009)."""
    mc, ds, g = MentorConversation, DailySession, UserGoal
    memory = (
        await session.execute(
            select(UserPreference.mentor_memory).where(UserPreference.user_id == user_id)
        )
    ).scalar_one_or_none()
    loaded: dict[str, Any] = {
        "mentor_memory": memory is not False,
        "previous_sessions": [],
        "recap": [],
        "changed_goals": [],
    }
    if memory is False or limits.previous_rows <= 0:
        return loaded
    previous = (
        await session.execute(
            select(
                mc.transcript,
                func.coalesce(ds.started_at, mc.created_at).label("started_at"),
                ds.completed_at,
                ds.duration_seconds,
                ds.session_status.label("status"),
                func.substr(mc.shutdown_reason, 1, 64).label("shutdown_reason"),
            )
            .join(ds, ds.id == mc.daily_session_id)
            .where(mc.user_id == user_id, mc.status == ConversationStatus.ended.value)
            .order_by(mc.created_at.desc(), mc.id.desc())
            .limit(limits.previous_rows)
        )
    ).all()
    if not previous:
        return loaded
    loaded["previous_sessions"] = [
        {
            "started_at": row.started_at,
            "duration_seconds": row.duration_seconds,
            "status": row.status,
            "shutdown_reason": row.shutdown_reason,
        }
        for row in previous
    ]
    last = previous[0]
    said = [
        entry["content"][: limits.text_chars]
        for entry in (last.transcript if isinstance(last.transcript, list) else [])
        if isinstance(entry, dict)
        and str(entry.get("role", "")).strip().lower() == "user"
        and isinstance(entry.get("content"), str)
        and entry["content"].strip()
    ]
    loaded["recap"] = said[-limits.recap_rows :] if limits.recap_rows > 0 else []
    if last.completed_at is not None and limits.changed_goal_rows > 0:
        changed = await session.execute(
            select(
                func.substr(g.goal_text, 1, limits.text_chars).label("goal_text"),
                func.substr(g.smart_goal, 1, limits.text_chars).label("smart_goal"),
                g.progress_percentage,
                g.updated_at,
            )
            .where(g.user_id == user_id, g.status == "active", g.updated_at > last.completed_at)
            .order_by(g.updated_at.desc(), g.id)
            .limit(limits.changed_goal_rows)
        )
        loaded["changed_goals"] = [dict(row._mapping) for row in changed]
    return loaded


async def _live_meeting_token(session: AsyncSession, row_id: uuid.UUID) -> str | None:
    """A live session's private-room token (SQLite; PostgreSQL reads it in the statement)."""
    mc = MentorConversation
    token: str | None = (
        await session.execute(
            select(mc.meeting_token).where(
                mc.id == row_id, mc.status.in_([s.value for s in LIVE_STATUSES])
            )
        )
    ).scalar_one_or_none()
    return token


# --- private rooms -----------------------------------------------------------------------------
#: A private room's meeting token, stored with the adoption of Tavus's answer (same message,
#: same transaction), and only on a session that is live: one that ended meanwhile keeps none.
ROOM_TOKEN_SQL = (
    "UPDATE mentor_conversations SET meeting_token = %(rt_token)s "
    "WHERE id = %(rt_row)s AND status = 'active'"
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

    async def on_sqlite(session: AsyncSession, written: SessionRow) -> None:
        if key is not None:
            await key.sqlite(session, written)
        mc = MentorConversation
        await session.execute(
            update(mc)
            .where(mc.id == row_id, mc.status == ConversationStatus.active.value)
            .values(meeting_token=meeting_token)
        )

    return Extra(sql=Statement(sql), params=params, sqlite=on_sqlite)
