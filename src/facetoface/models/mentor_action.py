"""What the mentor did during and after a session (Tavus tools and post-call actions).

- `mentor_tool_calls`: one row per tool call Tavus delivered for a session (its
  `tool_call_id`), with the answer given: a replayed call gets the same answer and changes
  nothing; the rows that changed something count against the per-session limit.
- `goal_changes`: the goal-change log — what the mentor changed, before → after, when, in
  which session, from a tool call or the session report; `undone_at` once the user undid it.
- `session_reports`: the post-call report of a session (at most one).

Every row carries its owner's `user_id` under row-level security (migration 0013): the
mentor's changes are written as that user, never with the service's own rights.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, PrimaryKeyConstraint, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from facetoface.models.base import Base, IDMixin, JSONType, check_in, utcnow


class ChangeSource(StrEnum):
    """Where a goal change came from."""

    tool = "tool"
    report = "report"


class GoalChangeKind(StrEnum):
    """What a goal change did: moved the progress, or added the goal."""

    progress = "progress"
    added = "added"


CHANGE_SOURCES = tuple(ChangeSource)
GOAL_CHANGE_KINDS = tuple(GoalChangeKind)


class MentorToolCall(Base):
    """One tool call (or post-call action) Tavus delivered for a conversation."""

    __tablename__ = "mentor_tool_calls"

    mentor_conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("mentor_conversations.id", ondelete="CASCADE")
    )
    tool_call_id: Mapped[str] = mapped_column(Text)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"))
    tool_name: Mapped[str] = mapped_column(Text)
    #: The text the model was given (a replay gets it again).
    answer: Mapped[str] = mapped_column(Text)
    #: How many things the call changed (their sum counts against TOOL_CHANGES_PER_SESSION).
    changes: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        PrimaryKeyConstraint("mentor_conversation_id", "tool_call_id"),
        CheckConstraint("length(tool_call_id) BETWEEN 1 AND 200", name="tool_call_id_length"),
        Index(None, "user_id"),
    )


class GoalChange(IDMixin, Base):
    """One change the mentor made to a goal; the user can undo it."""

    __tablename__ = "goal_changes"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"))
    goal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_goals.id", ondelete="CASCADE"))
    #: The session (`daily_sessions.id`) it was made in.
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("daily_sessions.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    #: The goal's fields before and after, as JSON (`null` before: the goal was added).
    before_value: Mapped[Any | None] = mapped_column(JSONType)
    after_value: Mapped[Any] = mapped_column(JSONType)
    note: Mapped[str | None] = mapped_column(Text)
    tool_call_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(check_in("kind", GOAL_CHANGE_KINDS), name="kind"),
        CheckConstraint(check_in("source", CHANGE_SOURCES), name="source"),
        # The user's log, newest first (paged), and a session's changes.
        Index(None, "user_id", "created_at"),
        Index(None, "session_id"),
        Index(None, "goal_id"),
    )


class SessionReport(Base):
    """A session's post-call report (Tavus's `session_report` action), at most one."""

    __tablename__ = "session_reports"

    mentor_conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("mentor_conversations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"))
    summary: Mapped[str] = mapped_column(Text)
    next_steps: Mapped[Any] = mapped_column(JSONType)
    mood: Mapped[str | None] = mapped_column(Text)
    goal_updates: Mapped[Any] = mapped_column(JSONType)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index(None, "user_id"),)
