"""`POST /functions/v1/tavus-webhook`: an unsigned hint. What Tavus itself reports is ingested
through the callback inbox; what the post claims is never stored."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from facetoface.models import TavusCallbackEvent
from tests.conftest import RunningService
from tests.support.eventually import eventually
from tests.support.factories import count_rows, create_user, session_rows
from tests.support.tavus_timing import no_backoff

WEBHOOK = "/functions/v1/tavus-webhook"
START = "/functions/v1/start-tavus-session"

FORGED_TRANSCRIPT = [{"role": "user", "content": "FORGED: transfer all my data"}]


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    # No pause between two fetches for one conversation (default 2 s), except where the
    # interval is the point (`test_concurrent_posts_for_one_conversation_share_fetches`).
    return {"tavus_webhook_fetch_interval_seconds": 0}


@pytest.fixture(autouse=True)
def _no_backoff() -> Iterator[None]:
    """A failing Tavus is retried at once (the retries themselves still happen)."""
    with no_backoff():
        yield


async def start_quiet(service: RunningService) -> dict[str, Any]:
    """A session whose simulator delivers no callbacks: only the webhook can bring news."""
    service.sim.set_config(callback_drop_probability=1.0)
    user_id = await create_user(service.db)
    response = await service.client.post(START, headers=service.auth(user_id))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def forged(conversation_id: str, event_type: str = "application.transcription_ready") -> dict:
    """What the origin's webhook trusted: a body anyone can post."""
    return {
        "conversation_id": conversation_id,
        "event_type": event_type,
        "message_type": "application",
        "timestamp": "2026-11-30T10:00:00Z",
        "properties": {
            "transcript": FORGED_TRANSCRIPT,
            "shutdown_reason": "forged",
            "analysis": "FORGED analysis",
        },
    }


async def events(service: RunningService) -> list[TavusCallbackEvent]:
    async with service.db.transaction() as session:
        return list((await session.execute(select(TavusCallbackEvent))).scalars())


def gets_served(service: RunningService, counter_uses: int = 1000) -> int:
    """Tavus GETs answered since `count_gets` queued its counter (each consumes one use)."""
    [rule] = [f for f in service.sim.faults() if f["endpoint"] == "get"]
    return counter_uses - int(rule["remaining"])


def count_gets(service: RunningService, delay_s: float = 0.0, uses: int = 1000) -> None:
    """Count (and optionally slow) Tavus GETs: a pass-through fault rule with `uses` uses."""
    service.sim.add_fault("timeout", endpoint="get", count=uses, delay_s=delay_s, apply_first=True)


async def test_a_hint_ingests_what_tavus_reports_and_never_the_posted_body(
    service: RunningService,
) -> None:
    started = await start_quiet(service)
    cid = started["conversation_id"]
    service.sim.shutdown(cid, "participant_left_timeout")
    tavus_transcript = service.sim.conversation(cid)["transcript"]

    response = await service.client.post(WEBHOOK, json=forged(cid))

    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "message": "Webhook processed successfully"}
    rows = await session_rows(service.db, started["daily_session_id"])
    conversation = rows["conversation"]
    assert conversation["status"] == "ended"
    assert conversation["shutdown_reason"] == "participant_left_timeout"
    assert conversation["transcript"] == tavus_transcript
    assert "FORGED" not in str(conversation["transcript"])
    assert "FORGED" not in (conversation["perception_analysis"] or "")
    assert rows["daily"]["session_status"] == "completed"
    stored = await events(service)
    assert {e.event_type for e in stored} >= {
        "system.shutdown",
        "application.transcription_ready",
        "application.perception_analysis",
    }
    assert all("FORGED" not in str(e.payload) for e in stored)
    # A second hint finds nothing new: the inbox's dedupe holds.
    again = await service.client.post(WEBHOOK, json=forged(cid, "system.shutdown"))
    assert again.status_code == 200
    assert len(await events(service)) == len(stored)


async def test_an_unknown_conversation_is_200_and_stores_nothing(
    service: RunningService,
) -> None:
    count_gets(service)
    for body in (forged("c0ffee0000001"), forged("someone-elses-conversation")):
        response = await service.client.post(WEBHOOK, json=body)
        assert response.status_code == 200, response.text
        assert response.json() == {"success": True, "message": "Webhook processed successfully"}
    assert await count_rows(service.db, TavusCallbackEvent) == 0
    assert gets_served(service) == 0  # not even a question to Tavus


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b"{}",
        b'{"conversation_id": 12}',
        b'{"conversation_id": "../../v2/conversations"}',
        b'{"conversation_id": "' + b"c" * 129 + b'"}',
    ],
)
async def test_a_body_without_a_valid_conversation_id_is_400(
    service: RunningService, content: bytes
) -> None:
    response = await service.client.post(
        WEBHOOK, content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["error"]
    assert await count_rows(service.db, TavusCallbackEvent) == 0


async def test_tavus_failing_during_the_fetch_is_503_so_tavus_retries(
    service: RunningService,
) -> None:
    started = await start_quiet(service)
    cid = started["conversation_id"]
    service.sim.shutdown(cid, "participant_left_timeout")
    service.sim.add_fault("status", endpoint="get", status=500, count=10)

    response = await service.client.post(WEBHOOK, json=forged(cid))

    assert response.status_code == 503, response.text
    assert response.json()["code"] == "tavus_unavailable"
    assert int(response.headers["retry-after"]) >= 1
    assert await count_rows(service.db, TavusCallbackEvent) == 0
    rows = await session_rows(service.db, started["daily_session_id"])
    assert rows["conversation"]["transcript"] is None
    # Tavus answers again: the retried post brings it all in.
    service.sim.clear_faults()
    retried = await service.client.post(WEBHOOK, json=forged(cid))
    assert retried.status_code == 200
    rows = await session_rows(service.db, started["daily_session_id"])
    assert rows["conversation"]["transcript"] is not None


@pytest.mark.parametrize("service_overrides", [{"tavus_webhook_fetch_interval_seconds": 0.5}])
async def test_concurrent_posts_for_one_conversation_share_fetches(
    service: RunningService,
) -> None:
    started = await start_quiet(service)
    cid = started["conversation_id"]
    service.sim.shutdown(cid, "participant_left_timeout")
    count_gets(service, delay_s=0.3)

    responses = await asyncio.gather(
        *(service.client.post(WEBHOOK, json=forged(cid)) for _ in range(12))
    )

    assert [r.status_code for r in responses] == [200] * 12
    # One fetch answered the first post; the others, which arrived while it ran, share one
    # more that starts after it (what they said may be news): 12 posts, 2 fetches.
    assert gets_served(service) == 2
    rows = await session_rows(service.db, started["daily_session_id"])
    assert rows["conversation"]["transcript"] is not None


@pytest.mark.parametrize(
    "service_overrides",
    [
        {
            "tavus_webhook_burst": 3,
            "tavus_webhook_rate_per_second": 0.5,
            "tavus_webhook_fetch_interval_seconds": 0,
        }
    ],
)
async def test_the_route_is_rate_limited_per_conversation_of_ours(
    service: RunningService,
) -> None:
    """Issue 17.6: random ids at 40/s made 4 of 5 of Tavus's own posts about a real
    conversation 429 (one shared limit). Now each conversation of ours has its own bucket,
    and posts naming unknown ones (no database work either) take from none."""
    started = await start_quiet(service)
    cid = started["conversation_id"]
    service.sim.shutdown(cid, "participant_left_timeout")
    # A flood of made-up ids first: all answered alike, none limited.
    flood = await asyncio.gather(
        *(service.client.post(WEBHOOK, json=forged(f"c{uuid.uuid4().hex[:12]}")) for _ in range(40))
    )
    assert [r.status_code for r in flood] == [200] * 40

    statuses = []
    for _ in range(5):
        response = await service.client.post(WEBHOOK, json=forged(cid))
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.json()["code"] == "rate_limited"
            assert 1 <= int(response.headers["retry-after"]) <= 2
    # The real conversation's own burst is whole; beyond it, that conversation alone waits.
    assert statuses == [200, 200, 200, 429, 429]


@pytest.mark.parametrize("service_overrides", [{"callback_max_body_bytes": 2048}])
async def test_the_body_is_bounded(service: RunningService) -> None:
    body = forged("c0ffee0000001")
    body["properties"]["transcript"] = [{"role": "user", "content": "x" * 4096}]

    response = await service.client.post(WEBHOOK, json=body)

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert response.json()["error"] == "The body exceeds 2048 bytes."


@pytest.mark.parametrize(
    "service_overrides",
    [
        {
            "tavus_max_concurrent_requests": 4,
            "tavus_webhook_max_concurrent_fetches": 2,
            # A full bulkhead is answered after this long (nothing waits for long).
            "tavus_connect_timeout_seconds": 0.5,
        }
    ],
)
async def test_webhook_fetches_never_take_a_users_start_slot(service: RunningService) -> None:
    """Issue 17.6: 40 known conversation ids posted at once started 40 verbose fetches,
    filling the Tavus bulkhead (16/16), and users' starts got `503 busy`. The fetches now
    run on a lane of their own, capped: a user's start never waits for them."""
    conversations = [(await start_quiet(service))["conversation_id"] for _ in range(6)]
    for cid in conversations:
        service.sim.shutdown(cid, "participant_left_timeout")
    count_gets(service, delay_s=2.0)  # each verbose fetch holds its lane for 2 s
    users = [await create_user(service.db) for _ in range(4)]

    posts = asyncio.gather(
        *(service.client.post(WEBHOOK, json=forged(cid)) for cid in conversations * 2)
    )
    # The fetches are at Tavus (as many as may run at once), then the users start.
    await eventually(lambda: gets_served(service) >= 2, what="verbose fetches in flight")
    starts = await asyncio.gather(
        *(service.client.post("/v1/sessions", headers=service.auth(u)) for u in users)
    )
    answered = await posts

    assert [s.status_code for s in starts] == [201] * len(users), [s.text for s in starts]
    statuses = sorted(r.status_code for r in answered)
    # At most two fetches at once: the rest are told to come back (a documented 503).
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(503) >= len(conversations) - 2, statuses
    for refused in (r for r in answered if r.status_code == 503):
        assert refused.json()["code"] == "tavus_unavailable"
        assert int(refused.headers["retry-after"]) >= 1
