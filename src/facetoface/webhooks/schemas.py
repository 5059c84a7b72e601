"""What the operators' webhook routes answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from facetoface.outbox import DeliveryStatus, EventType
from facetoface.webhooks.repository import EventRow


class WebhookEventOut(BaseModel):
    """One event and where its delivery stands."""

    id: uuid.UUID = Field(description="The event's `webhook-id` (the same on every attempt).")
    event_type: EventType
    event_key: str = Field(description="What the event is about (a session id, a change id).")
    status: DeliveryStatus
    attempts: int
    last_error: str | None = Field(description="What the last failed attempt met.")
    occurred_at: datetime
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="When it is due (pending only).")
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    data: dict[str, Any] = Field(description="The body's `data`: ids, times, statuses.")

    @classmethod
    def from_row(cls, row: EventRow) -> WebhookEventOut:
        return cls(
            id=row.id,
            event_type=EventType(row.event_type),
            event_key=row.event_key,
            status=DeliveryStatus(row.status),
            attempts=row.attempts,
            last_error=row.last_error,
            occurred_at=row.occurred_at,
            created_at=row.created_at,
            next_attempt_at=(row.next_attempt_at if row.status == DeliveryStatus.pending else None),
            last_attempt_at=row.last_attempt_at,
            delivered_at=row.delivered_at,
            data=row.data,
        )


class WebhookEvents(BaseModel):
    """The newest events, and the outbox at a glance."""

    configured: bool = Field(description="APP_WEBHOOK_URL is set: this deployment delivers.")
    url_host: str | None = Field(description="The receiver's host (never the full URL).")
    counts: dict[DeliveryStatus, int] = Field(description="Events kept, by status.")
    oldest_due_seconds: float | None = Field(
        description="How long the oldest due event has waited (None: none is due)."
    )
    items: list[WebhookEventOut]
