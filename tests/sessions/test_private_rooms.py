"""Private rooms (`SESSION_PRIVATE_ROOMS`).

Conversations are created with `require_auth`; the room refuses a join without the meeting
token; the token goes to the session's owner only — the start's answer (and its replay), the
409's `session`, the session read while it is live, the origin's start as a working join URL —
never to lists, another user, the operators' views or metrics; and it is dropped from the
database as the session ends, whichever way it ends.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from facetoface.auth.dev_issuer import DEV_OPERATOR_ID
from facetoface.config import Settings
from tests.conftest import RunningService
from tests.support.eventually import eventually
from tests.support.factories import create_user, session_rows
from tests.support.whole_sessions import end_and_settle, start_session, talk


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"session_private_rooms": True}


async def _stored_token(service: RunningService, session_id: str) -> str | None:
    token: str | None = (await session_rows(service.db, session_id))["conversation"][
        "meeting_token"
    ]
    return token


def _refused(call: Any) -> int:
    try:
        call()
    except httpx.HTTPStatusError as exc:
        return exc.response.status_code
    return 200


async def test_the_room_refuses_a_join_without_the_token(service: RunningService) -> None:
    user_id = await create_user(service.db)
    started = await start_session(service, user_id)
    token = started["meeting_token"]
    room = started["conversation_id"]
    created = service.sim.conversation(room)
    assert created["meeting_token"] == token  # Tavus was asked for a private room
    assert await _stored_token(service, started["id"]) == token

    assert await asyncio.to_thread(_refused, lambda: service.sim.join(room)) == 403
    wrong = lambda: service.sim.join(room, token=token[:-2] + "xx")  # noqa: E731
    assert await asyncio.to_thread(_refused, wrong) == 403
    assert service.sim.room_state(room)["participants"] == []

    replies = await talk(service, started, ["Hello"])
    assert replies
    assert len(service.sim.room_state(room)["participants"]) == 1


async def test_the_token_goes_to_the_owner_only_and_only_while_live(
    service: RunningService,
) -> None:
    user_id = await create_user(service.db)
    other = await create_user(service.db)
    headers = {**service.auth(user_id), "Idempotency-Key": "private-1"}
    first = await service.client.post("/v1/sessions", headers=headers)
    assert first.status_code == 201, first.text
    started = first.json()
    token = started["meeting_token"]
    assert token

    replay = await service.client.post("/v1/sessions", headers=headers)
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json()["meeting_token"] == token
    conflict = await service.client.post("/v1/sessions", headers=service.auth(user_id))
    assert conflict.status_code == 409
    assert conflict.json()["session"]["meeting_token"] == token
    detail = await service.client.get(
        f"/v1/sessions/{started['id']}", headers=service.auth(user_id)
    )
    assert detail.json()["meeting_token"] == token

    operator = {"Authorization": f"Bearer {service.token(DEV_OPERATOR_ID, operator=True)}"}
    elsewhere = [
        await service.client.get("/v1/sessions", headers=service.auth(user_id)),
        await service.client.get(f"/v1/sessions/{started['id']}", headers=service.auth(other)),
        await service.client.get("/v1/ops/sessions/live", headers=operator),
        await service.client.get("/metrics"),
    ]
    assert [r.status_code for r in elsewhere] == [200, 404, 200, 200]
    assert started["id"] in elsewhere[0].text
    assert started["id"] in elsewhere[2].text
    for response in elsewhere:
        assert token not in response.text, response.request.url
    assert "meeting_token" not in elsewhere[0].json()["items"][0]

    ended = await service.client.post(
        f"/v1/sessions/{started['id']}/end", headers=service.auth(user_id)
    )
    assert ended.status_code == 200
    assert "meeting_token" not in ended.json()
    after = await service.client.get(f"/v1/sessions/{started['id']}", headers=service.auth(user_id))
    assert "meeting_token" not in after.json()
    assert await _stored_token(service, started["id"]) is None
    again = await service.client.post("/v1/sessions", headers=headers)  # the replay, ended
    assert "meeting_token" not in again.json()


async def test_the_token_is_dropped_when_tavus_ends_the_session(service: RunningService) -> None:
    user_id = await create_user(service.db)
    started = await start_session(service, user_id)
    assert await _stored_token(service, started["id"]) is not None
    await asyncio.to_thread(service.sim.shutdown, started["conversation_id"], "max_call_duration")

    async def ended() -> dict[str, Any] | None:
        rows = await session_rows(service.db, started["id"])
        return rows if rows["conversation"]["status"] == "ended" else None

    rows = await eventually(ended, what="Tavus's shutdown closed the session")
    assert rows["conversation"]["meeting_token"] is None


async def test_a_whole_private_session(service: RunningService) -> None:
    user_id = await create_user(service.db)
    started = await start_session(service, user_id)
    await talk(service, started, ["Only my own room"])
    rows = await end_and_settle(service, user_id, started, transcript=True)
    assert rows["conversation"]["meeting_token"] is None
    assert "Only my own room" in str(rows["conversation"]["transcript"])


async def test_the_origins_start_answers_a_join_url_that_works(service: RunningService) -> None:
    user_id = await create_user(service.db)
    response = await service.client.post(
        "/functions/v1/start-tavus-session", json={}, headers=service.auth(user_id)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    url = urlsplit(body["conversation_url"])
    token = await _stored_token(service, str(body["daily_session_id"]))
    assert token is not None
    assert parse_qs(url.query) == {"t": [token]}
    room = f"{url.scheme}://{url.netloc}{url.path}"
    async with httpx.AsyncClient() as client:
        bare = await client.post(f"{room}/join", json={})
        joined = await client.post(f"{room}/join?{url.query}", json={})
    assert bare.status_code == 403
    assert joined.status_code == 200, joined.text

    conflict = await service.client.post(
        "/functions/v1/start-tavus-session", json={}, headers=service.auth(user_id)
    )
    assert conflict.status_code == 409
    assert conflict.json()["conversation_url"] == body["conversation_url"]
    ended = await service.client.post(
        "/functions/v1/end-tavus-session",
        json={"daily_session_id": str(body["daily_session_id"])},
        headers=service.auth(user_id),
    )
    assert ended.status_code == 200
    assert token not in ended.text
    assert await _stored_token(service, str(body["daily_session_id"])) is None


@pytest.mark.parametrize("service_overrides", [{}])
async def test_off_in_tests_by_default(service: RunningService) -> None:
    assert service.settings.private_rooms is False
    user_id = await create_user(service.db)
    started = await start_session(service, user_id)
    assert "meeting_token" not in started
    assert service.sim.conversation(started["conversation_id"])["meeting_token"] is None
    await talk(service, started, ["anyone with the link may join"])


def test_on_by_default_in_production_only() -> None:
    def private(**values: Any) -> bool:
        return Settings(_env_file=None, **values).private_rooms  # type: ignore[call-arg]

    assert private(environment="production") is True
    assert private(environment="development") is False
    assert private(environment="test") is False
    assert private(environment="production", session_private_rooms=False) is False
    assert private(environment="development", session_private_rooms=True) is True
