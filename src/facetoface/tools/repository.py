"""The SQL of the mentor's actions: finding a call's session, tool-call records, goals, the
goal-change log and reports.

General-path SQL in one `Database.transaction` per call (a tool call is rare next to starts
and callbacks; its order of statements matters more than its round trips). Everything but
`find_session` runs as the session's user (`authenticated`, confined to their rows by
row-level security, migrations 0005 and 0013).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from facetoface.models import GoalChange, MentorConversation, MentorToolCall, UserGoal
from facetoface.models.mentor_action import SessionReport
from facetoface.models.user_goal import GoalStatus
from facetoface.models.user_preference import UserPreference


@dataclass(frozen=True, slots=True)
class CallSession:
    """The session a Tavus conversation belongs to, as a tool call needs it."""

    mentor_conversation_id: uuid.UUID
    session_id: uuid.UUID
    user_id: uuid.UUID
    status: str
    end_time: datetime | None
    persona_id: str | None


@dataclass(frozen=True, slots=True)
class Goal:
    id: uuid.UUID
    goal_text: str
    status: str
    progress_percentage: int


@dataclass(frozen=True, slots=True)
class ChangeRow:
    """A goal change with its goal's text and current state."""

    change: GoalChange
    goal_text: str
    goal_status: str
    goal_progress: int


class ActionsRepository:
    """The statements of one transaction (see the module docstring)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- the call's session ----------------------------------------------------------------
    async def find_session(self, conversation_id: str) -> CallSession | None:
        """The session of Tavus conversation `conversation_id` (as the service, for nobody:
        the caller is not known before this)."""
        mc = MentorConversation
        row = (
            await self.session.execute(
                select(
                    mc.id,
                    mc.daily_session_id,
                    mc.user_id,
                    mc.status,
                    # When it ended: Tavus's end time, else when we closed it.
                    func.coalesce(mc.end_time, mc.closed_at, mc.updated_at),
                    mc.persona_id,
                ).where(mc.tavus_conversation_id == conversation_id)
            )
        ).first()
        return CallSession(*row) if row is not None else None

    async def session_status(self, mentor_conversation_id: uuid.UUID) -> str | None:
        """The session's conversation status now (None: no such session)."""
        mc = MentorConversation
        return (
            await self.session.execute(select(mc.status).where(mc.id == mentor_conversation_id))
        ).scalar_one_or_none()

    async def lock_session(self, mentor_conversation_id: uuid.UUID) -> None:
        """Serialise one session's tool calls until the transaction ends (the per-session
        limit and the replay check are decided under it)."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"mentor_tool_calls:{mentor_conversation_id}"},
        )

    # --- tool-call records -------------------------------------------------------------------
    async def recorded_answer(
        self, mentor_conversation_id: uuid.UUID, tool_call_id: str
    ) -> str | None:
        """The answer given to this tool call before (None: a new call)."""
        tc = MentorToolCall
        return (
            await self.session.execute(
                select(tc.answer).where(
                    tc.mentor_conversation_id == mentor_conversation_id,
                    tc.tool_call_id == tool_call_id,
                )
            )
        ).scalar_one_or_none()

    async def changes_made(self, mentor_conversation_id: uuid.UUID) -> int:
        """How many changes the session's calls made so far."""
        tc = MentorToolCall
        total = (
            await self.session.execute(
                select(func.coalesce(func.sum(tc.changes), 0)).where(
                    tc.mentor_conversation_id == mentor_conversation_id
                )
            )
        ).scalar_one()
        return int(total)

    async def record_call(
        self,
        call: CallSession,
        tool_call_id: str,
        tool_name: str,
        answer: str,
        *,
        changes: int,
        now: datetime,
    ) -> None:
        """Record a call and its answer; one recorded already (a replay that raced this one)
        is left as it is."""
        await self.session.execute(
            text(
                "INSERT INTO mentor_tool_calls (mentor_conversation_id, tool_call_id, user_id,"
                " tool_name, answer, changes, created_at) VALUES (:mc, :tc, :user, :name,"
                " :answer, :changes, :now) ON CONFLICT DO NOTHING"
            ),
            {
                "mc": call.mentor_conversation_id,
                "tc": tool_call_id,
                "user": call.user_id,
                "name": tool_name,
                "answer": answer,
                "changes": changes,
                "now": now,
            },
        )

    async def mentor_memory(self, user_id: uuid.UUID) -> bool:
        """The user's `mentor_memory` preference (default on)."""
        value = (
            await self.session.execute(
                select(UserPreference.mentor_memory).where(UserPreference.user_id == user_id)
            )
        ).scalar_one_or_none()
        return value is not False

    # --- goals ---------------------------------------------------------------------------------
    async def goal(self, goal_id: uuid.UUID, *, lock: bool = False) -> Goal | None:
        """The goal, if the caller's (row-level security hides everyone else's)."""
        g = UserGoal
        query = select(g.id, g.goal_text, g.status, g.progress_percentage).where(g.id == goal_id)
        row = (await self.session.execute(query.with_for_update() if lock else query)).first()
        return Goal(*row) if row is not None else None

    async def set_progress(self, goal_id: uuid.UUID, progress: int, now: datetime) -> None:
        await self.session.execute(
            update(UserGoal)
            .where(UserGoal.id == goal_id)
            .values(progress_percentage=progress, updated_at=now)
        )

    async def set_status(self, goal_id: uuid.UUID, status: GoalStatus, now: datetime) -> None:
        await self.session.execute(
            update(UserGoal).where(UserGoal.id == goal_id).values(status=status, updated_at=now)
        )

    async def add_goal(
        self,
        user_id: uuid.UUID,
        goal_text: str,
        goal_type: str | None,
        target_date: date | None,
        source: str,
        now: datetime,
    ) -> uuid.UUID:
        values: dict[str, Any] = {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "goal_text": goal_text,
            "target_date": target_date,
            "source": source,
            "status": GoalStatus.active,
            "progress_percentage": 0,
            "created_at": now,
            "updated_at": now,
        }
        if goal_type is not None:
            values["goal_type"] = goal_type
        await self.session.execute(insert(UserGoal).values(**values))
        goal_id: uuid.UUID = values["id"]
        return goal_id

    # --- the goal-change log ---------------------------------------------------------------
    async def insert_change(self, values: dict[str, Any]) -> uuid.UUID:
        change_id = uuid.uuid4()
        await self.session.execute(insert(GoalChange).values(id=change_id, **values))
        return change_id

    async def changes(
        self,
        *,
        limit: int,
        before: tuple[datetime, uuid.UUID] | None,
        session_id: uuid.UUID | None,
    ) -> list[ChangeRow]:
        """The caller's changes, newest first, after the cursor `before`."""
        c, g = GoalChange, UserGoal
        query = select(c, g.goal_text, g.status, g.progress_percentage).join(g, g.id == c.goal_id)
        if session_id is not None:
            query = query.where(c.session_id == session_id)
        if before is not None:
            at, change_id = before
            query = query.where(or_(c.created_at < at, and_(c.created_at == at, c.id < change_id)))
        rows = await self.session.execute(
            query.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        )
        return [ChangeRow(*row) for row in rows.all()]

    async def change_for_update(self, change_id: uuid.UUID) -> ChangeRow | None:
        """One of the caller's changes, locked with its goal (undo decides under the locks)."""
        c, g = GoalChange, UserGoal
        row = (
            await self.session.execute(
                select(c, g.goal_text, g.status, g.progress_percentage)
                .join(g, g.id == c.goal_id)
                .where(c.id == change_id)
                .with_for_update()
            )
        ).first()
        return ChangeRow(*row) if row is not None else None

    async def undone_in_session(self, goal_id: uuid.UUID, session_id: uuid.UUID) -> bool:
        """Whether the user undid a change to this goal made in this session."""
        c = GoalChange
        found = await self.session.execute(
            select(c.id)
            .where(c.goal_id == goal_id, c.session_id == session_id, c.undone_at.is_not(None))
            .limit(1)
        )
        return found.first() is not None

    async def mark_undone(self, change_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(GoalChange).where(GoalChange.id == change_id).values(undone_at=now)
        )

    # --- reports -----------------------------------------------------------------------------
    async def has_report(self, mentor_conversation_id: uuid.UUID) -> bool:
        found = await self.session.execute(
            select(SessionReport.mentor_conversation_id).where(
                SessionReport.mentor_conversation_id == mentor_conversation_id
            )
        )
        return found.first() is not None

    async def insert_report(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(SessionReport).values(**values))
