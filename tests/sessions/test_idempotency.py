"""`Idempotency-Key` on `POST /v1/sessions`: replay, in-flight 409, mismatch 422, per user."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.conftest import RunningService
from tests.support.clock import Clock
from tests.support.factories import create_persona, create_user
from tests.support.tavus_timing import no_backoff


async def post(
    service: RunningService, user_id: uuid.UUID, key: str | None, body: Any = None
) -> Any:
    headers = service.auth(user_id)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await service.client.post("/v1/sessions", json=body, headers=headers)


async def test_retry_after_completion_replays_the_response(service: RunningService) -> None:
    # No callbacks: a replay answers the session as it stands, and Tavus's replica_joined
    # arriving between the two requests would change it (started → in_progress).
    service.sim.set_config(callback_drop_probability=1.0)
    user_id = await create_user(service.db)
    key = str(uuid.uuid4())

    first = await post(service, user_id, key)
    second = await post(service, user_id, key)

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert service.sim.conversations()["create_requests"] == 1


async def test_same_key_with_another_body_is_422(service: RunningService) -> None:
    user_id = await create_user(service.db)
    persona = await create_persona(service.db, user_id)
    key = str(uuid.uuid4())
    assert (await post(service, user_id, key)).status_code == 201

    response = await post(service, user_id, key, {"mentor_id": str(persona)})

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_mismatch"
    assert service.sim.conversations()["create_requests"] == 1


async def test_concurrent_retries_create_one_conversation(service: RunningService) -> None:
    user_id = await create_user(service.db)
    service.sim.set_config(latency_ms=200)  # keep the first request in flight a while
    key = str(uuid.uuid4())

    responses = await asyncio.gather(*(post(service, user_id, key) for _ in range(10)))

    statuses = [r.status_code for r in responses]
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}
    for conflict in (r for r in responses if r.status_code == 409):
        assert conflict.json()["code"] in {"idempotency_key_in_flight", "session_already_active"}
        assert "retry-after" in conflict.headers or conflict.json()["code"] != (
            "idempotency_key_in_flight"
        )
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    assert service.sim.conversations()["create_requests"] == 1
    replay = await post(service, user_id, key)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"


async def test_another_key_while_live_is_409_with_the_session(service: RunningService) -> None:
    user_id = await create_user(service.db)
    first = await post(service, user_id, "key-one")
    second = await post(service, user_id, "key-two")
    assert second.status_code == 409
    assert second.json()["code"] == "session_already_active"
    assert second.json()["session"]["id"] == first.json()["id"]


async def test_keys_are_scoped_per_user(service: RunningService) -> None:
    alice = await create_user(service.db)
    bob = await create_user(service.db, full_name="Bob")
    a = await post(service, alice, "shared-key")
    b = await post(service, bob, "shared-key")
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
    assert "idempotent-replayed" not in b.headers


async def test_a_definite_failure_releases_the_key(service: RunningService) -> None:
    user_id = await create_user(service.db)
    service.sim.add_fault(endpoint="create", kind="concurrency_limit")
    key = str(uuid.uuid4())

    failed = await post(service, user_id, key)
    retried = await post(service, user_id, key)

    assert failed.status_code == 503
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert service.sim.conversations()["create_requests"] == 2


async def test_unknown_outcome_is_resolved_before_a_retry_is_answered(
    service: RunningService,
) -> None:
    user_id = await create_user(service.db)
    service.sim.set_config(callback_drop_probability=1.0)
    # Tavus creates the conversation, and the answer is lost (the connection dropped).
    service.sim.add_fault(endpoint="create", kind="drop_connection", apply_first=True)
    key = str(uuid.uuid4())

    unknown = await post(service, user_id, key)
    assert unknown.json()["code"] == "session_outcome_unknown"
    # While Tavus cannot be asked, a retry gets the same answer about the same session.
    service.sim.add_fault(endpoint="list", kind="status", status=503, count=1000)
    with no_backoff():
        pending = await post(service, user_id, key)
    assert pending.status_code == 503
    assert pending.json()["code"] == "session_outcome_unknown"
    assert pending.json()["session_id"] == unknown.json()["session_id"]
    assert int(pending.headers["retry-after"]) > 0

    # Tavus's replica_joined callback proves the conversation exists, but carries no join
    # URL: the session cannot be joined from it alone.
    [conversation] = service.sim.conversations()["conversations"]
    joined = await service.client.post(
        conversation["callback_url"].removeprefix(service.url),
        json={
            "conversation_id": conversation["conversation_id"],
            "event_type": "system.replica_joined",
            "properties": {},
        },
    )
    assert joined.json() == {"status": "applied"}
    service.sim.clear_faults()

    # The retry asks Tavus for the conversation by its name: the session, with its room.
    answer = await post(service, user_id, key)

    assert answer.status_code == 201, answer.text
    assert answer.headers["idempotent-replayed"] == "true"
    assert answer.json()["id"] == unknown.json()["session_id"]
    assert answer.json()["status"] == "in_progress"
    assert answer.json()["conversation_id"] == conversation["conversation_id"]
    assert answer.json()["conversation_url"] == conversation["conversation_url"]
    assert service.sim.conversations()["create_requests"] == 1


async def test_expired_keys_start_afresh(service: RunningService, clock: Clock) -> None:
    user_id = await create_user(service.db)
    first = await post(service, user_id, "old-key")
    await service.client.post(
        f"/v1/sessions/{first.json()['id']}/end", headers=service.auth(user_id)
    )
    clock.advance(service.settings.idempotency_key_ttl_seconds + 1)

    again = await post(service, user_id, "old-key")

    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\tkey"])
async def test_malformed_keys_are_400(service: RunningService, key: str) -> None:
    user_id = await create_user(service.db)
    response = await post(service, user_id, key)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"
    assert service.sim.conversations()["create_requests"] == 0
