"""Any permutation of a conversation's callbacks, each delivered any number of times, one
after another or all at once, leaves the same final state — on the real database."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from facetoface.db import Database
from facetoface.models import TavusCallbackEvent
from tests.conftest import RunningService
from tests.support.factories import create_user, session_rows
from tests.support.sessions import given_callback_token, given_session


def conversation_events(conversation_id: str) -> list[dict[str, Any]]:
    """Everything Tavus sends for one conversation (G2 shapes), plus an unknown event."""

    def ev(event_type: str, props: dict[str, Any], ts: str) -> dict[str, Any]:
        return {
            "conversation_id": conversation_id,
            "event_type": event_type,
            "message_type": event_type.split(".")[0],
            "timestamp": ts,
            "properties": props,
        }

    return [
        ev("system.replica_joined", {"replica_id": "r1"}, "2026-11-25T10:00:01.000000Z"),
        ev("system.pal_joined", {"face_id": "r1"}, "2026-11-25T10:00:01.000000Z"),
        ev(
            "system.shutdown",
            {"replica_id": "r1", "shutdown_reason": "participant_left_timeout reached"},
            "2026-11-25T10:05:00.000000Z",
        ),
        ev(
            "application.transcription_ready",
            {
                "replica_id": "r1",
                "transcript": [
                    {"role": "system", "content": "prompt"},
                    {"role": "user", "content": "Hello", "timestamp": 1.0},
                    {"role": "assistant", "content": "Hi!", "timestamp": 2.0, "inference_id": "i1"},
                ],
            },
            "2026-11-25T10:05:00.001000Z",
        ),
        ev("application.perception_analysis", {"analysis": "Calm."}, "2026-11-25T10:08:00Z"),
        ev(
            "application.recording_ready",
            {"bucket_name": "b", "s3_key": "k", "duration": 299, "storage_uri": "s3://b/k"},
            "2026-11-25T10:06:00Z",
        ),
        ev(
            "application.post_call_action_executed",
            {"tool_id": "a", "status": "success"},
            "2026-11-25T10:07:00Z",
        ),
        ev(
            "application.post_call_action_executed",
            {"tool_id": "b", "status": "failed"},
            "2026-11-25T10:07:01Z",
        ),
        ev("application.perception_unavailable", {}, "2026-11-25T10:00:02Z"),
    ]


FACT_COLUMNS = (
    "status",
    "tavus_conversation_id",
    "replica_joined_at",
    "shutdown_at",
    "shutdown_reason",
    "end_time",
    "duration_seconds",
    "transcript",
    "recording",
    "perception_analysis",
    "post_call_actions",
)
DAILY_COLUMNS = (
    "session_status",
    "started_at",
    "completed_at",
    "duration_seconds",
    "conversation_transcript",
    "session_metadata",
)


async def _new_session(
    service: RunningService, conversation_id: str
) -> tuple[uuid.UUID, uuid.UUID, str]:
    """A user with an active session bound to `conversation_id`; returns ids and its token
    (signed as the service signs the tokens it gives out)."""
    given = await given_session(
        service,
        await create_user(service.db, complete=False),
        at_tavus=False,
        status="active",
        tavus_conversation_id=conversation_id,
        start_time=datetime(2026, 11, 25, 9, 59, tzinfo=UTC),
    )
    token = await given_callback_token(service, given)
    return given.mentor_conversation_id, given.session_id, token


async def _final_state(db: Database, daily_id: uuid.UUID, row_id: uuid.UUID) -> dict[str, Any]:
    rows = await session_rows(db, daily_id)
    async with db.transaction() as session:
        stored = (
            await session.execute(
                select(func.count())
                .select_from(TavusCallbackEvent)
                .where(TavusCallbackEvent.mentor_conversation_id == row_id)
            )
        ).scalar_one()
    return {
        "conversation": {k: rows["conversation"][k] for k in FACT_COLUMNS},
        "daily": {k: rows["daily"][k] for k in DAILY_COLUMNS},
        "stored_events": stored,
    }


async def _deliver(
    service: RunningService, order: list[int], *, concurrently: bool = False
) -> dict[str, Any]:
    conversation_id = f"c{uuid.uuid4().hex[:12]}"
    row_id, daily_id, token = await _new_session(service, conversation_id)
    events = conversation_events(conversation_id)
    callbacks = service.state.callbacks
    bodies = [json.dumps(events[i]).encode() for i in order]
    if concurrently:
        outcomes = await asyncio.gather(*(callbacks.ingest(str(row_id), token, b) for b in bodies))
    else:
        outcomes = [await callbacks.ingest(str(row_id), token, b) for b in bodies]
    assert outcomes.count("duplicate") == len(order) - len(set(order))
    state = await _final_state(service.db, daily_id, row_id)
    # Ids differ per run; everything else must not.
    state["conversation"]["tavus_conversation_id"] = "<bound>"
    state["daily"]["session_metadata"]["tavus_conversation_id"] = "<bound>"
    return state


N_EVENTS = len(conversation_events("c"))
deliveries = st.permutations(range(N_EVENTS)).flatmap(
    lambda perm: (
        st.lists(st.sampled_from(perm), min_size=0, max_size=12)
        .map(lambda extra: list(perm) + extra)
        .flatmap(st.permutations)
    )
)


@pytest.fixture
async def in_order(service: RunningService) -> dict[str, Any]:
    """The final state of every event delivered once, in order (the same for every example
    of a test: computed once)."""
    state = await _deliver(service, list(range(N_EVENTS)))
    assert state["stored_events"] == N_EVENTS
    assert state["conversation"]["status"] == "ended"
    assert state["daily"]["session_status"] == "completed"
    return state


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(orders=st.lists(deliveries, min_size=5, max_size=5))
async def test_any_order_any_duplicates_same_final_state(
    service: RunningService, in_order: dict[str, Any], orders: list[list[int]]
) -> None:
    """25 deliveries in all: five sessions at a time, each its own order, one after another."""
    states = await asyncio.gather(*(_deliver(service, order) for order in orders))
    for order, state in zip(orders, states, strict=True):
        assert state == in_order, order


@pytest.mark.parametrize("copies", [3])
async def test_concurrent_storm_over_http_matches_sequential_delivery(
    service: RunningService, in_order: dict[str, Any], copies: int
) -> None:
    service.sim.set_config(callback_drop_probability=1.0)
    conversation_id = f"c{uuid.uuid4().hex[:12]}"
    row_id, daily_id, token = await _new_session(service, conversation_id)
    path = f"/v1/callbacks/tavus/{row_id}/{token}"
    payloads = conversation_events(conversation_id) * copies
    responses = await asyncio.gather(*(service.client.post(path, json=p) for p in payloads))

    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    statuses = [r.json()["status"] for r in responses]
    assert statuses.count("duplicate") == N_EVENTS * (copies - 1)
    observed = await _final_state(service.db, daily_id, row_id)
    observed["conversation"]["tavus_conversation_id"] = "<bound>"
    observed["daily"]["session_metadata"]["tavus_conversation_id"] = "<bound>"
    assert observed == in_order
