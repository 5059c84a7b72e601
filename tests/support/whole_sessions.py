"""Whole sessions through the real HTTP path and the simulator's room, for tests that need a
history (continuity, memory, private rooms)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from tests.conftest import RunningService
from tests.support.factories import session_rows


async def start_session(service: RunningService, user_id: uuid.UUID) -> dict[str, Any]:
    """`POST /v1/sessions` for the user; the 201's body."""
    response = await service.client.post("/v1/sessions", headers=service.auth(user_id))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def talk(service: RunningService, started: dict[str, Any], said: Sequence[str]) -> list[str]:
    """Join the session's room (with its meeting token, if private) and say each line; the
    mentor's replies."""
    room = started["conversation_id"]
    await asyncio.to_thread(service.sim.join, room, None, token=started.get("meeting_token"))
    return [await asyncio.to_thread(service.sim.say, room, line) for line in said]


async def end_and_settle(
    service: RunningService, user_id: uuid.UUID, started: dict[str, Any], *, transcript: bool
) -> dict[str, Any]:
    """End the session through the API and wait until it is closed (and, with `transcript`,
    until Tavus's transcript arrived); both stored rows."""
    ended = await service.client.post(
        f"/v1/sessions/{started['id']}/end", headers=service.auth(user_id)
    )
    assert ended.status_code == 200, ended.text
    for _ in range(400):
        rows = await session_rows(service.db, started["id"])
        conversation = rows["conversation"]
        if conversation["status"] == "ended" and (
            not transcript or conversation["transcript"] is not None
        ):
            return rows
        await asyncio.sleep(0.02)
    raise AssertionError(f"session {started['id']} did not settle")


async def finished_session(
    service: RunningService, user_id: uuid.UUID, said: Sequence[str] = ()
) -> dict[str, Any]:
    """A whole session: start, join, say `said`, end; returns the start's body."""
    started = await start_session(service, user_id)
    await talk(service, started, said)
    await end_and_settle(service, user_id, started, transcript=bool(said))
    return started


async def context(service: RunningService, user_id: uuid.UUID) -> dict[str, Any]:
    """`GET /v1/me/context` for the user."""
    response = await service.client.get("/v1/me/context", headers=service.auth(user_id))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def section(preview: dict[str, Any], name: str) -> str | None:
    """One section's text of a context preview (None when it is left out)."""
    found = [s["text"] for s in preview["sections"] if s["name"] == name]
    return found[0] if found else None
