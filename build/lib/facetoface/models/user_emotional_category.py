from __future__ import annotations

import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from facetoface.models.base import Base, CreatedAtMixin, IDMixin, check_in

CATEGORIES = (
    "stress_management",
    "goal_achievement",
    "relationships",
    "self_worth",
    "emotional_regulation",
    "work_life_balance",
    "personal_growth",
    "mindfulness",
)


class UserEmotionalCategory(IDMixin, CreatedAtMixin, Base):
    """An emotional focus area of a user; priority 1 is the most important."""

    __tablename__ = "user_emotional_categories"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(Text)
    priority_level: Mapped[int] = mapped_column(default=1, server_default=text("1"))

    __table_args__ = (
        CheckConstraint(check_in("category", CATEGORIES), name="category"),
        CheckConstraint("priority_level BETWEEN 1 AND 5", name="priority_level"),
        # Also serves every lookup by user_id (leading column).
        UniqueConstraint("user_id", "category"),
    )
