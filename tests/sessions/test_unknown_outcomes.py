"""A start whose outcome is unknown, decided on its user's next start or read — the decision
the reconciler makes too (conversations/unknown_starts.py): lookup by id when one is bound,
else by name; adopted with Tavus's events; failed only once the create cannot be running.

The simulator is Tavus, over HTTP; time moves with the `clock` fixture.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from facetoface.models import DailySession
from tests.conftest import RunningService
from tests.support.clock import Clock
from tests.support.eventually import eventually
from tests.support.factories import create_user, session_rows
from tests.support.sessions import given_session
from tests.support.tavus_timing import no_backoff


@pytest.fixture(autouse=True)
def _no_backoff() -> Iterator[None]:
    """A Tavus call that keeps failing fails after its retries at once (no backoff waits)."""
    with no_backoff():
        yield


async def post_start(service: RunningService, user_id: uuid.UUID) -> httpx.Response:
    return await service.client.post("/v1/sessions", headers=service.auth(user_id))


async def read(service: RunningService, user_id: uuid.UUID, session_id: Any) -> httpx.Response:
    return await service.client.get(f"/v1/sessions/{session_id}", headers=service.auth(user_id))


async def unknown_start(service: RunningService, *, at_tavus: bool) -> tuple[uuid.UUID, str]:
    """A user whose start's create answer was lost (the simulator drops the connection,
    after creating the conversation when `at_tavus`); no callbacks tell us anything."""
    service.sim.set_config(callback_drop_probability=1.0)
    service.sim.add_fault(endpoint="create", kind="drop_connection", apply_first=at_tavus)
    user_id = await create_user(service.db)
    response = await post_start(service, user_id)
    assert response.json()["code"] == "session_outcome_unknown", response.text
    return user_id, response.json()["session_id"]


def settle_seconds(service: RunningService) -> float:
    """How long after a start Tavus having none of its conversation means it never will."""
    tavus = service.state.tavus
    return tavus.longest_call_seconds + tavus.total_timeout_seconds


async def test_an_active_session_without_a_room_is_adopted_with_it(
    service: RunningService,
) -> None:
    """A callback proved the conversation exists but carried no room: a read asks Tavus and
    answers with the room, never a live session nobody can join."""
    service.sim.set_config(callback_drop_probability=1.0)
    given = await given_session(service, status="active", conversation_url=None)
    [conversation] = service.sim.conversations()["conversations"]

    response = await read(service, given.user_id, given.session_id)

    assert response.status_code == 200, response.text
    assert response.json()["conversation_url"] == conversation["conversation_url"]
    rows = await session_rows(service.db, given.session_id)
    assert rows["conversation"]["conversation_url"] == conversation["conversation_url"]
    assert rows["conversation"]["status"] == "active"


async def test_a_bound_tavus_id_is_looked_up_by_id(service: RunningService) -> None:
    """Tavus's id is known: the conversation is fetched by it, so a start decides even when
    listing the account's conversations (the lookup by name) fails."""
    service.sim.set_config(callback_drop_probability=1.0)
    given = await given_session(service, status="active", conversation_url=None)
    [conversation] = service.sim.conversations()["conversations"]
    service.sim.add_fault(endpoint="list", kind="status", status=503, count=100)

    again = await post_start(service, given.user_id)

    assert again.status_code == 409, again.text
    session = again.json()["session"]
    assert session["id"] == str(given.session_id)
    assert session["conversation_url"] == conversation["conversation_url"]


async def test_a_conversation_tavus_already_ended_is_adopted_then_closed(
    service: RunningService,
) -> None:
    """Tavus created the conversation and it ended there before we heard of it: adopted,
    then closed by Tavus's own events (its shutdown), so the user's start goes on."""
    user_id, session_id = await unknown_start(service, at_tavus=True)
    [conversation] = service.sim.conversations()["conversations"]
    await asyncio.to_thread(
        service.sim.shutdown, conversation["conversation_id"], "max_call_duration_reached"
    )

    again = await post_start(service, user_id)

    assert again.status_code == 201, again.text
    assert again.json()["id"] != session_id
    rows = await session_rows(service.db, session_id)
    assert rows["conversation"]["tavus_conversation_id"] == conversation["conversation_id"]
    assert rows["conversation"]["status"] == "ended"
    assert rows["conversation"]["shutdown_reason"] == "max_call_duration_reached"
    assert rows["daily"]["session_status"] == "completed"
    assert service.sim.conversations()["create_requests"] == 2


async def test_adoption_applies_what_tavus_already_knows(service: RunningService) -> None:
    """Adopting a conversation that is still live takes Tavus's events with it (the same
    inbox as callbacks): its replica already joined, so the session shows it."""
    user_id, session_id = await unknown_start(service, at_tavus=True)
    [conversation] = service.sim.conversations()["conversations"]
    conversation_id = conversation["conversation_id"]

    async def replica_joined() -> bool:
        known = await asyncio.to_thread(service.sim.conversation, conversation_id)
        return any(e["event_type"] == "system.replica_joined" for e in known["events"])

    await eventually(replica_joined, what="the replica joined at Tavus")

    response = await read(service, user_id, session_id)

    assert response.status_code == 200, response.text
    events = {entry["event_type"] for entry in response.json()["events"]}
    assert "system.replica_joined" in events, events


async def test_not_found_is_no_answer_while_the_create_may_still_run(
    service: RunningService, clock: Clock
) -> None:
    """Nothing at Tavus decides "never created" only once the create cannot still be running
    there — including a create sent by the client's last retry — and then the start goes on."""
    user_id, session_id = await unknown_start(service, at_tavus=False)
    total = service.settings.tavus_total_timeout_seconds

    clock.advance(2 * total + 1)  # past a create sent at once, not one sent by a retry
    early = await post_start(service, user_id)

    assert early.status_code == 503, early.text
    assert early.json()["code"] == "session_outcome_unknown"
    assert 0 < int(early.headers["retry-after"]) <= settle_seconds(service) - 2 * total
    clock.advance(settle_seconds(service))
    later = await post_start(service, user_id)

    assert later.status_code == 201, later.text
    rows = await session_rows(service.db, session_id)
    assert rows["conversation"]["status"] == "failed"
    assert rows["conversation"]["failure_code"] == "not_created_at_tavus"
    async with service.db.transaction() as session:
        ids = (
            await session.execute(select(DailySession.id).where(DailySession.user_id == user_id))
        ).scalars()
        assert len(list(ids)) == 2
