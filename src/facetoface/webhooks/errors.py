"""The problems of the operators' webhook routes."""

from __future__ import annotations

from facetoface.errors import Conflict, NotFound


class WebhookEventNotFound(NotFound):
    code = "webhook_event_not_found"
    title = "Webhook event not found"


class WebhooksNotConfigured(Conflict):
    code = "webhooks_not_configured"
    title = "Webhooks are not configured"
