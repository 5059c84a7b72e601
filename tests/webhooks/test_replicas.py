"""Two `serve` processes deliver one outbox at once, each with its own delivery loop: every
event reaches the app once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from facetoface.outbox import DeliveryStatus
from tests.conftest import RunningService
from tests.support.eventually import eventually
from tests.support.replicas import serve_replicas
from tests.support.webhook_receiver import WebhookReceiver
from tests.webhooks.conftest import outbox
from tests.webhooks.test_delivery import goal_events

pytestmark = pytest.mark.e2e


async def test_two_serve_replicas_deliver_each_event_once(
    service: RunningService,
    receiver: WebhookReceiver,
    service_overrides: dict[str, Any],
    tmp_path: Path,
) -> None:
    ids = await goal_events(service, 60)
    async with serve_replicas(
        2,
        database_url=service.settings.database_url,
        sim=service.sim,
        log_dir=tmp_path,
        app_webhook_url=service_overrides["app_webhook_url"],
        app_webhook_secret=service_overrides["app_webhook_secret"],
        # Small batches, passes back to back: the two loops contend for the same rows.
        webhook_interval_seconds=0.05,
        webhook_batch_size=3,
        webhook_concurrency=2,
    ):

        async def all_delivered() -> bool:
            return all(e.status == DeliveryStatus.delivered for e in await outbox(service))

        await eventually(all_delivered, within=60, what="both replicas delivered everything")
    assert receiver.accepted == {str(i): 1 for i in ids}
    assert len(receiver.deliveries) == 60
    assert all(d.verified for d in receiver.deliveries)
