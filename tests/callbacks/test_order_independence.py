"""Any permutation of a conversation's callbacks, each delivered any number of times, one
after another or all at once, leaves the same final state — on the real databases."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from facetoface.callbacks.service import CallbackService
from facetoface.config import Settings
from facetoface.conversations.service import ConversationService
from facetoface.conversations.tokens import hash_callback_token
from facetoface.db import Database
from facetoface.models import (
    DailySession,
    MentorConversation,
    Profile,
    TavusCallbackEvent,
    utcnow,
)
from tests.conftest import RunningService
from tests.support.factories import session_rows, unused_tavus


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


async def _new_session(db: Database, conversation_id: str) -> tuple[uuid.UUID, uuid.UUID, str]:
    """A user with an active session bound to `conversation_id`; returns ids and its token."""
    user_id, daily_id, row_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with db.transaction() as session:
        session.add(Profile(id=user_id, email=f"{user_id.hex}@x", full_name="P"))
        await session.flush()
        session.add(
            DailySession(
                id=daily_id, user_id=user_id, session_type="face_to_face", session_date=now.date()
            )
        )
        await session.flush()
        session.add(
            MentorConversation(
                id=row_id,
                user_id=user_id,
                daily_session_id=daily_id,
                conversation_name="n",
                status="active",
                tavus_conversation_id=conversation_id,
                start_time=now.replace(
                    year=2026, month=11, day=25, hour=9, minute=59, second=0, microsecond=0
                ),
                callback_token_hash=hash_callback_token(token),
            )
        )
    return row_id, daily_id, token


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


async def _deliver(db: Database, order: list[int], *, concurrently: bool = False) -> dict[str, Any]:
    conversation_id = f"c{uuid.uuid4().hex[:12]}"
    row_id, daily_id, token = await _new_session(db, conversation_id)
    events = conversation_events(conversation_id)
    service = CallbackService(ConversationService(db, unused_tavus()))
    bodies = [json.dumps(events[i]).encode() for i in order]
    if concurrently:
        outcomes = await asyncio.gather(*(service.ingest(str(row_id), token, b) for b in bodies))
    else:
        outcomes = [await service.ingest(str(row_id), token, b) for b in bodies]
    assert outcomes.count("duplicate") == len(order) - len(set(order))
    state = await _final_state(db, daily_id, row_id)
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


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(order=deliveries)
def test_any_order_any_duplicates_same_final_state(
    database_settings: dict[str, Any], order: list[int]
) -> None:
    async def run() -> None:
        db = Database(Settings(_env_file=None, environment="test", **database_settings))  # type: ignore[call-arg]
        try:
            reference = await _deliver(db, list(range(N_EVENTS)))
            observed = await _deliver(db, order)
        finally:
            await db.dispose()
        assert observed == reference
        assert reference["stored_events"] == N_EVENTS
        assert reference["conversation"]["status"] == "ended"
        assert reference["daily"]["session_status"] == "completed"

    asyncio.run(run())


@pytest.mark.parametrize("copies", [3])
async def test_concurrent_storm_over_http_matches_sequential_delivery(
    service: RunningService, copies: int
) -> None:
    sequential = await _deliver(service.db, list(range(N_EVENTS)))

    service.sim.set_config(callback_drop_probability=1.0)
    conversation_id = f"c{uuid.uuid4().hex[:12]}"
    row_id, daily_id, token = await _new_session(service.db, conversation_id)
    path = f"/v1/callbacks/tavus/{row_id}/{token}"
    payloads = conversation_events(conversation_id) * copies
    responses = await asyncio.gather(*(service.client.post(path, json=p) for p in payloads))

    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    statuses = [r.json()["status"] for r in responses]
    assert statuses.count("duplicate") == N_EVENTS * (copies - 1)
    observed = await _final_state(service.db, daily_id, row_id)
    observed["conversation"]["tavus_conversation_id"] = "<bound>"
    observed["daily"]["session_metadata"]["tavus_conversation_id"] = "<bound>"
    assert observed == sequential
