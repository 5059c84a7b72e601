"""All SQL of the sessions feature. Hot paths are counted: see the statement budget below.

Statement budget on PostgreSQL (checked by tests): start = 3 (load context, insert both rows,
mark active), end = 2 (claim, close). SQLite lacks data-modifying CTEs, so there the two
tables are written by two statements each; it is the single-process development database.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, and_, delete, func, insert, literal, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from facetoface.models import (
    LIVE_STATUSES,
    ConversationStatus,
    DailySession,
    IdempotencyKey,
    MentorAvatar,
    MentorConversation,
    OnboardingProfile,
    Profile,
    RitualPreferences,
    TavusCallbackEvent,
    UserEmotionalCategory,
    UserGoal,
    UserPersona,
)
from facetoface.sessions.state import ConversationState, derive
from facetoface.sql import embed_json, json_array_agg, json_fields

LIVE_INDEX = "uq_mentor_conversations_live_user_id"


class LiveSessionExists(Exception):
    """The one-live-session-per-user index refused a new session."""


@dataclass(frozen=True, slots=True)
class PersonaRow:
    """The caller's chosen mentor, with its avatar's fallbacks."""

    id: uuid.UUID
    name: str
    tavus_persona_id: str | None
    replica_id: str | None
    avatar_name: str | None
    avatar_thumbnail_url: str | None
    avatar_persona_id: str | None
    avatar_replica_id: str | None
    avatar_is_premium: bool


@dataclass(frozen=True, slots=True)
class StartData:
    """Everything a start needs, as loaded in one round trip (JSON parts still raw)."""

    profile: dict[str, Any] | None
    onboarding: dict[str, Any] | None
    ritual: dict[str, Any] | None
    emotional_categories: list[dict[str, Any]]
    goals: list[dict[str, Any]]
    persona: PersonaRow | None
    #: Sessions the user started since `recent_since`, and the oldest of them (rate limit).
    recent_starts: int = 0
    oldest_recent_start: datetime | None = None


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


@dataclass(frozen=True, slots=True)
class SessionExtras:
    """What a session's detail view adds: Tavus's post-call data."""

    transcript: list[dict[str, Any]] | None
    recording: dict[str, Any] | None
    perception_analysis: str | None
    post_call_actions: list[dict[str, Any]] | None
    replica_joined_at: datetime | None
    conversation_transcript: str | None


@dataclass(frozen=True, slots=True)
class LockedConversation:
    """A conversation row read for a state change: its facts and its version."""

    id: uuid.UUID
    user_id: uuid.UUID
    daily_session_id: uuid.UUID
    version: int
    callback_token_hash: bytes
    state: ConversationState


def _state_columns() -> list[Any]:
    mc = MentorConversation
    return [
        mc.status,
        mc.tavus_conversation_id,
        mc.replica_id,
        mc.mentor_name,
        mc.start_time,
        mc.replica_joined_at,
        mc.shutdown_at,
        mc.shutdown_reason,
        mc.closed_at,
        mc.transcript,
        mc.recording,
        mc.perception_analysis,
        mc.post_call_actions,
    ]


def _to_locked(row: Any) -> LockedConversation:
    data = dict(row._mapping)
    return LockedConversation(
        id=data.pop("id"),
        user_id=data.pop("user_id"),
        daily_session_id=data.pop("daily_session_id"),
        version=data.pop("version"),
        callback_token_hash=data.pop("callback_token_hash"),
        state=ConversationState(**data),
    )


def _session_columns() -> list[Any]:
    ds, mc = DailySession, MentorConversation
    return [
        ds.id,
        ds.user_id,
        ds.session_status,
        ds.started_at,
        ds.completed_at,
        ds.duration_seconds,
        ds.created_at,
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


def _to_session_row(row: Any) -> SessionRow:
    return SessionRow(**row._mapping)


class SessionRepository:
    """Queries over `daily_sessions` + `mentor_conversations` and the user's context tables."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _is_postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    # --- start ----------------------------------------------------------------------------
    async def load_start_data(
        self,
        user_id: uuid.UUID,
        mentor_id: uuid.UUID | None,
        *,
        recent_since: datetime | None = None,
    ) -> StartData:
        """Profile, assessment, preferences, focus areas, active goals and mentor — and, with
        `recent_since`, the user's starts since then (for the rate limit): one statement."""
        p, o, r = Profile, OnboardingProfile, RitualPreferences
        c, g, up, ma = UserEmotionalCategory, UserGoal, UserPersona, MentorAvatar
        profile = (
            select(
                json_fields(
                    full_name=p.full_name,
                    language=p.language,
                    timezone=p.timezone,
                    subscription_tier=p.subscription_tier,
                )
            )
            .where(p.id == user_id)
            .scalar_subquery()
        )
        onboarding = (
            select(
                json_fields(
                    disc_type=o.disc_type,
                    enneagram_type=o.enneagram_type,
                    confidence_score=o.confidence_score,
                    personality_insights=embed_json(o.personality_insights),
                )
            )
            .where(o.user_id == user_id)
            .scalar_subquery()
        )
        ritual = (
            select(
                json_fields(
                    timing=r.timing,
                    duration=r.duration,
                    style=r.style,
                    voice_id=r.voice_id,
                    focus_area=r.focus_area,
                    session_frequency=r.session_frequency,
                    preferred_session_time=r.preferred_session_time,
                )
            )
            .where(r.user_id == user_id)
            .scalar_subquery()
        )
        categories = (
            select(
                json_array_agg(json_fields(category=c.category, priority_level=c.priority_level))
            )
            .where(c.user_id == user_id)
            .scalar_subquery()
        )
        goals = (
            select(
                json_array_agg(
                    json_fields(
                        goal_text=g.goal_text,
                        goal_type=g.goal_type,
                        smart_goal=g.smart_goal,
                        target_date=g.target_date,
                        progress_percentage=g.progress_percentage,
                    )
                )
            )
            .where(g.user_id == user_id, g.status == "active")
            .scalar_subquery()
        )
        persona_filter = up.id == mentor_id if mentor_id is not None else up.is_active.is_(True)
        persona = (
            select(
                json_fields(
                    id=up.id,
                    name=up.name,
                    tavus_persona_id=up.tavus_persona_id,
                    replica_id=up.replica_id,
                    avatar_name=ma.name,
                    avatar_thumbnail_url=ma.thumbnail_url,
                    avatar_persona_id=ma.tavus_persona_id,
                    avatar_replica_id=ma.tavus_replica_id,
                    avatar_is_premium=ma.is_premium,
                )
            )
            .select_from(up)
            .outerjoin(ma, ma.id == up.mentor_avatar_id)
            .where(up.user_id == user_id, persona_filter)
            .order_by(up.updated_at.desc(), up.id)
            .limit(1)
            .scalar_subquery()
        )
        row = (
            await self.session.execute(
                select(
                    profile.label("profile"),
                    onboarding.label("onboarding"),
                    ritual.label("ritual"),
                    categories.label("categories"),
                    goals.label("goals"),
                    persona.label("persona"),
                    *_recent_starts(user_id, recent_since),
                )
            )
        ).one()
        persona_data = row.persona
        return StartData(
            profile=row.profile,
            onboarding=row.onboarding,
            ritual=row.ritual,
            emotional_categories=row.categories or [],
            goals=row.goals or [],
            persona=_persona_row(persona_data) if persona_data else None,
            recent_starts=getattr(row, "recent_starts", 0) or 0,
            oldest_recent_start=getattr(row, "oldest_recent_start", None),
        )

    async def insert_session(
        self,
        *,
        user_id: uuid.UUID,
        daily_session_id: uuid.UUID,
        mentor_conversation_id: uuid.UUID,
        session_date: date,
        now: datetime,
        conversation_name: str,
        persona: PersonaRow | None,
        persona_id: str | None,
        replica_id: str | None,
        mentor_name: str | None,
        mentor_avatar_url: str | None,
        callback_token_hash: bytes,
    ) -> None:
        """Write both rows as `starting`; LiveSessionExists if the user already has one live."""
        daily = {
            "id": daily_session_id,
            "user_id": user_id,
            "session_type": "face_to_face",
            "session_status": "started",
            "session_date": session_date,
            "created_at": now,
            "updated_at": now,
        }
        conversation = {
            "id": mentor_conversation_id,
            "user_id": user_id,
            "daily_session_id": daily_session_id,
            "user_persona_id": persona.id if persona else None,
            "conversation_name": conversation_name,
            "persona_id": persona_id,
            "replica_id": replica_id,
            "mentor_name": mentor_name,
            "mentor_avatar_url": mentor_avatar_url,
            "session_type": "face_to_face",
            "status": ConversationStatus.starting.value,
            "callback_token_hash": callback_token_hash,
            # INSERT … SELECT does not apply Python-side defaults: give every one here.
            "version": 0,
            "reconcile_attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        try:
            if self._is_postgres:
                # One round trip: the daily row and its conversation row in one statement.
                daily_cte = insert(DailySession).values(daily).returning(DailySession.id).cte()
                columns = list(conversation)
                source = select(
                    *[
                        literal(value, MentorConversation.__table__.c[name].type).label(name)
                        for name, value in conversation.items()
                    ]
                ).where(select(daily_cte.c.id).exists())
                await self.session.execute(insert(MentorConversation).from_select(columns, source))
            else:
                await self.session.execute(insert(DailySession).values(daily))
                await self.session.execute(insert(MentorConversation).values(conversation))
        except IntegrityError as exc:
            if LIVE_INDEX in str(exc.orig) or "mentor_conversations.user_id" in str(exc.orig):
                raise LiveSessionExists from exc
            raise

    async def mark_active(
        self,
        mentor_conversation_id: uuid.UUID,
        *,
        tavus_conversation_id: str,
        conversation_url: str | None,
        start_time: datetime,
        now: datetime,
    ) -> SessionRow | None:
        """Record Tavus's conversation and mark the session `active`; returns the session.

        Fast path, when nothing happened since phase 1: one statement. When a callback or an
        end call got there first, the conversation is merged into the stored facts under the
        row lock instead (the id is always recorded, so an ended session still names the
        conversation that must be ended).
        """
        mc = MentorConversation
        values = {
            "tavus_conversation_id": tavus_conversation_id,
            "conversation_url": conversation_url,
            "start_time": start_time,
            "status": ConversationStatus.active.value,
            "updated_at": now,
            "version": mc.version + 1,
        }
        starting = and_(
            mc.id == mentor_conversation_id, mc.status == ConversationStatus.starting.value
        )
        if self._is_postgres:
            daily = _daily_table()
            upd = update(mc).where(starting).values(values).returning(mc.daily_session_id).cte()
            daily_upd = (
                update(daily)
                .where(daily.c.id == upd.c.daily_session_id)
                .values(started_at=start_time, updated_at=now)
                .returning(daily.c.id)
                .cte()
            )
            matched = select(func.count()).select_from(daily_upd).scalar_subquery()
            result = await self.session.execute(
                select(*_session_columns(), matched.label("matched"))
                .select_from(DailySession)
                .join(mc, mc.daily_session_id == DailySession.id)
                .where(mc.id == mentor_conversation_id)
            )
            row = result.one_or_none()
            if row is None:
                return None
            data = dict(row._mapping)
            if data.pop("matched"):
                # The outer SELECT sees the statement's starting snapshot: patch in the write.
                return replace(
                    SessionRow(**data),
                    conversation_status=ConversationStatus.active.value,
                    tavus_conversation_id=tavus_conversation_id,
                    conversation_url=conversation_url,
                    start_time=start_time,
                    started_at=start_time,
                )
        else:
            result = await self.session.execute(
                update(mc).where(starting).values(values).returning(mc.daily_session_id)
            )
            daily_id = result.scalar_one_or_none()
            if daily_id is not None:
                await self.session.execute(
                    update(DailySession)
                    .where(DailySession.id == daily_id)
                    .values(started_at=start_time, updated_at=now)
                )
                return await self.get_by_conversation_row(mentor_conversation_id)
        locked = await self.lock_conversation(mentor_conversation_id)
        if locked is None:
            return None
        state = replace(locked.state, tavus_conversation_id=tavus_conversation_id)
        if not state.has_ended:
            # Ended before Tavus answered: the user never had the session, so it gets no
            # start time (and no duration); the id is kept so the conversation gets ended.
            state = replace(state, start_time=state.start_time or start_time)
        if state.status == ConversationStatus.indeterminate.value:
            state = replace(state, status=ConversationStatus.active.value)
        await self.write_state(locked, state, now=now, extra={"conversation_url": conversation_url})
        return await self.get_by_conversation_row(mentor_conversation_id)

    async def mark_unresolved(
        self,
        mentor_conversation_id: uuid.UUID,
        *,
        status: ConversationStatus,
        failure_code: str,
        now: datetime,
    ) -> None:
        """Mark a start that did not succeed: `failed` (definite) or `indeterminate`.

        Only a session still `starting` changes: if a callback proved the conversation
        exists, or the user ended it meanwhile, that knowledge stands.
        """
        mc = MentorConversation
        result = await self.session.execute(
            update(mc)
            .where(mc.id == mentor_conversation_id, mc.status == ConversationStatus.starting.value)
            .values(
                status=status.value,
                failure_code=failure_code,
                updated_at=now,
                version=mc.version + 1,
            )
            .returning(mc.daily_session_id)
        )
        daily_id = result.scalar_one_or_none()
        if daily_id is not None and status is ConversationStatus.failed:
            await self.session.execute(
                update(DailySession)
                .where(DailySession.id == daily_id)
                .values(session_status="failed", updated_at=now)
            )

    async def get_live(self, user_id: uuid.UUID) -> SessionRow | None:
        """The user's live session, if any."""
        return await self._get_one(
            and_(
                MentorConversation.user_id == user_id,
                MentorConversation.status.in_([s.value for s in LIVE_STATUSES]),
            )
        )

    # --- state changes --------------------------------------------------------------------
    async def lock_conversation(
        self, mentor_conversation_id: uuid.UUID, *, user_id: uuid.UUID | None = None
    ) -> LockedConversation | None:
        """Read a conversation's facts for a change, locking its row (PostgreSQL).

        SQLite needs no row lock: every write transaction holds the database's write lock.
        """
        mc = MentorConversation
        query = select(
            mc.id,
            mc.user_id,
            mc.daily_session_id,
            mc.version,
            mc.callback_token_hash,
            *_state_columns(),
        ).where(mc.id == mentor_conversation_id)
        if user_id is not None:
            query = query.where(mc.user_id == user_id)
        row = (await self.session.execute(query.with_for_update())).one_or_none()
        return _to_locked(row) if row is not None else None

    async def write_state(
        self,
        locked: LockedConversation,
        state: ConversationState,
        *,
        now: datetime,
        extra: dict[str, Any] | None = None,
        inbox: Insert | None = None,
    ) -> bool:
        """Store `state` and everything derived from it, if the row is still at
        `locked.version` (and, with `inbox`, only if that event row was new).

        One statement on PostgreSQL. False means nothing was written: the event was a
        duplicate, or someone changed the conversation since it was read.
        """
        mc = MentorConversation
        view = derive(state)
        conversation_values: dict[str, Any] = {
            "status": state.status,
            "tavus_conversation_id": state.tavus_conversation_id,
            "start_time": state.start_time,
            "replica_joined_at": state.replica_joined_at,
            "shutdown_at": state.shutdown_at,
            "shutdown_reason": state.shutdown_reason,
            "closed_at": state.closed_at,
            "end_time": view.end_time,
            "duration_seconds": view.duration_seconds,
            "transcript": state.transcript,
            "recording": state.recording,
            "perception_analysis": state.perception_analysis,
            "post_call_actions": state.post_call_actions,
            "updated_at": now,
            "version": mc.version + 1,
            **(extra or {}),
        }
        daily_values: dict[str, Any] = {
            "session_status": view.session_status,
            "started_at": view.started_at,
            "completed_at": view.end_time,
            "duration_seconds": view.duration_seconds,
            "conversation_transcript": view.conversation_transcript,
            "session_metadata": view.session_metadata,
            "updated_at": now,
        }
        current = and_(mc.id == locked.id, mc.version == locked.version)
        if self._is_postgres:
            criteria = [current]
            if inbox is not None:
                inserted = inbox.cte("inserted")
                criteria.append(select(inserted.c.id).exists())
            upd = (
                update(mc)
                .where(*criteria)
                .values(conversation_values)
                .returning(mc.daily_session_id)
                .cte("upd")
            )
            daily = _daily_table()
            result = await self.session.execute(
                update(daily)
                .where(daily.c.id == upd.c.daily_session_id)
                .values(daily_values)
                .returning(daily.c.id)
            )
            return result.first() is not None
        if inbox is not None and (await self.session.execute(inbox)).first() is None:
            return False
        result = await self.session.execute(
            update(mc).where(current).values(conversation_values).returning(mc.id)
        )
        if result.first() is None:
            return False
        await self.session.execute(
            update(DailySession)
            .where(DailySession.id == locked.daily_session_id)
            .values(daily_values)
        )
        return True

    # --- end ------------------------------------------------------------------------------
    async def claim_end(
        self, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime
    ) -> tuple[SessionRow | None, LockedConversation | None]:
        """Mark the caller's live session `ending` (one statement on PostgreSQL).

        Returns (session, conversation) — the conversation is None when the session was not
        live (already closed or failed); both are None when it is not the caller's.
        """
        mc = MentorConversation
        claimable = [s.value for s in LIVE_STATUSES]
        if self._is_postgres:
            ds = DailySession
            mct = cast(Table, mc.__table__)
            claim = (
                update(mct)
                .where(
                    mct.c.daily_session_id == ds.id,
                    ds.id == session_id,
                    ds.user_id == user_id,
                    mct.c.user_id == user_id,
                    mct.c.status.in_(claimable),
                )
                .values(
                    status=ConversationStatus.ending.value,
                    updated_at=now,
                    version=mct.c.version + 1,
                )
                .returning(
                    mct.c.version,
                    mct.c.callback_token_hash,
                    *[mct.c[c.key] for c in _state_columns()],
                    *_session_columns(),
                )
            )
            row = (await self.session.execute(claim)).one_or_none()
            if row is None:
                return await self.get_for_user(user_id, session_id), None
            data = dict(row._mapping)
            session_row = SessionRow(**{k: data[k] for k in SessionRow.__dataclass_fields__})
            locked = LockedConversation(
                id=session_row.mentor_conversation_id,
                user_id=user_id,
                daily_session_id=session_id,
                version=data["version"],
                callback_token_hash=data["callback_token_hash"],
                state=ConversationState(**{c.key: data[c.key] for c in _state_columns()}),
            )
            return session_row, locked
        current = await self.get_for_user(user_id, session_id)
        if current is None or current.conversation_status not in claimable:
            return current, None
        await self.session.execute(
            update(mc)
            .where(mc.id == current.mentor_conversation_id)
            .values(status=ConversationStatus.ending.value, updated_at=now, version=mc.version + 1)
        )
        claimed = await self.lock_conversation(current.mentor_conversation_id)
        return replace(current, conversation_status="ending"), claimed

    # --- read -----------------------------------------------------------------------------
    async def get_for_user(self, user_id: uuid.UUID, session_id: uuid.UUID) -> SessionRow | None:
        """The caller's session by id; None for anyone else's (existence is not leaked)."""
        return await self._get_one(
            and_(DailySession.id == session_id, DailySession.user_id == user_id)
        )

    async def list_for_user(
        self,
        user_id: uuid.UUID,
        *,
        limit: int,
        before: tuple[datetime, uuid.UUID] | None = None,
    ) -> list[SessionRow]:
        """The caller's sessions, newest first, strictly before the `before` cursor."""
        ds = DailySession
        query = (
            select(*_session_columns())
            .select_from(ds)
            .join(MentorConversation, MentorConversation.daily_session_id == ds.id)
            .where(ds.user_id == user_id)
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
        return [_to_session_row(row) for row in await self.session.execute(query)]

    async def get_detail(
        self, user_id: uuid.UUID, session_id: uuid.UUID
    ) -> tuple[SessionRow, SessionExtras] | None:
        """The caller's session with what Tavus's callbacks added to it."""
        mc = MentorConversation
        row = (
            await self.session.execute(
                select(
                    *_session_columns(),
                    mc.transcript,
                    mc.recording,
                    mc.perception_analysis,
                    mc.post_call_actions,
                    mc.replica_joined_at,
                    DailySession.conversation_transcript,
                )
                .select_from(DailySession)
                .join(mc, mc.daily_session_id == DailySession.id)
                .where(DailySession.id == session_id, DailySession.user_id == user_id)
            )
        ).one_or_none()
        if row is None:
            return None
        data = dict(row._mapping)
        extras = SessionExtras(**{k: data.pop(k) for k in SessionExtras.__dataclass_fields__})
        return SessionRow(**data), extras

    async def get_by_conversation_row(self, mentor_conversation_id: uuid.UUID) -> SessionRow | None:
        return await self._get_one(MentorConversation.id == mentor_conversation_id)

    async def _get_one(self, where: Any) -> SessionRow | None:
        result = await self.session.execute(
            select(*_session_columns())
            .select_from(DailySession)
            .join(MentorConversation, MentorConversation.daily_session_id == DailySession.id)
            .where(where)
        )
        row = result.one_or_none()
        return _to_session_row(row) if row is not None else None

    async def find_for_user(
        self,
        user_id: uuid.UUID,
        *,
        tavus_conversation_id: str | None = None,
        mentor_conversation_id: uuid.UUID | None = None,
        daily_session_id: uuid.UUID | None = None,
    ) -> SessionRow | None:
        """The caller's session named by every id given (one statement); None when the ids
        name different sessions, or someone else's (the origin's end call sends any of them)."""
        mc, ds = MentorConversation, DailySession
        named = [
            condition
            for value, condition in (
                (tavus_conversation_id, mc.tavus_conversation_id == tavus_conversation_id),
                (mentor_conversation_id, mc.id == mentor_conversation_id),
                (daily_session_id, ds.id == daily_session_id),
            )
            if value is not None
        ]
        if not named:
            raise ValueError("name the session by at least one id")
        return await self._get_one(and_(ds.user_id == user_id, mc.user_id == user_id, *named))


def _recent_starts(user_id: uuid.UUID, since: datetime | None) -> list[Any]:
    if since is None:
        return []
    mc = MentorConversation
    recent = and_(mc.user_id == user_id, mc.created_at >= since)
    return [
        select(func.count()).where(recent).scalar_subquery().label("recent_starts"),
        select(func.min(mc.created_at))
        .where(recent)
        .scalar_subquery()
        .label("oldest_recent_start"),
    ]


def _daily_table() -> Table:
    return cast(Table, DailySession.__table__)


def _persona_row(data: dict[str, Any]) -> PersonaRow:
    return PersonaRow(
        id=uuid.UUID(str(data["id"])),
        name=data["name"],
        tavus_persona_id=data.get("tavus_persona_id"),
        replica_id=data.get("replica_id"),
        avatar_name=data.get("avatar_name"),
        avatar_thumbnail_url=data.get("avatar_thumbnail_url"),
        avatar_persona_id=data.get("avatar_persona_id"),
        avatar_replica_id=data.get("avatar_replica_id"),
        avatar_is_premium=bool(data.get("avatar_is_premium")),
    )


@dataclass(frozen=True, slots=True)
class StoredKey:
    request_hash: bytes
    state: str
    daily_session_id: uuid.UUID | None
    response_status: int | None
    response_body: Any
    locked_until: datetime
    expires_at: datetime


class IdempotencyRepository:
    """SQL of `idempotency_keys`: atomic claim, completion, release."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(
        self,
        *,
        user_id: uuid.UUID,
        key: str,
        request_hash: bytes,
        daily_session_id: uuid.UUID,
        now: datetime,
        locked_until: datetime,
        expires_at: datetime,
    ) -> StoredKey | None:
        """Claim `key` for a new start; None when claimed, else the key as stored.

        `INSERT … ON CONFLICT DO NOTHING` decides between concurrent requests atomically;
        an expired key is deleted first so it can be claimed again.
        """
        k = IdempotencyKey
        await self.session.execute(
            delete(k).where(k.user_id == user_id, k.key == key, k.expires_at <= now)
        )
        dialect = self.session.get_bind().dialect.name
        module: Any = postgresql if dialect == "postgresql" else sqlite
        inserted = await self.session.execute(
            module.insert(k)
            .values(
                user_id=user_id,
                key=key,
                request_hash=request_hash,
                state="in_flight",
                daily_session_id=daily_session_id,
                created_at=now,
                locked_until=locked_until,
                expires_at=expires_at,
            )
            .on_conflict_do_nothing(index_elements=["user_id", "key"])
            .returning(k.key)
        )
        if inserted.first() is not None:
            return None
        row = (
            await self.session.execute(
                select(
                    k.request_hash,
                    k.state,
                    k.daily_session_id,
                    k.response_status,
                    k.response_body,
                    k.locked_until,
                    k.expires_at,
                ).where(k.user_id == user_id, k.key == key)
            )
        ).one()
        return StoredKey(**row._mapping)

    async def complete(
        self, user_id: uuid.UUID, key: str, *, status: int, body: Any, now: datetime
    ) -> None:
        """Store the final response; retries replay it until the key expires."""
        k = IdempotencyKey
        await self.session.execute(
            update(k)
            .where(k.user_id == user_id, k.key == key)
            .values(state="done", response_status=status, response_body=body, locked_until=now)
        )

    async def unlock(self, user_id: uuid.UUID, key: str, now: datetime) -> None:
        """Let retries look at the session now (its outcome is being resolved)."""
        k = IdempotencyKey
        await self.session.execute(
            update(k).where(k.user_id == user_id, k.key == key).values(locked_until=now)
        )

    async def release(self, user_id: uuid.UUID, key: str) -> None:
        """Forget the key: the start definitely failed, so a retry may try again."""
        k = IdempotencyKey
        await self.session.execute(delete(k).where(k.user_id == user_id, k.key == key))

    async def purge_expired(self, now: datetime, limit: int = 1000) -> int:
        """Delete up to `limit` expired keys; returns how many."""
        k = IdempotencyKey
        expired = select(k.user_id, k.key).where(k.expires_at <= now).limit(limit).subquery()
        result = await self.session.execute(
            delete(k).where(tuple_(k.user_id, k.key).in_(select(expired.c.user_id, expired.c.key)))
        )
        return int(getattr(result, "rowcount", 0) or 0)


class DataRightsRepository:
    """Deleting a user's data: one session, everything, or old transcripts."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def delete_session(self, user_id: uuid.UUID, session_id: uuid.UUID) -> bool:
        """Delete the caller's session; its conversation row and events go with it (FK
        cascades). False when it is not the caller's."""
        # Lock the conversation row first, in the order callbacks take locks (conversation,
        # then session); the cascade alone would lock the session row first and deadlock.
        await self.session.execute(
            select(MentorConversation.id)
            .where(
                MentorConversation.daily_session_id == session_id,
                MentorConversation.user_id == user_id,
            )
            .with_for_update()
        )
        # A stored start response names the session: a retry must not replay a deleted one.
        await self.session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.user_id == user_id, IdempotencyKey.daily_session_id == session_id
            )
        )
        result = await self.session.execute(
            delete(DailySession)
            .where(DailySession.id == session_id, DailySession.user_id == user_id)
            .returning(DailySession.id)
        )
        return result.first() is not None

    async def conversation_ids(self, user_id: uuid.UUID) -> list[str]:
        mc = MentorConversation
        rows = await self.session.execute(
            select(mc.tavus_conversation_id).where(
                mc.user_id == user_id, mc.tavus_conversation_id.is_not(None)
            )
        )
        return [row for row in rows.scalars() if row]

    async def delete_user(self, user_id: uuid.UUID) -> bool:
        """Delete the profile; every table keyed by the user cascades from it."""
        await self.session.execute(  # conversation rows first: the callbacks' lock order
            select(MentorConversation.id)
            .where(MentorConversation.user_id == user_id)
            .with_for_update()
        )
        result = await self.session.execute(
            delete(Profile).where(Profile.id == user_id).returning(Profile.id)
        )
        return result.first() is not None

    async def expire_transcripts(self, before: datetime, *, limit: int, now: datetime) -> int:
        """Drop transcripts (and the raw callbacks carrying them) of sessions that ended
        before `before`; returns how many sessions were cleared."""
        mc, e = MentorConversation, TavusCallbackEvent
        ids = list(
            (
                await self.session.execute(
                    select(mc.id)
                    .where(mc.end_time < before, mc.transcript.is_not(None))
                    .limit(limit)
                )
            ).scalars()
        )
        if not ids:
            return 0
        daily_ids = select(mc.daily_session_id).where(mc.id.in_(ids)).scalar_subquery()
        await self.session.execute(
            update(DailySession)
            .where(DailySession.id.in_(daily_ids))
            .values(conversation_transcript=None, updated_at=now)
        )
        await self.session.execute(
            update(mc)
            .where(mc.id.in_(ids))
            .values(transcript=None, updated_at=now, version=mc.version + 1)
        )
        await self.session.execute(
            update(e)
            .where(
                e.mentor_conversation_id.in_(ids),
                e.event_type.in_(["application.transcription_ready", "transcript_ready"]),
            )
            .values(payload={"redacted": "transcript retention"})
        )
        return len(ids)
