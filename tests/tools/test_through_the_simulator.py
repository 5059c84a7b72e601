"""End to end through the simulator: the tools registered by `tavus setup`, the user speaking
in the room, the mentor's signed calls acting on the goals and the memory, the report after
the call, and what the next session's mentor knows."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import pytest

from facetoface.tools.setup import setup_tools
from tests.conftest import RunningService
from tests.support.eventually import eventually
from tests.support.factories import create_user
from tests.support.tool_calls import goal_id, progress

MEDITATE = "Meditate 10 minutes every morning"
PRICE = Decimal("0.30")
OVERRIDES = {"tavus_memory": "participant", "tavus_cost_per_minute": PRICE}


async def start(service: RunningService, user_id: uuid.UUID) -> dict[str, Any]:
    started = await service.client.post("/v1/sessions", headers=service.auth(user_id))
    assert started.status_code == 201, started.text
    body: dict[str, Any] = started.json()
    await asyncio.to_thread(service.sim.join, body["conversation_id"], "Maria")
    return body


async def say(service: RunningService, conversation_id: str, text: str) -> str:
    return await asyncio.to_thread(service.sim.say, conversation_id, text)


@pytest.mark.parametrize("overrides", [OVERRIDES])
async def test_the_mentor_acts_in_the_open_and_the_user_keeps_control(
    service: RunningService, overrides: dict[str, Any]
) -> None:
    pals, first = await setup_tools(service.settings, service.db, service.state.tavus)
    assert pals[0] == "p0000default"  # the default PAL first, then any mentor avatars'
    assert sorted(first.created) == [
        "add_goal",
        "remember",
        "session_report",
        "update_goal_progress",
    ]
    _, again = await setup_tools(service.settings, service.db, service.state.tavus)
    assert not again.changed, "a second setup changes nothing"

    user_id = await create_user(service.db)
    headers = service.auth(user_id)
    meditate = await goal_id(service, user_id, MEDITATE)
    session = await start(service, user_id)
    cid = session["conversation_id"]

    # "I'm at 60 % on meditating": the goal moves, the change is listed under the session.
    reply = await say(service, cid, "I'm at 60 % on meditating")
    assert f"Updated «{MEDITATE}» to 60 %" in reply, service.sim.tool_calls(cid)
    assert await progress(service, meditate) == 60
    listed = await service.client.get(
        "/v1/me/goal-changes", params={"session_id": session["id"]}, headers=headers
    )
    [change] = listed.json()["items"]
    assert (change["goal_text"], change["before"], change["after"]) == (MEDITATE, 40, 60)
    # ... and Undo restores it.
    undo = await service.client.post(f"/v1/me/goal-changes/{change['id']}/undo", headers=headers)
    assert undo.status_code == 200, undo.text
    assert await progress(service, meditate) == 40

    # "remember that my dog is called Rex": pinned to the user's memory store at Tavus.
    reply = await say(service, cid, "remember that my dog is called Rex")
    assert "I'll remember: «my dog is called Rex»" in reply
    memory = (await service.client.get("/v1/me/memory", headers=headers)).json()
    assert memory["enabled"] is True
    assert [p["text"] for p in memory["pinned"]] == ["my dog is called Rex"]

    # "add a goal: run 5 km by June": a new active goal.
    reply = await say(service, cid, "add a goal: run 5 km by June")
    assert "Added the goal «run 5 km by June»" in reply

    # After the call: the report, with summary, next steps and the cost.
    ended = await service.client.post(f"/v1/sessions/{session['id']}/end", headers=headers)
    assert ended.status_code == 200, ended.text

    async def reported() -> dict[str, Any] | None:
        detail = await service.client.get(f"/v1/sessions/{session['id']}", headers=headers)
        body: dict[str, Any] = detail.json()
        return body if body.get("report") else None

    detail = await eventually(reported, what="the session report")
    report = detail["report"]
    assert report["summary"]
    assert isinstance(report["next_steps"], list)
    assert report["billed_duration_seconds"] == detail["duration_seconds"]
    assert report["estimated_cost"] == float(
        (Decimal(detail["duration_seconds"]) / 60 * PRICE).quantize(Decimal("0.01"))
    )
    # The report does not redo what the user undid.
    assert await progress(service, meditate) == 40

    # The next session's mentor knows what changed, that the user undid it, and the dog.
    context = (await service.client.get("/v1/me/context", headers=headers)).json()["text"]
    assert f"goal_id {meditate}" in context
    assert f"Last session you moved «{MEDITATE}» from 40% to 60%; the user undid this" in context
    assert "Last session you added the goal «run 5 km by June»; the user kept it" in context
    second = await start(service, user_id)
    first_reply = await say(service, second["conversation_id"], "Hello again")
    assert "my dog is called Rex" in first_reply

    # Forget removes it everywhere.
    [pinned] = (await service.client.get("/v1/me/memory", headers=headers)).json()["pinned"]
    forgot = await service.client.delete(f"/v1/me/memory/pinned/{pinned['id']}", headers=headers)
    assert forgot.status_code == 204
    assert (await service.client.get("/v1/me/memory", headers=headers)).json()["pinned"] == []
    again_404 = await service.client.delete(f"/v1/me/memory/pinned/{pinned['id']}", headers=headers)
    assert again_404.status_code == 404
    everything = await service.client.delete("/v1/me/memory", headers=headers)
    assert everything.status_code == 200, everything.text
    assert everything.json()["memory_stores_deleted"] == 1
    stores = await service.state.tavus.list_memory_stores(
        participant_tag=f"{service.settings.deployment_name}:{user_id}"
    )
    assert stores.data == []


@pytest.mark.parametrize("overrides", [OVERRIDES])
async def test_the_simulators_forged_and_repeated_calls_change_nothing_more(
    service: RunningService, overrides: dict[str, Any]
) -> None:
    await setup_tools(service.settings, service.db, service.state.tavus)
    user_id = await create_user(service.db)
    headers = service.auth(user_id)
    meditate = await goal_id(service, user_id, MEDITATE)
    session = await start(service, user_id)
    cid = session["conversation_id"]

    service.sim.add_fault("wrong_signature", endpoint="tool_call")
    reply = await say(service, cid, "I'm at 60 % on meditating")
    assert "did not work (status 404)" in reply
    assert await progress(service, meditate) == 40

    service.sim.add_fault("repeat_tool_call", endpoint="tool_call")
    await say(service, cid, "I'm at 70 % on meditating")
    calls = [c for c in service.sim.tool_calls(cid) if c["tool"] == "update_goal_progress"]
    assert [c["status"] for c in calls[-2:]] == [200, 404], calls
    assert calls[-1]["body"] == calls[-2]["body"]
    assert await progress(service, meditate) == 70
    changes = (await service.client.get("/v1/me/goal-changes", headers=headers)).json()["items"]
    assert [(c["before"], c["after"]) for c in changes] == [(40, 70)]


# The client's circuit breaker would otherwise stay open after the injected failures.
@pytest.mark.parametrize("overrides", [{**OVERRIDES, "tavus_breaker_threshold": 1000}])
async def test_when_tavus_fails_memory_is_unavailable_and_remember_can_be_redelivered(
    service: RunningService, overrides: dict[str, Any]
) -> None:
    from tests.support.tool_calls import call_body, deliver, tool_path

    user_id = await create_user(service.db)
    headers = service.auth(user_id)
    session = await start(service, user_id)
    service.sim.add_fault("status", endpoint="memory_stores", status=503, count=50)

    read = await service.client.get("/v1/me/memory", headers=headers)
    assert read.status_code == 503
    assert read.json()["code"] == "memory_unavailable"
    assert "retry-after" in read.headers
    body = call_body(session["conversation_id"], {"fact": "my dog is called Rex"})
    failed = await deliver(service, tool_path("remember"), body)
    assert failed.status_code == 200
    assert failed.text == "I couldn't save that just now; it was not remembered."

    service.sim.clear_faults()
    again = await deliver(service, tool_path("remember"), body)  # Tavus delivers it again
    assert again.text == "I'll remember: «my dog is called Rex»"
    memory = (await service.client.get("/v1/me/memory", headers=headers)).json()
    assert [p["text"] for p in memory["pinned"]] == ["my dog is called Rex"]
