"""All SQL of the sessions feature. Hot paths are counted: see the statement budget below.

Statement budget on PostgreSQL (checked by tests): start = 3 (load context, insert both rows,
mark active), end = 2 (claim, close). SQLite lacks data-modifying CTEs, so there the two
tables are written by two statements each; it is the single-process development database.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, and_, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from facetoface.models import (
    LIVE_STATUSES,
    ConversationStatus,
    DailySession,
    MentorAvatar,
    MentorConversation,
    OnboardingProfile,
    Profile,
    RitualPreferences,
    UserEmotionalCategory,
    UserGoal,
    UserPersona,
)
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
    async def load_start_data(self, user_id: uuid.UUID, mentor_id: uuid.UUID | None) -> StartData:
        """Profile, assessment, preferences, focus areas, active goals and mentor: one statement."""
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
        """Record Tavus's conversation. Status becomes `active` only if still `starting`.

        The conversation id is recorded whatever the status, so a session ended while its
        create was in flight still names the conversation that must be ended. Returns the
        session as it now is.
        """
        mc = MentorConversation
        new_status = _case_starting(ConversationStatus.active.value)
        values = {
            "tavus_conversation_id": tavus_conversation_id,
            "conversation_url": conversation_url,
            "start_time": func.coalesce(mc.start_time, start_time),
            "status": new_status,
            "updated_at": now,
        }
        if self._is_postgres:
            upd = (
                update(mc)
                .where(mc.id == mentor_conversation_id)
                .values(values)
                .returning(mc.daily_session_id, mc.status)
                .cte("upd")
            )
            daily = (
                update(DailySession)
                .where(DailySession.id == upd.c.daily_session_id, upd.c.status == "active")
                .values(started_at=start_time, updated_at=now)
                .returning(DailySession.id)
                .cte("daily")
            )
            result = await self.session.execute(
                select(*_session_columns())
                .select_from(DailySession)
                .join(mc, mc.daily_session_id == DailySession.id)
                .where(mc.id == mentor_conversation_id)
                .add_cte(upd)
                .add_cte(daily)
            )
            row = result.one_or_none()
            if row is None:
                return None
            # The outer select sees the pre-statement snapshot; patch in what the CTEs wrote.
            session_row = _to_session_row(row)
            if session_row.conversation_status == ConversationStatus.starting.value:
                return _replace(
                    session_row,
                    conversation_status=ConversationStatus.active.value,
                    tavus_conversation_id=tavus_conversation_id,
                    conversation_url=conversation_url,
                    start_time=session_row.start_time or start_time,
                    started_at=start_time,
                )
            return _replace(
                session_row,
                tavus_conversation_id=tavus_conversation_id,
                conversation_url=conversation_url,
            )
        result = await self.session.execute(
            update(mc)
            .where(mc.id == mentor_conversation_id)
            .values(values)
            .returning(mc.daily_session_id, mc.status)
        )
        updated = result.one_or_none()
        if updated is None:
            return None
        if updated.status == ConversationStatus.active.value:
            await self.session.execute(
                update(DailySession)
                .where(DailySession.id == updated.daily_session_id)
                .values(started_at=start_time, updated_at=now)
            )
        return await self.get_by_conversation_row(mentor_conversation_id)

    async def mark_unresolved(
        self,
        mentor_conversation_id: uuid.UUID,
        *,
        status: ConversationStatus,
        failure_code: str,
        now: datetime,
    ) -> None:
        """Mark a start that did not succeed: `failed` (definite) or `indeterminate`."""
        mc = MentorConversation
        session_status = "failed" if status is ConversationStatus.failed else "started"
        await self._update_both(
            mentor_conversation_id,
            conversation_values={
                "status": _case_starting(status.value),
                "failure_code": failure_code,
                "updated_at": now,
            },
            daily_values={"session_status": session_status, "updated_at": now},
            only_if=mc.status == ConversationStatus.starting.value,
        )

    async def get_live(self, user_id: uuid.UUID) -> SessionRow | None:
        """The user's live session, if any."""
        return await self._get_one(
            and_(
                MentorConversation.user_id == user_id,
                MentorConversation.status.in_([s.value for s in LIVE_STATUSES]),
            )
        )

    # --- end ------------------------------------------------------------------------------
    async def claim_end(
        self, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime
    ) -> tuple[SessionRow | None, str | None]:
        """Move the caller's live session to `ending`; returns (session, previous status).

        One statement when it succeeds. A session that is not live is returned unchanged with
        previous status None; someone else's (or no) session gives (None, None).
        """
        mc = MentorConversation
        claimable = [
            ConversationStatus.active.value,
            ConversationStatus.ending.value,
            ConversationStatus.starting.value,
            ConversationStatus.indeterminate.value,
        ]
        if self._is_postgres:
            # Lock the row so two concurrent ends serialise; report the status before.
            before = (
                select(mc.id, mc.status)
                .where(
                    mc.daily_session_id == session_id,
                    mc.user_id == user_id,
                    mc.status.in_(claimable),
                )
                .with_for_update()
                .cte("before")
            )
            upd = (
                update(mc)
                .where(mc.id == before.c.id)
                .values(status=ConversationStatus.ending.value, updated_at=now)
                .returning(mc.id)
                .cte("upd")
            )
            result = await self.session.execute(
                select(*_session_columns(), before.c.status.label("previous"))
                .select_from(DailySession)
                .join(mc, mc.daily_session_id == DailySession.id)
                .outerjoin(before, before.c.id == mc.id)
                .where(DailySession.id == session_id, DailySession.user_id == user_id)
                .add_cte(upd)
            )
            row = result.one_or_none()
            if row is None:
                return None, None
            mapping = dict(row._mapping)
            previous = mapping.pop("previous")
            session_row = SessionRow(**mapping)
            if previous is not None:
                session_row = _replace(session_row, conversation_status="ending")
            return session_row, previous
        current = await self._get_one(
            and_(DailySession.id == session_id, DailySession.user_id == user_id)
        )
        if current is None or current.conversation_status not in claimable:
            return current, None
        await self.session.execute(
            update(mc)
            .where(mc.id == current.mentor_conversation_id)
            .values(status=ConversationStatus.ending.value, updated_at=now)
        )
        return _replace(current, conversation_status="ending"), current.conversation_status

    async def close(
        self,
        mentor_conversation_id: uuid.UUID,
        *,
        end_time: datetime,
        duration_seconds: int | None,
        session_status: str,
        failure_code: str | None,
        now: datetime,
    ) -> bool:
        """Close both rows of an `ending` session (one statement on PostgreSQL).

        False when the session was no longer `ending` (someone else closed it first).
        """
        return await self._update_both(
            mentor_conversation_id,
            conversation_values={
                "status": ConversationStatus.ended.value,
                "end_time": end_time,
                "duration_seconds": duration_seconds,
                "failure_code": failure_code,
                "updated_at": now,
            },
            daily_values={
                "session_status": session_status,
                "completed_at": end_time,
                "duration_seconds": duration_seconds,
                "updated_at": now,
            },
            only_if=MentorConversation.status == ConversationStatus.ending.value,
        )

    # --- read -----------------------------------------------------------------------------
    async def get_for_user(self, user_id: uuid.UUID, session_id: uuid.UUID) -> SessionRow | None:
        """The caller's session by id; None for anyone else's (existence is not leaked)."""
        return await self._get_one(
            and_(DailySession.id == session_id, DailySession.user_id == user_id)
        )

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

    async def _update_both(
        self,
        mentor_conversation_id: uuid.UUID,
        *,
        conversation_values: dict[str, Any],
        daily_values: dict[str, Any],
        only_if: Any,
    ) -> bool:
        mc = MentorConversation
        if self._is_postgres:
            upd = (
                update(mc)
                .where(mc.id == mentor_conversation_id, only_if)
                .values(conversation_values)
                .returning(mc.daily_session_id)
                .cte("upd")
            )
            daily = cast(Table, DailySession.__table__)
            result = await self.session.execute(
                update(daily)
                .where(daily.c.id == upd.c.daily_session_id)
                .values(daily_values)
                .returning(daily.c.id)
            )
            return result.first() is not None
        result = await self.session.execute(
            update(mc)
            .where(mc.id == mentor_conversation_id, only_if)
            .values(conversation_values)
            .returning(mc.daily_session_id)
        )
        daily_id = result.scalar_one_or_none()
        if daily_id is None:
            return False
        await self.session.execute(
            update(DailySession).where(DailySession.id == daily_id).values(daily_values)
        )
        return True


def _case_starting(value: str) -> Any:
    from sqlalchemy import case

    mc = MentorConversation
    return case((mc.status == ConversationStatus.starting.value, value), else_=mc.status)


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


def _replace(row: SessionRow, **changes: Any) -> SessionRow:
    from dataclasses import replace

    return replace(row, **changes)
