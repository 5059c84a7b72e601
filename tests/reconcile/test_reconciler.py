"""The reconciler against the simulator over HTTP.

A create whose answer was lost is the simulator dropping the connection after it created the
conversation (`drop_connection`, `apply_first`): the same unknown outcome as a timeout, at once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from facetoface.models import DailySession
from facetoface.reconcile.service import Reconciler
from tests.conftest import RunningService
from tests.support.clock import Clock
from tests.support.eventually import eventually
from tests.support.factories import create_user, session_rows
from tests.support.sessions import EAGER_RECONCILER, given_session
from tests.support.tavus_timing import no_backoff


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return dict(EAGER_RECONCILER)


@pytest.fixture(autouse=True)
def _no_backoff() -> Iterator[None]:
    """A Tavus call that keeps failing fails after its retries at once (no backoff waits)."""
    with no_backoff():
        yield


async def start(service: RunningService, user_id: uuid.UUID) -> httpx.Response:
    return await service.client.post("/v1/sessions", headers=service.auth(user_id))


async def only_session(service: RunningService, user_id: uuid.UUID) -> dict[str, Any]:
    async with service.db.transaction() as session:
        [daily_id] = (
            await session.execute(select(DailySession.id).where(DailySession.user_id == user_id))
        ).scalars()
    return await session_rows(service.db, daily_id)


def sim_create(service: RunningService, name: str) -> dict[str, Any]:
    """A conversation created at the simulator behind the service's back."""
    response = httpx.post(
        f"{service.sim.api_url}/conversations",
        headers={"x-api-key": service.sim.api_key},
        json={"replica_id": "r1", "conversation_name": name},
    )
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def sim_status(service: RunningService, conversation_id: str) -> str:
    status: str = service.sim.conversation(conversation_id)["status"]
    return status


async def test_adopts_a_conversation_whose_create_answer_was_lost(
    service: RunningService,
) -> None:
    service.sim.set_config(callback_drop_probability=1.0)
    service.sim.add_fault(endpoint="create", kind="drop_connection", apply_first=True)
    user_id = await create_user(service.db)
    assert (await start(service, user_id)).json()["code"] == "session_outcome_unknown"

    report = await service.reconciler.run_once()

    assert report.actions["adopted"] == 1
    [created] = service.sim.conversations()["conversations"]
    rows = await only_session(service, user_id)
    assert rows["conversation"]["status"] == "active"
    assert rows["conversation"]["tavus_conversation_id"] == created["conversation_id"]
    assert rows["conversation"]["conversation_url"] == created["conversation_url"]
    assert sim_status(service, created["conversation_id"]) == "active"
    # A second pass changes nothing.
    again = await service.reconciler.run_once()
    assert again.actions["adopted"] == 0


async def test_fills_the_join_url_of_a_session_a_callback_adopted(
    service: RunningService,
) -> None:
    """The create's answer was lost, but replica_joined proved the conversation exists: the
    session is active without a URL until a pass asks Tavus for it."""
    service.sim.add_fault(endpoint="create", kind="drop_connection", apply_first=True)
    user_id = await create_user(service.db)
    assert (await start(service, user_id)).json()["code"] == "session_outcome_unknown"

    async def adopted() -> dict[str, Any] | None:
        rows = await only_session(service, user_id)
        return rows if rows["conversation"]["status"] == "active" else None

    rows = await eventually(adopted, what="replica_joined made the session active")
    assert rows["conversation"]["conversation_url"] is None

    report = await service.reconciler.run_once()

    assert report.actions["join_url_recovered"] == 1
    [created] = service.sim.conversations()["conversations"]
    rows = await only_session(service, user_id)
    assert rows["conversation"]["conversation_url"] == created["conversation_url"]


def settle_seconds(service: RunningService) -> float:
    """How long after a start Tavus having none of its conversation means it never will."""
    tavus = service.reconciler.tavus
    return tavus.longest_call_seconds + tavus.total_timeout_seconds


async def test_marks_failed_what_tavus_never_created(service: RunningService, clock: Clock) -> None:
    """Not found is no answer while the create may still be running at Tavus (the same rule
    as the user's next start: conversations/unknown_starts.py); once it cannot, it is."""
    service.sim.set_config(callback_drop_probability=1.0)
    service.sim.add_fault(endpoint="create", kind="drop_connection", apply_first=False)
    user_id = await create_user(service.db)
    assert (await start(service, user_id)).json()["code"] == "session_outcome_unknown"

    early = await service.reconciler.run_once()
    assert early.actions["marked_not_created"] == 0
    assert (await only_session(service, user_id))["conversation"]["status"] == "indeterminate"
    clock.advance(settle_seconds(service) + 1 + service.settings.reconcile_lease_seconds)
    report = await service.reconciler.run_once()

    assert report.actions["marked_not_created"] == 1
    rows = await only_session(service, user_id)
    assert rows["conversation"]["status"] == "failed"
    assert rows["conversation"]["failure_code"] == "not_created_at_tavus"
    assert rows["daily"]["session_status"] == "failed"
    assert (await start(service, user_id)).status_code == 201


async def test_a_failed_listing_is_no_answer(service: RunningService, clock: Clock) -> None:
    """Listing the account's conversations failed: a start Tavus has is not "not found" for
    it. The row asks Tavus itself, that fails too, and the row keeps the error — never
    marked failed (its user told so while Tavus bills the room)."""
    service.sim.set_config(callback_drop_probability=1.0)
    service.sim.add_fault(endpoint="create", kind="drop_connection", apply_first=True)
    user_id = await create_user(service.db)
    assert (await start(service, user_id)).json()["code"] == "session_outcome_unknown"
    clock.advance(600)  # long past any wait before "not found" may mean "never created"
    service.sim.add_fault(endpoint="list", kind="status", status=503, count=100)

    report = await service.reconciler.run_once()

    assert report.actions["marked_not_created"] == 0
    rows = await only_session(service, user_id)
    assert rows["conversation"]["status"] == "indeterminate"
    assert rows["conversation"]["reconcile_error"] is not None


async def test_resumes_a_start_whose_process_died_between_phases(
    service: RunningService,
) -> None:
    """`serve` killed after Tavus created the conversation, before phase 3 recorded it."""
    service.sim.set_config(callback_drop_probability=1.0)
    # The moment of the crash: Tavus has the conversation, the row is `starting` without it.
    given = await given_session(
        service,
        status="starting",
        age=timedelta(minutes=5),
        tavus_conversation_id=None,
        conversation_url=None,
        start_time=None,
    )
    [created] = service.sim.conversations()["conversations"]

    report = await service.reconciler.run_once()

    assert report.actions["adopted"] == 1
    rows = await session_rows(service.db, given.session_id)
    assert rows["conversation"]["tavus_conversation_id"] == created["conversation_id"]
    assert rows["conversation"]["status"] == "active"


async def test_closes_sessions_past_their_maximum_duration(service: RunningService) -> None:
    service.sim.set_config(callback_drop_probability=1.0)
    given = await given_session(service, status="active", age=timedelta(hours=2))
    assert given.conversation_id is not None

    report = await service.reconciler.run_once()

    assert report.actions["closed_overdue"] == 1
    assert sim_status(service, given.conversation_id) == "ended"
    rows = await session_rows(service.db, given.session_id)
    assert rows["conversation"]["status"] == "ended"
    assert rows["conversation"]["failure_code"] == "closed_by_reconciler"
    assert rows["daily"]["session_status"] == "completed"


async def test_recovers_lost_callbacks_from_the_verbose_get(service: RunningService) -> None:
    service.sim.set_config(callback_drop_probability=1.0)  # every callback is lost
    user_id = await create_user(service.db)
    started = (await start(service, user_id)).json()
    await asyncio.to_thread(service.sim.join, started["conversation_id"])
    await asyncio.to_thread(service.sim.say, started["conversation_id"], "I need more sleep")
    ended = await service.client.post(
        f"/v1/sessions/{started['id']}/end", headers=service.auth(user_id)
    )
    assert ended.status_code == 200
    before = await session_rows(service.db, started["id"])
    assert before["conversation"]["transcript"] is None

    report = await service.reconciler.run_once()

    assert report.actions["recovered:system.shutdown"] == 1
    assert report.actions["recovered:application.transcription_ready"] == 1
    rows = await session_rows(service.db, started["id"])
    assert rows["conversation"]["shutdown_reason"] == "end_conversation_endpoint_hit"
    assert "I need more sleep" in rows["daily"]["conversation_transcript"]
    again = await service.reconciler.run_once()
    assert sum(again.actions.values()) == 0, "recovered events are applied once"


async def test_retries_a_failed_tavus_end(service: RunningService) -> None:
    service.sim.set_config(callback_drop_probability=1.0)
    user_id = await create_user(service.db)
    started = (await start(service, user_id)).json()
    service.sim.add_fault(endpoint="end", kind="status", status=503, count=20)
    await service.client.post(f"/v1/sessions/{started['id']}/end", headers=service.auth(user_id))
    assert (await session_rows(service.db, started["id"]))["conversation"][
        "failure_code"
    ] == "tavus_end_failed"
    assert sim_status(service, started["conversation_id"]) == "active"
    service.sim.clear_faults()

    report = await service.reconciler.run_once()

    assert report.actions["ended_at_tavus"] == 1
    assert sim_status(service, started["conversation_id"]) == "ended"
    rows = await session_rows(service.db, started["id"])
    assert rows["conversation"]["failure_code"] is None


async def test_ends_orphans_of_this_installation_only(service: RunningService) -> None:
    """Only a conversation named with this installation's identity *and* whose row exists
    here (not live), or was deleted here, is ours to end. A twin deployment on the same Tavus
    account — same DEPLOYMENT_NAME, another database — a row never seen here (a copy of this
    database shares its identity), another app, and unnamed conversations are left."""
    service.sim.set_config(callback_drop_probability=1.0)
    user_id = await create_user(service.db)
    live = (await start(service, user_id)).json()
    # Our records closed, Tavus's room still running.
    closed = await given_session(service, status="ended")
    deployment = service.settings.deployment_name
    twin = sim_create(service, f"{deployment}:{uuid.uuid4().hex[:12]}:{uuid.uuid4()}")
    unknown_row = sim_create(service, f"{service.name_prefix}{uuid.uuid4()}")
    legacy = sim_create(service, f"{deployment}:{uuid.uuid4()}")
    foreign = sim_create(service, f"other-app:{uuid.uuid4()}")
    unnamed = sim_create(service, "Somebody's demo")

    report = await service.reconciler.run_once()

    assert report.actions["ended_orphan"] == 1
    assert sim_status(service, str(closed.conversation_id)) == "ended"
    assert sim_status(service, live["conversation_id"]) == "active"
    for untouched in (twin, unknown_row, legacy, foreign, unnamed):
        assert sim_status(service, untouched["conversation_id"]) == "active", untouched
    assert report.actions["foreign_running"] == 4
    assert report.actions["unknown_named_running"] == 1


async def test_ends_the_conversation_of_a_session_already_closed(
    service: RunningService,
) -> None:
    """Our end call closed the session but Tavus kept the room: the orphan sweep ends it."""
    service.sim.set_config(callback_drop_probability=1.0)
    closed = await given_session(service, status="ended")
    assert closed.conversation_id is not None

    report = await service.reconciler.run_once()

    assert report.actions["ended_orphan"] == 1
    assert sim_status(service, closed.conversation_id) == "ended"


async def test_concurrent_passes_do_each_row_once(service: RunningService) -> None:
    """Two replicas' passes at once: leases keep them off each other's rows."""
    service.sim.set_config(callback_drop_probability=1.0)
    service.sim.add_fault(endpoint="create", kind="drop_connection", apply_first=True, count=4)
    users = [await create_user(service.db) for _ in range(4)]
    await asyncio.gather(*(start(service, u) for u in users))

    state = service.state
    other = Reconciler(
        service.settings,
        state.db,
        state.tavus,
        state.conversations,
        state.installation_id,
    )
    first, second = await asyncio.gather(service.reconciler.run_once(), other.run_once())

    assert first.actions["adopted"] + second.actions["adopted"] == 4
    for user_id in users:
        assert (await only_session(service, user_id))["conversation"]["status"] == "active"


async def test_a_lost_replica_joined_is_recovered_from_a_complete_looking_session(
    service: RunningService,
) -> None:
    """Only `replica_joined` is lost; the shutdown and the transcript arrive, so the session
    looks complete. The verification pass still compares it with Tavus's record, once."""
    service.sim.set_config(callback_drop_events=["system.replica_joined"])
    user_id = await create_user(service.db)
    started = (await start(service, user_id)).json()
    conversation_id = started["conversation_id"]
    await eventually(  # Tavus's replica joins the room (its callback is lost)
        lambda: service.sim.conversation(conversation_id)["replica_joined_at"],
        what="the replica joined at the simulator",
    )
    await asyncio.to_thread(service.sim.join, conversation_id)
    await asyncio.to_thread(service.sim.say, conversation_id, "Work is a lot lately")
    await asyncio.to_thread(service.sim.shutdown, conversation_id, "participant_left_timeout")
    await asyncio.to_thread(service.sim.drain, 5.0)
    before = await session_rows(service.db, started["id"])
    assert before["conversation"]["status"] == "ended"
    assert before["conversation"]["transcript"] is not None
    assert before["conversation"]["replica_joined_at"] is None

    report = await service.reconciler.run_once()

    assert report.actions["recovered:system.replica_joined"] == 1, report
    assert report.actions["verified"] == 1
    rows = await session_rows(service.db, started["id"])
    assert rows["conversation"]["replica_joined_at"] is not None
    assert rows["conversation"]["callbacks_verified_at"] is not None
    # Once per session: a later pass does not ask Tavus again (this fault would fail it).
    service.sim.add_fault(
        kind="status", endpoint="get", status=500, conversation_id=conversation_id
    )
    again = await service.reconciler.run_once()
    assert again.errors == 0
    assert sum(again.actions.values()) == 0
    assert [f["remaining"] for f in service.sim.faults()] == [1], "Tavus was not asked again"
