from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from facetoface.models.base import Base, IDMixin, TimestampsMixin, check_in

GOAL_TYPES = (
    "emotional_wellness",
    "personal_growth",
    "relationships",
    "career",
    "health",
    "mindfulness",
)


class GoalStatus(StrEnum):
    """`user_goals.status` (the origin's CHECK set)."""

    active = "active"
    completed = "completed"
    paused = "paused"
    archived = "archived"


GOAL_STATUSES = tuple(GoalStatus)
GOAL_SOURCES = ("onboarding", "session_suggestion", "user_created")


class UserGoal(IDMixin, TimestampsMixin, Base):
    """A personal development goal; only `active` ones reach the mentor."""

    __tablename__ = "user_goals"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"))
    goal_text: Mapped[str] = mapped_column(Text)
    goal_type: Mapped[str] = mapped_column(
        Text, default="emotional_wellness", server_default=text("'emotional_wellness'")
    )
    smart_goal: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="active", server_default=text("'active'"))
    target_date: Mapped[date | None] = mapped_column(Date)
    progress_percentage: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    source: Mapped[str] = mapped_column(
        Text, default="onboarding", server_default=text("'onboarding'")
    )

    __table_args__ = (
        CheckConstraint(check_in("goal_type", GOAL_TYPES), name="goal_type"),
        CheckConstraint(check_in("status", GOAL_STATUSES), name="status"),
        CheckConstraint("progress_percentage BETWEEN 0 AND 100", name="progress_percentage"),
        CheckConstraint(check_in("source", GOAL_SOURCES), name="source"),
        Index(None, "user_id"),
        Index(
            "ix_user_goals_active_user_id",
            "user_id",
            postgresql_where=text(f"status = '{GoalStatus.active.value}'"),
        ),
    )
