"""The one place a goal change is recorded, and the one place a session report is: whatever
else must happen when the mentor changes a goal or a report arrives (an event for the app's
webhooks) is added here, in the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from facetoface.models.mentor_action import ChangeSource, GoalChangeKind
from facetoface.tools.repository import ActionsRepository


@dataclass(frozen=True, slots=True)
class NewGoalChange:
    """A change the mentor made to one of the user's goals."""

    user_id: uuid.UUID
    goal_id: uuid.UUID
    session_id: uuid.UUID
    kind: GoalChangeKind
    source: ChangeSource
    before: dict[str, Any] | None
    after: dict[str, Any]
    note: str | None
    tool_call_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class NewSessionReport:
    """A session's post-call report, as stored."""

    mentor_conversation_id: uuid.UUID
    session_id: uuid.UUID
    user_id: uuid.UUID
    summary: str
    next_steps: list[str]
    mood: str | None
    goal_updates: list[dict[str, Any]]
    at: datetime


async def record_goal_change(repository: ActionsRepository, change: NewGoalChange) -> uuid.UUID:
    """Log a goal change (the goal itself is already changed, in the same transaction)."""
    return await repository.insert_change(
        {
            "user_id": change.user_id,
            "goal_id": change.goal_id,
            "session_id": change.session_id,
            "kind": change.kind,
            "source": change.source,
            "before_value": change.before,
            "after_value": change.after,
            "note": change.note,
            "tool_call_id": change.tool_call_id,
            "created_at": change.at,
        }
    )


async def record_session_report(repository: ActionsRepository, report: NewSessionReport) -> None:
    """Store a session's report (once per session: the table's key holds it)."""
    await repository.insert_report(
        {
            "mentor_conversation_id": report.mentor_conversation_id,
            "user_id": report.user_id,
            "summary": report.summary,
            "next_steps": report.next_steps,
            "mood": report.mood,
            "goal_updates": report.goal_updates,
            "received_at": report.at,
        }
    )
