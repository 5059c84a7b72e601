from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from facetoface.conversations.status import CallbackOutcome
from facetoface.models.base import Base, IDMixin, JSONType, check_in, utcnow

#: What the inbox stores (`duplicate` is never stored: it is the absence of a new row).
CALLBACK_OUTCOMES = tuple(o.value for o in CallbackOutcome if o is not CallbackOutcome.duplicate)


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
    #: The event as received, with what PostgreSQL cannot store (U+0000, lone surrogates)
    #: replaced by U+FFFD; `raw_body_b64` then keeps the exact bytes received (base64).
    payload: Mapped[Any] = mapped_column(JSONType)
    raw_body_b64: Mapped[str | None] = mapped_column(Text)
    #: applied (changed the session) · no_effect (session closed or already had it) ·
    #: ignored (unknown event type).
    outcome: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint(check_in("outcome", CALLBACK_OUTCOMES), name="outcome"),
        # A session's event timeline.
        Index(None, "mentor_conversation_id", "received_at"),
    )
