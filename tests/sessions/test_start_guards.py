"""What a start checks, and in which order (issue 10 §6): a completed start's
`Idempotency-Key` is answered from the key before the circuit breaker, the quota, the profile
or the mentor are looked at; starts that created nothing at Tavus do not count against the
quota; a full bulkhead (our own limit on Tavus calls in flight) is `503 busy`, not "the video
service is not answering"."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import update

from facetoface.models import UserPersona
from tests.conftest import RunningService
from tests.support.eventually import eventually
from tests.support.factories import create_persona, create_user, session_rows


async def start(
    service: RunningService, user_id: uuid.UUID, key: str | None = None, **body: Any
) -> Any:
    headers = service.auth(user_id) | ({"Idempotency-Key": key} if key else {})
    return await service.client.post("/v1/sessions", headers=headers, json=body or None)


async def end(service: RunningService, user_id: uuid.UUID, session_id: str) -> None:
    ended = await service.client.post(
        f"/v1/sessions/{session_id}/end", headers=service.auth(user_id)
    )
    assert ended.status_code == 200, ended.text


@pytest.mark.parametrize("service_overrides", [{"tavus_breaker_threshold": 1}])
async def test_a_completed_start_is_replayed_while_the_circuit_is_open(
    service: RunningService,
) -> None:
    user_id = await create_user(service.db)
    key = str(uuid.uuid4())
    first = await start(service, user_id, key)
    assert first.status_code == 201, first.text
    # Tavus fails once (nothing created): the breaker opens.
    service.sim.add_fault(kind="status", endpoint="create", status=503)
    assert (await start(service, await create_user(service.db))).status_code == 503
    refused = await start(service, await create_user(service.db))
    assert (refused.status_code, refused.json()["code"]) == (503, "tavus_unavailable")

    replay = await start(service, user_id, key)

    assert replay.status_code == 201, replay.text
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]
    assert service.sim.conversations()["create_requests"] == 2


@pytest.mark.parametrize("service_overrides", [{"session_start_limit": 1}])
async def test_a_completed_start_is_replayed_past_the_quota_and_a_mentor_gone(
    service: RunningService,
) -> None:
    user_id = await create_user(service.db)
    mentor = await create_persona(service.db, user_id, tavus_persona_id="pmentor00001")
    key = str(uuid.uuid4())
    first = await start(service, user_id, key, mentor_id=str(mentor))
    assert first.status_code == 201, first.text
    await end(service, user_id, first.json()["id"])
    limited = await start(service, user_id, str(uuid.uuid4()), mentor_id=str(mentor))
    assert (limited.status_code, limited.json()["code"]) == (429, "rate_limited")
    someone_else = await create_user(service.db)
    async with service.db.transaction() as session:  # the mentor is no longer the user's
        await session.execute(
            update(UserPersona).where(UserPersona.id == mentor).values(user_id=someone_else)
        )
    gone = await start(service, user_id, str(uuid.uuid4()), mentor_id=str(mentor))
    assert gone.json()["code"] in {"mentor_not_found", "rate_limited"}, gone.text

    replay = await start(service, user_id, key, mentor_id=str(mentor))

    assert replay.status_code == 201, replay.text
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]
    assert replay.json()["status"] == "completed", "answered with the session as it stands"
    assert service.sim.conversations()["create_requests"] == 1


@pytest.mark.parametrize("service_overrides", [{"session_start_limit": 2}])
async def test_starts_tavus_refused_do_not_count_against_the_quota(
    service: RunningService,
) -> None:
    user_id = await create_user(service.db)
    service.sim.add_fault(kind="concurrency_limit", endpoint="create", count=3)
    for _ in range(3):  # refused by Tavus: nothing was created, nothing bills
        refused = await start(service, user_id)
        assert (refused.status_code, refused.json()["code"]) == (503, "tavus_capacity_reached")

    for _ in range(2):
        started = await start(service, user_id)
        assert started.status_code == 201, started.text
        await end(service, user_id, started.json()["id"])
    limited = await start(service, user_id)

    assert (limited.status_code, limited.json()["code"]) == (429, "rate_limited")
    assert service.sim.conversations()["created_total"] == 2


@pytest.mark.parametrize(
    "service_overrides",
    [
        {
            "tavus_max_concurrent_requests": 1,
            "tavus_connect_timeout_seconds": 0.2,  # also the bulkhead's wait for a slot
            "tavus_retry_attempts": 1,
        }
    ],
)
async def test_a_full_bulkhead_is_503_busy_and_creates_nothing(service: RunningService) -> None:
    service.sim.set_config(latency_ms=800)  # Tavus is healthy, only slow
    slow, squeezed = await create_user(service.db), await create_user(service.db)
    first = asyncio.create_task(start(service, slow))
    await eventually(  # the first create holds the only slot
        lambda: service.state.tavus.bulkhead[0] == 1, what="the first create is in flight"
    )

    busy = await start(service, squeezed)

    assert busy.status_code == 503
    assert busy.json()["code"] == "busy"
    assert 0 < int(busy.headers["retry-after"]) <= 5
    assert (await first).status_code == 201
    assert service.sim.conversations()["create_requests"] == 1
    rows = await session_rows(
        service.db, busy.json().get("session_id") or await _only(service, squeezed)
    )
    assert rows["conversation"]["status"] == "failed", "nothing was sent: a definite failure"
    service.sim.set_config(latency_ms=0)
    assert (await start(service, squeezed)).status_code == 201, "free to start again at once"


async def _only(service: RunningService, user_id: uuid.UUID) -> str:
    from sqlalchemy import select

    from facetoface.models import DailySession

    async with service.db.transaction() as session:
        [daily_id] = (
            await session.execute(select(DailySession.id).where(DailySession.user_id == user_id))
        ).scalars()
    return str(daily_id)
