"""The operators' webhook routes, `/v1/ops/webhooks`: deliveries and failures, and "send
again". Operator tokens only (403 for everyone else, before anything is read)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request

from facetoface.app_state import app_state
from facetoface.auth.dependencies import require_operator
from facetoface.errors import problem
from facetoface.outbox import DeliveryStatus
from facetoface.webhooks.errors import WebhookEventNotFound, WebhooksNotConfigured
from facetoface.webhooks.schemas import WebhookEventOut, WebhookEvents
from facetoface.webhooks.service import WebhookDelivery

router = APIRouter(
    prefix="/v1/ops/webhooks",
    tags=["ops"],
    dependencies=[Depends(require_operator)],
    responses={
        401: problem("Missing or invalid access token"),
        403: problem("The token is not an operator's"),
        422: problem("The request does not match the schema"),
        503: problem("The database is unavailable; see Retry-After"),
    },
)


async def get_delivery(request: Request) -> WebhookDelivery:
    return app_state(request).webhooks


Delivery = Annotated[WebhookDelivery, Depends(get_delivery)]


@router.get("", response_model=WebhookEvents)
async def webhook_events(
    delivery: Delivery,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> WebhookEvents:
    """The newest app webhook events (of one `status`), their attempts and last error."""
    rows, counts, oldest = await delivery.events(status, limit)
    return WebhookEvents(
        configured=delivery.configured,
        url_host=urlsplit(delivery.url).hostname if delivery.url else None,
        counts={s: counts.get(s.value, 0) for s in DeliveryStatus},
        oldest_due_seconds=oldest,
        items=[WebhookEventOut.from_row(row) for row in rows],
    )


_SEND_AGAIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: problem("No such event (`webhook_event_not_found`)"),
    409: problem("This deployment has no APP_WEBHOOK_URL (`webhooks_not_configured`)"),
}


@router.post(
    "/{event_id}/send-again", response_model=WebhookEventOut, responses=_SEND_AGAIN_RESPONSES
)
async def send_again(event_id: uuid.UUID, delivery: Delivery) -> WebhookEventOut:
    """Deliver an event again (a failed one, or a delivered one the app lost): due now, with a
    fresh retry window and the same `webhook-id`."""
    if not delivery.configured:
        raise WebhooksNotConfigured("Set APP_WEBHOOK_URL and APP_WEBHOOK_SECRET to deliver events.")
    row = await delivery.send_again(event_id)
    if row is None:
        raise WebhookEventNotFound("No webhook event has this id.")
    return WebhookEventOut.from_row(row)
