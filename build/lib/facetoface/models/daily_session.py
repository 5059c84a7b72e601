from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from facetoface.conversations.status import SessionStatus
from facetoface.models.base import Base, IDMixin, JSONType, TimestampsMixin, check_in

SESSION_TYPES = ("face_to_face", "spoken_presence", "silent_reflection", "written_clarity")
SESSION_STATUSES = tuple(status.value for status in SessionStatus)


class DailySession(IDMixin, TimestampsMixin, Base):
    """A user's session as the app shows it (the origin's analytics table, kept compatible).

    Its `id` is the session id of the HTTP API; the Tavus side lives in `mentor_conversations`,
    linked one-to-one by `mentor_conversations.daily_session_id`.
    """

    __tablename__ = "daily_sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"))
    session_type: Mapped[str] = mapped_column(Text)
    # The origin defaulted to 'completed', so an interrupted insert looked like a finished one.
    session_status: Mapped[str] = mapped_column(
        Text, default="started", server_default=text("'started'")
    )
    duration_seconds: Mapped[int | None]
    virtue_earned: Mapped[str | None] = mapped_column(Text)
    emotional_snapshot: Mapped[Any | None] = mapped_column(JSONType)
    key_insights: Mapped[Any | None] = mapped_column(JSONType)
    suggested_goals: Mapped[Any | None] = mapped_column(JSONType)
    conversation_transcript: Mapped[str | None] = mapped_column(Text)
    session_metadata: Mapped[Any | None] = mapped_column(JSONType)
    session_date: Mapped[date] = mapped_column(Date, server_default=func.current_date())
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(check_in("session_type", SESSION_TYPES), name="session_type"),
        CheckConstraint(check_in("session_status", SESSION_STATUSES), name="session_status"),
        CheckConstraint("duration_seconds >= 0", name="duration_seconds"),
        # Newest-first listing of a user's sessions, with `id` as the cursor tie-breaker.
        Index(None, "user_id", "created_at", "id"),
        Index(None, "session_date"),
    )
