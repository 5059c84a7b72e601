"""Races that bill: a deletion, an erasure or a lost create answer meeting a start.

Every Tavus conversation bills from its creation, so each scenario ends with the chaos
checker after one reconciler pass: no answer outside the documented ones (never a 500), no
conversation of ours running at Tavus without a live session (orphans), no session with two
conversations (duplicates). A slow create is the simulator's `timeout` fault with
`apply_first`: Tavus creates the conversation at once (its timers run, its replica joins) and
answers `delay_s` later — the window in which the user deletes, or is erased.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

from facetoface.db import Identity
from facetoface.sessions.data_rights_repository import DataRightsRepository
from tests.conftest import RunningService
from tests.support.chaos import converge
from tests.support.checker import History, Verdict, check
from tests.support.eventually import eventually
from tests.support.factories import create_user, session_rows
from tests.support.tavus_timing import no_backoff

#: How long Tavus takes to answer the slow create (it made the conversation at once).
SLOW_CREATE_S = 2.0


def slow_create(service: RunningService) -> None:
    service.sim.add_fault(
        endpoint="create", kind="timeout", delay_s=SLOW_CREATE_S, apply_first=True
    )


async def post_start(service: RunningService, user_id: uuid.UUID) -> httpx.Response:
    return await service.client.post("/v1/sessions", headers=service.auth(user_id))


def active_at_tavus(service: RunningService) -> list[dict[str, Any]]:
    return [c for c in service.sim.conversations()["conversations"] if c["status"] == "active"]


async def created_at_tavus(service: RunningService) -> int:
    """Wait until Tavus made the conversation of the start in flight (its answer is not
    sent yet): the create is inside its slow window now."""
    created: int = await eventually(
        lambda: service.sim.conversations()["created_total"],
        what="Tavus created the conversation of the start in flight",
    )
    return created


async def settled_verdict(service: RunningService, history: History) -> Verdict:
    """The checker's verdict after the callbacks in flight landed and one reconciler pass."""
    await converge(service, time.monotonic())
    return await check(service.db, service.sim, history, service.name_prefix)


def assert_clean(verdict: Verdict) -> None:
    assert verdict.violations == [], verdict.violations
    assert verdict.orphans == 0, verdict
    assert verdict.duplicates == 0, verdict
    assert verdict.unannounced == 0, verdict


async def test_delete_during_a_slow_create_ends_the_conversation_and_answers_410(
    service: RunningService,
) -> None:
    """`DELETE /v1/sessions/{id}` while the start waits for Tavus: the delete claims the
    start (as an end does) and deletes the rows; the start, finding them gone, ends and
    deletes its conversation at Tavus and answers `410 session_deleted`. The next start makes
    exactly one new conversation."""
    history = History()
    user_id = await create_user(service.db)
    slow_create(service)
    start = asyncio.create_task(post_start(service, user_id))
    await created_at_tavus(service)
    [session_id] = [
        s["id"]
        for s in (await service.client.get("/v1/sessions", headers=service.auth(user_id))).json()[
            "items"
        ]
    ]

    deleted = await service.client.delete(
        f"/v1/sessions/{session_id}", headers=service.auth(user_id)
    )
    started = await start
    history.record(deleted)
    history.record(started, start=True)

    assert deleted.status_code == 204, deleted.text
    assert started.status_code == 410, started.text
    assert started.json()["code"] == "session_deleted"
    assert active_at_tavus(service) == [], "the conversation made for the deleted session runs"
    assert service.sim.conversations()["conversations"] == [], "and it is deleted at Tavus"
    again = await post_start(service, user_id)
    history.record(again, start=True)
    assert again.status_code == 201, again.text
    assert service.sim.conversations()["created_total"] == 2
    assert_clean(await settled_verdict(service, history))


async def test_purge_racing_a_start_leaves_nothing_at_tavus(service: RunningService) -> None:
    """`purge-user` while the user's start waits for Tavus: the purge blocks new starts,
    claims the start, finds its conversation by name and deletes it at Tavus, then deletes
    the rows; the start answers a documented 410, never a 500; nothing of the user is left
    running or stored at Tavus."""
    history = History()
    user_id = await create_user(service.db)
    slow_create(service)
    start = asyncio.create_task(post_start(service, user_id))
    await created_at_tavus(service)

    report = await service.state.data_rights.purge_user(user_id)
    started = await start
    history.record(started, start=True)

    assert started.status_code in (201, 410), started.text
    if started.status_code == 410:
        assert started.json()["code"] in ("session_deleted", "erasure_in_progress")
    assert report.conversations == 1
    assert service.sim.conversations()["conversations"] == [], "all of the user gone at Tavus"
    assert active_at_tavus(service) == []
    after = await post_start(service, user_id)
    history.record(after, start=True)
    assert after.status_code == 404, after.text  # the profile is gone
    assert service.sim.conversations()["created_total"] == 1
    assert_clean(await settled_verdict(service, history))


async def test_a_user_being_erased_cannot_start(service: RunningService) -> None:
    """Once `purge-user` marked the user (its first step), a start is refused before
    anything is written or sent to Tavus."""
    user_id = await create_user(service.db)
    async with service.db.transaction(Identity(user_id), role="service") as session:
        await DataRightsRepository(session).mark_erasure(user_id)

    response = await post_start(service, user_id)

    assert response.status_code == 410, response.text
    assert response.json()["code"] == "erasure_in_progress"
    assert service.sim.conversations()["create_requests"] == 0
    listed = await service.client.get("/v1/sessions", headers=service.auth(user_id))
    assert listed.json()["items"] == []


async def test_the_reconciler_ends_a_named_conversation_whose_row_was_deleted(
    service: RunningService,
) -> None:
    """A conversation named with this installation's identity whose row was deleted here
    (while its start waited for Tavus, and that start's process died before it could end
    it): one reconciler pass ends it and deletes it at Tavus (its user asked for that). A
    named one whose row was never here is left."""
    service.sim.set_config(callback_drop_probability=1.0)
    user_id = await create_user(service.db)
    started = (await post_start(service, user_id)).json()
    # The rows go as a delete removes them; nobody tells Tavus.
    async with service.db.transaction(Identity(user_id), role="service") as session:
        repository = DataRightsRepository(session)
        await repository.lock_session(user_id, uuid.UUID(started["id"]))
        assert await repository.delete_session(user_id, uuid.UUID(started["id"]))
    async with httpx.AsyncClient() as tavus:
        never_here = await tavus.post(
            f"{service.sim.api_url}/conversations",
            headers={"x-api-key": service.sim.api_key},
            json={"replica_id": "r1", "conversation_name": f"{service.name_prefix}{uuid.uuid4()}"},
        )
    never_here.raise_for_status()

    report = await service.reconciler.run_once()

    assert report.actions["ended_orphan_without_row"] == 1
    assert report.actions["unknown_named_running"] == 1
    assert all(
        c["conversation_id"] != started["conversation_id"]
        for c in service.sim.conversations()["conversations"]
    ), "ended and deleted at Tavus"
    verdict = await check(
        service.db,
        service.sim,
        History(),
        service.name_prefix,
        ignore={never_here.json()["conversation_id"]},
    )
    assert verdict.orphans == 0


async def test_a_tavus_500_then_an_immediate_retry_starts_a_session(
    service: RunningService,
) -> None:
    """Tavus answered the create with a 500 and made nothing: the retry asks Tavus by name,
    marks the first start failed and starts — never a 409 for a session with no room."""
    history = History()
    user_id = await create_user(service.db)
    service.sim.add_fault(endpoint="create", kind="status", status=500)

    first = await post_start(service, user_id)
    again = await post_start(service, user_id)
    history.record(first, start=True)
    history.record(again, start=True)

    assert first.status_code == 503
    assert first.json()["code"] == "session_outcome_unknown"
    assert again.status_code == 201, again.text
    assert again.json()["conversation_url"]
    stored = await session_rows(service.db, first.json()["session_id"])
    assert stored["conversation"]["status"] == "failed"
    assert_clean(await settled_verdict(service, history))


async def test_a_lost_create_answer_is_adopted_by_the_next_start_and_read(
    service: RunningService,
) -> None:
    """Tavus made the conversation but its answer was lost: the session's read finds it by
    name and adopts it (with its room); the next start answers 409 with that room."""
    service.sim.set_config(callback_drop_probability=1.0)  # no callback tells us
    user_id = await create_user(service.db)
    service.sim.add_fault(endpoint="create", kind="drop_connection", apply_first=True)
    first = await post_start(service, user_id)
    session_id = first.json()["session_id"]
    [conversation] = service.sim.conversations()["conversations"]

    read = await service.client.get(f"/v1/sessions/{session_id}", headers=service.auth(user_id))
    again = await post_start(service, user_id)

    assert read.status_code == 200, read.text
    assert read.json()["conversation_url"] == conversation["conversation_url"]
    assert read.json()["status"] in ("started", "in_progress")
    assert again.status_code == 409, again.text
    assert again.json()["session"]["conversation_url"] == conversation["conversation_url"]
    assert service.sim.conversations()["create_requests"] == 1


async def test_tavus_down_while_deciding_answers_503_with_retry_after(
    service: RunningService,
) -> None:
    """While Tavus cannot be asked, the outcome cannot be decided: the start and the read
    answer `503 session_outcome_unknown` with `Retry-After`, never a 409 or a 500, and no
    second conversation is made."""
    history = History()
    user_id = await create_user(service.db)
    service.sim.add_fault(endpoint="create", kind="status", status=500)
    first = await post_start(service, user_id)
    history.record(first, start=True)
    session_id = first.json()["session_id"]
    service.sim.add_fault(endpoint="list", kind="status", status=503, count=1000)

    with no_backoff():
        again = await post_start(service, user_id)
        read = await service.client.get(f"/v1/sessions/{session_id}", headers=service.auth(user_id))
    history.record(again, start=True)
    history.record(read)

    for answer in (again, read):
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "session_outcome_unknown"
        assert answer.json()["session_id"] == session_id
        assert int(answer.headers["retry-after"]) >= 1
    assert history.violations == []
    assert service.sim.conversations()["create_requests"] == 1
