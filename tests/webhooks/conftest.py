"""The app's webhook receiver (a real HTTP server, behind a TCP proxy that can refuse
connections) and the service configured to deliver to it."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from facetoface.models import WebhookEvent
from tests.conftest import RunningService
from tests.support.tcp_proxy import TcpProxy
from tests.support.webhook_receiver import WebhookReceiver

#: A Standard Webhooks secret (32 bytes), as an operator would generate one.
SECRET = "whsec_" + base64.b64encode(bytes(range(7, 39))).decode()


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver(SECRET).start()
    yield running
    running.close()


@pytest.fixture(scope="module")
def receiver_proxy(receiver: WebhookReceiver) -> Iterator[TcpProxy]:
    with TcpProxy(receiver.port).start() as proxy:
        yield proxy


@pytest.fixture
def service_overrides(receiver: WebhookReceiver, receiver_proxy: TcpProxy) -> dict[str, Any]:
    receiver.reset()
    receiver.now = None
    receiver_proxy.restore()
    return {
        "app_webhook_url": f"http://127.0.0.1:{receiver_proxy.port}/hooks/facetoface",
        "app_webhook_secret": SECRET,
        "webhook_retry_first_seconds": 2.0,
        "webhook_retry_max_seconds": 600.0,
        "webhook_timeout_seconds": 5.0,
    }


async def outbox(service: RunningService) -> list[WebhookEvent]:
    """Every event in the outbox, oldest first (read as the tables' owner)."""
    async with service.db.transaction() as session:
        rows = await session.execute(
            select(WebhookEvent).order_by(WebhookEvent.created_at, WebhookEvent.event_type)
        )
        return list(rows.scalars())


async def events_of(service: RunningService, session_id: uuid.UUID) -> list[str]:
    """The event types recorded for one session."""
    return sorted(e.event_type for e in await outbox(service) if e.event_key == str(session_id))
