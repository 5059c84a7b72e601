from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from facetoface.models.base import Base, IDMixin, JSONType
from facetoface.outbox.events import DeliveryStatus, EventType

_EVENT_TYPES = ", ".join(f"'{member.value}'" for member in EventType)
_STATUSES = ", ".join(f"'{member.value}'" for member in DeliveryStatus)


class WebhookEvent(IDMixin, Base):
    """One event for the app's webhooks (the outbox): recorded with the change it reports,
    delivered by any replica under a lease, retried with backoff until `retry_until`.

    `id` is the event's `webhook-id`, the same on every attempt. Only the service's own role
    reads or writes it (migration 0014): never exposed to users.
    """

    __tablename__ = "webhook_events"

    #: `outbox.EventType`; with `event_key` (e.g. the session id) it names the event once.
    event_type: Mapped[str] = mapped_column(Text)
    event_key: Mapped[str] = mapped_column(Text)
    #: Whose event (NULL: nobody's); it goes with the profile.
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"))
    #: The body's `data`: ids, times, statuses (outbox/events.py `PAYLOAD_FIELDS`).
    data: Mapped[Any] = mapped_column(JSONType)
    #: When it happened (the body's `timestamp`).
    occurred_at: Mapped[datetime]
    #: `outbox.DeliveryStatus`.
    status: Mapped[str] = mapped_column(Text, server_default=DeliveryStatus.pending.value)
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    next_attempt_at: Mapped[datetime]
    #: Give up after this (NULL: `created_at` + `WEBHOOK_RETRY_WINDOW_SECONDS`; "send again"
    #: sets it to a new window).
    retry_until: Mapped[datetime | None]
    #: A replica's claim: until when, and its token (only the claimant records the outcome).
    lease_until: Mapped[datetime | None]
    lease_token: Mapped[uuid.UUID | None]
    last_attempt_at: Mapped[datetime | None]
    #: What the last failed attempt met (`HTTP 503`, `timeout`, `connection refused`).
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("event_type", "event_key"),
        CheckConstraint(f"event_type IN ({_EVENT_TYPES})", name="event_type"),
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        CheckConstraint("attempts >= 0", name="attempts"),
        # The delivery's claim: due pending events, oldest first.
        Index(
            "ix_webhook_events_due",
            "next_attempt_at",
            postgresql_where=text(f"status = '{DeliveryStatus.pending.value}'"),
        ),
        # The console's list (newest first) and retention.
        Index(None, "created_at"),
        Index(None, "user_id"),
    )
