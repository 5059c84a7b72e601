"""A session's times and status agree with what happened, whatever order the facts came in.

- Tavus's clock and ours differ: a shutdown timestamped before Tavus's creation time (as our
  adoption recorded it) must not end the session before it started.
- A session our side ended while Tavus was still creating it never ran for the user (they
  never had the room): the start's answer says `interrupted`, and so does the stored session
  after Tavus's replica joined the room anyway and Tavus reported the end call's shutdown.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from tests.conftest import RunningService
from tests.support.eventually import eventually
from tests.support.factories import create_user, session_rows
from tests.support.sessions import start_quiet


async def test_a_shutdown_timestamped_before_the_start_ends_it_at_its_start(
    service: RunningService,
) -> None:
    s = await start_quiet(service)
    started = (await session_rows(service.db, s.session_id))["conversation"]["start_time"]
    early = started - timedelta(minutes=5)

    response = await service.client.post(
        s.callback_path,
        json={
            "conversation_id": s.conversation_id,
            "event_type": "system.shutdown",
            "message_type": "system",
            "timestamp": early.isoformat(),
            "properties": {"shutdown_reason": "end_conversation_endpoint_hit"},
        },
    )

    assert response.status_code == 200, response.text
    rows = await session_rows(service.db, s.session_id)
    assert rows["daily"]["completed_at"] == rows["daily"]["started_at"] == started
    assert rows["conversation"]["end_time"] == started
    assert rows["daily"]["duration_seconds"] == 0
    read = await service.client.get(f"/v1/sessions/{s.session_id}", headers=service.auth(s.user_id))
    body = read.json()
    assert body["ended_at"] == body["started_at"]
    assert body["status"] == "completed"


async def test_a_session_ended_during_its_start_is_interrupted_in_answer_and_store(
    service: RunningService,
) -> None:
    user_id = await create_user(service.db)
    # Tavus makes the conversation at once (its replica joins the room at once) and answers
    # the create 2 s later: the user ends the session in between.
    service.sim.set_config(replica_join_delay_ms=0)
    service.sim.add_fault(endpoint="create", kind="timeout", delay_s=2.0, apply_first=True)
    start = asyncio.create_task(service.client.post("/v1/sessions", headers=service.auth(user_id)))

    async def written() -> uuid.UUID | None:
        items = (await service.client.get("/v1/sessions", headers=service.auth(user_id))).json()[
            "items"
        ]
        return uuid.UUID(items[0]["id"]) if items else None

    session_id = await eventually(written, what="phase 1 wrote the rows")
    ended = await service.client.post(
        f"/v1/sessions/{session_id}/end", headers=service.auth(user_id)
    )
    started = await start
    assert ended.status_code == 200
    assert started.status_code == 201, started.text
    assert started.json()["status"] == "interrupted"

    async def settled() -> bool:
        rows = await session_rows(service.db, session_id)
        # Tavus's replica joined and its shutdown (for our end call) arrived.
        conversation = rows["conversation"]
        return (
            conversation["replica_joined_at"] is not None
            and conversation["shutdown_at"] is not None
        )

    await eventually(settled, what="the replica's join and the shutdown were stored")
    rows = await session_rows(service.db, session_id)
    assert rows["daily"]["session_status"] == "interrupted"
    assert rows["daily"]["started_at"] is None
    assert rows["daily"]["duration_seconds"] is None
    read = await service.client.get(f"/v1/sessions/{session_id}", headers=service.auth(user_id))
    assert read.json()["status"] == started.json()["status"] == "interrupted"
