from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Numeric, Text
from sqlalchemy.orm import Mapped, mapped_column

from facetoface.models.base import Base, CreatedAtMixin, IDMixin, JSONType, check_in, utcnow

DISC_TYPES = ("D", "I", "S", "C")


class OnboardingProfile(IDMixin, CreatedAtMixin, Base):
    """Personality assessment results (DISC, Enneagram); at most one per user."""

    __tablename__ = "onboarding_profiles"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("profiles.id", ondelete="CASCADE"), unique=True
    )
    disc_type: Mapped[str] = mapped_column(Text)
    enneagram_type: Mapped[int | None]
    confidence_score: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    personality_insights: Mapped[Any | None] = mapped_column(JSONType)
    assessment_transcript: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[datetime | None] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint(check_in("disc_type", DISC_TYPES), name="disc_type"),
        CheckConstraint("enneagram_type BETWEEN 1 AND 9", name="enneagram_type"),
        CheckConstraint("confidence_score BETWEEN 0.70 AND 1.00", name="confidence_score"),
    )
