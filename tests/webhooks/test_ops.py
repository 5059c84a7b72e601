"""The operators' view of the app's webhooks: the list (status, attempts, last error) and
"send again", through the API and in Chromium; users are refused."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.async_api import Page, expect

from facetoface.auth.dev_issuer import DEV_OPERATOR_ID
from facetoface.outbox import DeliveryStatus, EventType, enqueue
from tests.conftest import RunningService
from tests.support.factories import create_user
from tests.support.webhook_receiver import WebhookReceiver
from tests.webhooks.conftest import outbox


def operator(service: RunningService) -> dict[str, str]:
    return {"Authorization": f"Bearer {service.token(DEV_OPERATOR_ID, operator=True)}"}


async def one_failed_event(service: RunningService, receiver: WebhookReceiver) -> uuid.UUID:
    """A goal.changed event the app refused for good (410 Gone): failed after one attempt."""
    user = await create_user(service.db)
    async with service.db.transaction(role="service") as session:
        await enqueue(
            session,
            EventType.goal_changed,
            {"user_id": user, "goal_id": uuid.uuid4(), "progress_after": 60},
            key=f"goal-{user}",
            user_id=user,
        )
    receiver.fail(410)
    report = await service.state.webhooks.run_once()
    assert report.outcomes["failed"] == 1
    [event] = await outbox(service)
    return event.id


async def test_operators_see_failures_and_send_again(
    service: RunningService, receiver: WebhookReceiver
) -> None:
    event_id = await one_failed_event(service, receiver)
    listed = await service.client.get("/v1/ops/webhooks", headers=operator(service))
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["configured"] is True
    assert body["url_host"] == "127.0.0.1"
    assert body["counts"] == {"pending": 0, "delivered": 0, "failed": 1}
    [item] = body["items"]
    assert item["id"] == str(event_id)
    assert (item["status"], item["attempts"], item["last_error"]) == ("failed", 1, "HTTP 410")
    failed_only = await service.client.get(
        "/v1/ops/webhooks?status=delivered", headers=operator(service)
    )
    assert failed_only.json()["items"] == []

    receiver.accept()
    again = await service.client.post(
        f"/v1/ops/webhooks/{event_id}/send-again", headers=operator(service)
    )
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "pending"
    await service.state.webhooks.run_once()
    [event] = await outbox(service)
    assert (event.status, event.attempts) == (DeliveryStatus.delivered, 2)
    assert receiver.accepted == {str(event_id): 1}
    assert {d.webhook_id for d in receiver.deliveries} == {str(event_id)}


async def test_users_are_refused_and_unknown_events_are_404(
    service: RunningService, receiver: WebhookReceiver
) -> None:
    event_id = await one_failed_event(service, receiver)
    user = await create_user(service.db)
    for method, path in (
        ("GET", "/v1/ops/webhooks"),
        ("POST", f"/v1/ops/webhooks/{event_id}/send-again"),
    ):
        refused = await service.client.request(method, path, headers=service.auth(user))
        assert refused.status_code == 403
        assert refused.json()["code"] == "operator_required"
    [event] = await outbox(service)
    assert event.status == DeliveryStatus.failed  # the refused "send again" changed nothing
    missing = await service.client.post(
        f"/v1/ops/webhooks/{uuid.uuid4()}/send-again", headers=operator(service)
    )
    assert missing.status_code == 404
    assert missing.json()["code"] == "webhook_event_not_found"
    bad = await service.client.post("/v1/ops/webhooks/nope/send-again", headers=operator(service))
    assert bad.status_code == 422


async def test_metrics_count_the_outbox(service: RunningService, receiver: WebhookReceiver) -> None:
    await one_failed_event(service, receiver)
    body = (await service.client.get("/metrics")).text
    assert "facetoface_webhook_events_failed 1.0" in body
    assert "facetoface_webhook_outbox_pending 0.0" in body
    assert "facetoface_webhook_outbox_oldest_due_seconds 0.0" in body
    assert 'facetoface_webhook_deliveries_total{outcome="failed"}' in body


class TestWithoutAReceiver:
    @pytest.fixture
    def service_overrides(self) -> dict[str, Any]:
        return {}

    async def test_events_are_recorded_and_expire_unsent(self, service: RunningService) -> None:
        user = await create_user(service.db)
        started = await service.client.post("/v1/sessions", headers=service.auth(user))
        assert started.status_code == 201
        [event] = await outbox(service)
        listed = (await service.client.get("/v1/ops/webhooks", headers=operator(service))).json()
        assert listed["configured"] is False
        assert listed["counts"]["pending"] == 1
        again = await service.client.post(
            f"/v1/ops/webhooks/{event.id}/send-again", headers=operator(service)
        )
        assert again.status_code == 409
        assert again.json()["code"] == "webhooks_not_configured"
        report = await service.state.webhooks.run_once()
        assert report.outcomes["claimed"] == 0
        scrape = await service.client.get("/metrics")
        assert "facetoface_webhook_outbox_pending" not in scrape.text


@pytest.mark.browser
class TestInTheBrowser:
    @pytest.fixture
    def service_overrides(self, service_overrides: dict[str, Any]) -> dict[str, Any]:
        return {**service_overrides, "environment": "development"}

    async def test_the_operators_page_lists_and_sends_again(
        self, service: RunningService, receiver: WebhookReceiver, browser_page: Page
    ) -> None:
        event_id = await one_failed_event(service, receiver)
        page = browser_page
        await page.goto(f"{service.url}/console/sign-in")
        await page.get_by_role("button", name=re.compile("^Operator")).click()
        await page.wait_for_url(f"{service.url}/console/ops")
        row = page.locator(f'#webhooks-rows tr[data-event="{event_id}"]')
        await expect(row).to_contain_text("goal.changed")
        await expect(row).to_contain_text("failed")
        await expect(row).to_contain_text("HTTP 410")
        await expect(page.locator("#webhooks-target")).to_contain_text("delivering to 127.0.0.1")

        receiver.accept()
        await row.get_by_role("button", name=f"Send goal.changed {event_id} again").click()
        await expect(page.locator("#webhooks-result")).to_contain_text("is due again")
        await expect(row).to_contain_text("pending")
        await service.state.webhooks.run_once()
        await page.get_by_role("button", name="Refresh").click()
        await expect(row).to_contain_text("delivered")
        assert receiver.accepted == {str(event_id): 1}
