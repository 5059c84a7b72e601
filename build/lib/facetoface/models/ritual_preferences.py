from __future__ import annotations

import uuid
from datetime import time

from sqlalchemy import CheckConstraint, ForeignKey, Text, Time, text
from sqlalchemy.orm import Mapped, mapped_column

from facetoface.models.base import Base, IDMixin, TimestampsMixin, check_in

TIMINGS = ("morning_person", "evening_person", "flexible")
DURATIONS = ("quick_focused", "deeper_dive", "variable")
STYLES = ("guided_structure", "open_conversation", "mixed")
VOICES = ("confident_coach", "warm_friend", "gentle_guide", "wise_mentor")
FREQUENCIES = ("daily", "weekdays", "custom")


class RitualPreferences(IDMixin, TimestampsMixin, Base):
    """How a user likes their sessions; at most one per user."""

    __tablename__ = "ritual_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("profiles.id", ondelete="CASCADE"), unique=True
    )
    timing: Mapped[str] = mapped_column(Text)
    duration: Mapped[str] = mapped_column(Text)
    style: Mapped[str] = mapped_column(Text)
    voice_id: Mapped[str] = mapped_column(Text)
    focus_area: Mapped[str] = mapped_column(Text)
    elevenlabs_voice_id: Mapped[str | None] = mapped_column(Text)
    session_frequency: Mapped[str] = mapped_column(
        Text, default="daily", server_default=text("'daily'")
    )
    preferred_session_time: Mapped[time | None] = mapped_column(Time)
    reminder_enabled: Mapped[bool] = mapped_column(default=True, server_default=text("true"))

    __table_args__ = (
        CheckConstraint(check_in("timing", TIMINGS), name="timing"),
        CheckConstraint(check_in("duration", DURATIONS), name="duration"),
        CheckConstraint(check_in("style", STYLES), name="style"),
        CheckConstraint(check_in("voice_id", VOICES), name="voice_id"),
        CheckConstraint(check_in("session_frequency", FREQUENCIES), name="session_frequency"),
    )
