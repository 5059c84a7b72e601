"""The app's webhooks end to end: the outbox, delivery to a real HTTP receiver that fails and
recovers, two deliverers at once, backoff on the service's clock, and payloads without
personal data. Every signature is verified by the Standard Webhooks reference library
(tests/support/webhook_receiver.py), independently of the service's signing."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from facetoface.clock import utcnow
from facetoface.db import Database, Identity
from facetoface.outbox import (
    PAYLOAD_FIELDS,
    DeliveryStatus,
    EventType,
    enqueue,
)
from facetoface.webhooks.service import GAVE_UP, WebhookDelivery, backoff_seconds
from tests.conftest import RunningService
from tests.support.clock import Clock
from tests.support.eventually import eventually
from tests.support.factories import create_user
from tests.support.tcp_proxy import TcpProxy
from tests.support.webhook_receiver import WebhookReceiver
from tests.webhooks.conftest import events_of, outbox


async def start_session(service: RunningService, user_id: uuid.UUID) -> dict[str, Any]:
    response = await service.client.post("/v1/sessions", headers=service.auth(user_id))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def end_session(service: RunningService, user_id: uuid.UUID, session_id: str) -> None:
    response = await service.client.post(
        f"/v1/sessions/{session_id}/end", headers=service.auth(user_id)
    )
    assert response.status_code == 200, response.text


async def tavus_ends(service: RunningService, user_id: uuid.UUID, started: dict[str, Any]) -> None:
    """Tavus shuts the room; its shutdown callback (over HTTP) ends the session."""
    await asyncio.to_thread(
        service.sim.shutdown, started["conversation_id"], "participant_left_timeout"
    )

    async def ended() -> bool:
        response = await service.client.get(
            f"/v1/sessions/{started['id']}", headers=service.auth(user_id)
        )
        return response.json()["status"] in ("completed", "interrupted")

    await eventually(ended, what="the shutdown callback ended the session")


async def goal_events(service: RunningService, count: int) -> list[uuid.UUID]:
    """`count` goal.changed events recorded through `enqueue`; their ids."""
    user = await create_user(service.db)
    async with service.db.transaction(role="service") as session:
        for i in range(count):
            await enqueue(
                session,
                EventType.goal_changed,
                {"user_id": user, "goal_id": uuid.uuid4(), "progress_after": i, "undone": False},
                key=f"change-{user}-{i}",
                user_id=user,
            )
    return [e.id for e in await outbox(service)]


async def until_delivered(delivery: WebhookDelivery, service: RunningService) -> None:
    """Passes until nothing is pending (each pass is bounded; a few suffice)."""

    async def done() -> bool:
        await delivery.run_once()
        return all(e.status != DeliveryStatus.pending for e in await outbox(service))

    await eventually(done, what="every event delivered")


# --- the outbox: one event per start and per end, however it happens -------------------------
async def test_every_way_a_session_starts_or_ends_records_one_event_each(
    service: RunningService, clock: Clock
) -> None:
    """The start's answer, our end call, Tavus's shutdown callback, the reconciler closing an
    overdue session: each session gets one `session.started` and one `session.ended`, written
    in the transaction that changed it; repeating the end or the callback adds nothing."""
    by_api, by_callback, overdue = [await create_user(service.db) for _ in range(3)]
    first = await start_session(service, by_api)
    assert await events_of(service, uuid.UUID(first["id"])) == ["session.started"]
    await end_session(service, by_api, first["id"])
    await end_session(service, by_api, first["id"])

    second = await start_session(service, by_callback)
    await tavus_ends(service, by_callback, second)
    await asyncio.to_thread(service.sim.drain)

    third = await start_session(service, overdue)
    clock.advance(service.settings.session_max_call_duration_seconds + 3600)
    report = await service.reconciler.run_once()
    assert report.actions["closed_overdue"] == 1, report

    for started in (first, second, third):
        assert await events_of(service, uuid.UUID(started["id"])) == [
            "session.ended",
            "session.started",
        ], started
    assert len(await outbox(service)) == 6
    ended = {e.event_key: e.data for e in await outbox(service) if e.event_type == "session.ended"}
    assert ended[second["id"]]["shutdown_reason"] == "participant_left_timeout"
    assert ended[first["id"]]["status"] == "completed"
    assert ended[first["id"]]["conversation_id"] == first["conversation_id"]


async def test_a_start_tavus_refused_emits_nothing(service: RunningService) -> None:
    user = await create_user(service.db)
    service.sim.add_fault("status", endpoint="create", status=400)
    response = await service.client.post("/v1/sessions", headers=service.auth(user))
    assert response.status_code >= 400
    assert await outbox(service) == []


async def test_enqueue_is_idempotent_and_works_in_a_users_own_transaction(
    service: RunningService,
) -> None:
    """The same (type, key) twice is one event; a transaction acting as the user (who may not
    touch the outbox) records its event through the service's role and goes on as the user."""
    user = await create_user(service.db)
    me = Identity(user_id=user)
    data = {"user_id": user, "report_id": uuid.uuid4(), "session_id": uuid.uuid4()}
    async with service.db.transaction(me) as session:
        assert await enqueue(session, EventType.session_report_ready, data, key="r1", user_id=user)
        assert not await enqueue(
            session, EventType.session_report_ready, data, key="r1", user_id=user
        )
        role = await session.execute(text("SELECT current_user"))
        assert role.scalar_one() == "authenticated"
    [event] = await outbox(service)
    assert (event.event_type, event.event_key, event.user_id) == (
        "session.report_ready",
        "r1",
        user,
    )
    with pytest.raises(ValueError, match="carries no"):
        async with service.db.transaction(role="service") as session:
            await enqueue(
                session, EventType.goal_changed, {"goal_text": "Run 5 km"}, key="x", user_id=user
            )


# --- delivery -------------------------------------------------------------------------------
async def test_a_receiver_that_fails_then_recovers_gets_every_event_once(
    service: RunningService,
    receiver: WebhookReceiver,
    receiver_proxy: TcpProxy,
    clock: Clock,
) -> None:
    """500s, then refused connections, then recovery: every event arrives, is accepted exactly
    once, with one `webhook-id` and the same body on every attempt, each signature verified."""
    receiver.now = utcnow  # the test moves the service's clock; the receiver's agrees
    users = [await create_user(service.db) for _ in range(3)]
    started = [await start_session(service, user) for user in users]
    await end_session(service, users[0], started[0]["id"])
    await tavus_ends(service, users[1], started[1])
    ids = {str(e.id) for e in await outbox(service)}
    assert len(ids) == 5  # three started, two ended
    delivery = service.state.webhooks

    receiver.fail(500)
    report = await delivery.run_once()
    assert report.outcomes["retrying"] == 5
    receiver_proxy.refuse()
    clock.advance(service.settings.webhook_retry_max_seconds)
    report = await delivery.run_once()
    assert report.outcomes["retrying"] == 5
    errors = {e.last_error for e in await outbox(service)}
    assert errors == {"connection refused or unreachable"}

    receiver_proxy.restore()
    receiver.accept()
    clock.advance(service.settings.webhook_retry_max_seconds)
    await until_delivered(delivery, service)

    events = await outbox(service)
    assert {e.status for e in events} == {DeliveryStatus.delivered}
    assert all(e.attempts == 3 and e.last_error is None for e in events)
    assert receiver.accepted == dict.fromkeys(ids, 1)
    deliveries = receiver.deliveries
    assert all(d.verified for d in deliveries)
    assert {d.webhook_id for d in deliveries} == ids
    for webhook_id in ids:
        bodies = {d.body for d in deliveries if d.webhook_id == webhook_id}
        assert len(bodies) == 1, "one body per event, whatever the attempt"
    by_id = {str(e.id): e for e in events}
    for d in deliveries:
        payload = d.payload
        event = by_id[d.webhook_id]
        assert payload["type"] == event.event_type
        assert payload["data"] == event.data


async def test_two_deliverers_at_once_send_each_event_once(
    service: RunningService, receiver: WebhookReceiver
) -> None:
    """Two replicas (each its own connection pool) deliver the same outbox concurrently, in
    small batches: the leases keep them apart, no event is sent twice."""
    ids = await goal_events(service, 40)
    settings = service.settings.model_copy(update={"webhook_batch_size": 3})
    one = WebhookDelivery(settings, service.state.db)
    other_db = Database(settings)
    two = WebhookDelivery(settings, other_db)
    try:
        while any(e.status == DeliveryStatus.pending for e in await outbox(service)):
            first, second = await asyncio.gather(one.run_once(), two.run_once())
            assert first.outcomes["delivered"] + second.outcomes["delivered"] > 0
    finally:
        await one.aclose()
        await two.aclose()
        await other_db.dispose()
    assert receiver.accepted == {str(i): 1 for i in ids}
    assert len(receiver.deliveries) == 40


async def test_backoff_follows_the_services_clock_until_the_window_closes(
    service: RunningService, receiver: WebhookReceiver, clock: Clock
) -> None:
    """A receiver that keeps failing: attempts come no sooner than the jittered backoff, each
    signed at the (moved) clock's time; after 24 h the event is failed; "send again" delivers
    it with the same id."""
    receiver.now = utcnow  # the receiver's clock agrees with the service's
    [event_id] = await goal_events(service, 1)
    delivery = service.state.webhooks
    s = service.settings
    receiver.fail(503, retry_after="90")
    waited = 0.0
    attempts = 0
    while True:
        report = await delivery.run_once()
        [event] = await outbox(service)
        if report.outcomes["claimed"]:
            attempts += 1
            assert event.attempts == attempts
        if event.status == DeliveryStatus.failed:
            break
        assert event.status == DeliveryStatus.pending
        delay = (event.next_attempt_at - utcnow()).total_seconds()
        ceiling = min(
            s.webhook_retry_max_seconds, s.webhook_retry_first_seconds * 2 ** (attempts - 1)
        )
        assert max(ceiling / 2, 90) - 1 <= delay <= max(ceiling, 90) + 1
        # Not due yet: a pass now sends nothing.
        assert (await delivery.run_once()).outcomes["claimed"] == 0
        clock.advance(delay + 1)
        waited += delay + 1
    assert event.last_error == "HTTP 503"
    assert 20 * 3600 < waited <= s.webhook_retry_window_seconds + s.webhook_retry_max_seconds
    assert attempts == len(receiver.deliveries)
    assert attempts >= 25
    assert all(d.verified for d in receiver.deliveries)
    stamps = [d.timestamp for d in receiver.deliveries]
    assert stamps == sorted(stamps)
    assert stamps[-1] - stamps[0] > 20 * 3600

    receiver.accept()
    again = await delivery.send_again(event_id)
    assert again is not None
    assert again.status == DeliveryStatus.pending
    await delivery.run_once()
    [event] = await outbox(service)
    assert event.status == DeliveryStatus.delivered
    assert receiver.accepted == {str(event_id): 1}


async def test_an_event_nobody_delivers_expires(service: RunningService, clock: Clock) -> None:
    """The window passes with the receiver never reached (no pass ran): the next pass fails
    the event instead of sending it a day late."""
    await goal_events(service, 1)
    clock.advance(service.settings.webhook_retry_window_seconds + 1)
    report = await service.state.webhooks.run_once()
    assert report.outcomes["expired"] == 1
    assert report.outcomes["claimed"] == 0
    [event] = await outbox(service)
    assert (event.status, event.last_error) == (DeliveryStatus.failed, GAVE_UP)


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    import random

    rng = random.Random(7)
    for attempts in range(1, 30):
        ceiling = min(3600.0, 5.0 * 2 ** (attempts - 1))
        delays = [backoff_seconds(attempts, first=5.0, cap=3600.0, rng=rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


# --- what a payload carries -----------------------------------------------------------------
async def test_payloads_carry_no_personal_data(
    service: RunningService, receiver: WebhookReceiver
) -> None:
    """A user with a distinctive name, goals and words said in the room: what the app receives
    is ids, times and statuses — none of it."""
    user = await create_user(service.db, full_name="Zebulon Quixotic-Marchetti")
    started = await start_session(service, user)
    room = started["conversation_id"]
    await asyncio.to_thread(service.sim.join, room, "Zebulon")
    await asyncio.to_thread(service.sim.say, room, "my secret is purple elephants at midnight")
    await tavus_ends(service, user, started)
    await asyncio.to_thread(service.sim.drain)
    await until_delivered(service.state.webhooks, service)

    bodies = [d.body.decode() for d in receiver.deliveries]
    assert len(bodies) == 2
    for body in bodies:
        for secret in ("Zebulon", "Quixotic", "purple elephants", "Meditate", "manager"):
            assert secret not in body
        payload = json.loads(body)
        assert set(payload) == {"type", "timestamp", "data"}
        assert set(payload["data"]) <= PAYLOAD_FIELDS[EventType(payload["type"])]
        assert payload["data"]["user_id"] == str(user)
