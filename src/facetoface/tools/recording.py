"""The one place a goal change is recorded, and the one place a session report is: whatever
else must happen when the mentor changes a goal or a report arrives (an event for the app's
webhooks) is added here, in the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from facetoface.models.mentor_action import ChangeSource, GoalChange, GoalChangeKind
from facetoface.outbox import EventType, enqueue
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
    """Log a goal change (the goal itself is already changed, in the same transaction) and
    tell the app (`goal.changed`)."""
    change_id = await repository.insert_change(
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
    await _goal_changed(
        repository,
        user_id=change.user_id,
        goal_id=change.goal_id,
        change_id=change_id,
        session_id=change.session_id,
        kind=change.kind,
        source=change.source,
        before=change.before,
        after=change.after,
        undone=False,
        at=change.at,
    )
    return change_id


async def record_undo(repository: ActionsRepository, change: GoalChange, at: datetime) -> None:
    """Mark a change undone (the goal itself is already restored, in the same transaction)
    and tell the app (`goal.changed` with `undone`: the goal is back as it was before)."""
    await repository.mark_undone(change.id, at)
    await _goal_changed(
        repository,
        user_id=change.user_id,
        goal_id=change.goal_id,
        change_id=change.id,
        session_id=change.session_id,
        kind=GoalChangeKind(change.kind),
        source=ChangeSource(change.source),
        before=change.after_value,
        after=change.before_value,
        undone=True,
        at=at,
    )


async def _goal_changed(
    repository: ActionsRepository,
    *,
    user_id: uuid.UUID,
    goal_id: uuid.UUID,
    change_id: uuid.UUID,
    session_id: uuid.UUID,
    kind: GoalChangeKind,
    source: ChangeSource,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    undone: bool,
    at: datetime,
) -> None:
    await enqueue(
        repository.session,
        EventType.goal_changed,
        {
            "user_id": user_id,
            "goal_id": goal_id,
            "change_id": change_id,
            "session_id": session_id,
            "kind": kind.value,
            "source": source.value,
            "progress_before": (before or {}).get("progress_percentage"),
            "progress_after": (after or {}).get("progress_percentage"),
            "undone": undone,
            "changed_at": at,
        },
        # One event for the change and one for its undo, however often either is retried.
        key=f"{change_id}:{'undone' if undone else 'made'}",
        user_id=user_id,
    )


async def record_session_report(repository: ActionsRepository, report: NewSessionReport) -> None:
    """Store a session's report (once per session: the table's key holds it) and tell the app
    (`session.report_ready`)."""
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
    await enqueue(
        repository.session,
        EventType.session_report_ready,
        {
            "session_id": report.session_id,
            "user_id": report.user_id,
            # A session has one report, keyed by its conversation row.
            "report_id": report.mentor_conversation_id,
            "created_at": report.at,
        },
        key=str(report.mentor_conversation_id),
        user_id=report.user_id,
    )
