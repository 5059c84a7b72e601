from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from facetoface.models.base import Base, IDMixin, JSONType, check_in, utcnow

CALLBACK_OUTCOMES = ("applied", "no_effect", "ignored")


class TavusCallbackEvent(IDMixin, Base):
    """The inbox: every accepted Tavus callback, stored once before it is acknowledged."""

    __tablename__ = "tavus_callback_events"

    mentor_conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("mentor_conversations.id", ondelete="CASCADE")
    )
    conversation_id: Mapped[str] = mapped_column(Text)
    #: As Tavus sent it (aliases are normalised only when applied).
    event_type: Mapped[str] = mapped_column(Text)
    #: One-shot events: `<conversation>:<type>`; others add a hash of the body.
    dedupe_key: Mapped[str] = mapped_column(Text, unique=True)
    event_timestamp: Mapped[datetime | None]
    payload: Mapped[Any] = mapped_column(JSONType)
    #: applied (changed the session) · no_effect (session closed or already had it) ·
    #: ignored (unknown event type).
    outcome: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint(check_in("outcome", CALLBACK_OUTCOMES), name="outcome"),
        # A session's event timeline.
        Index(None, "mentor_conversation_id", "received_at"),
    )
