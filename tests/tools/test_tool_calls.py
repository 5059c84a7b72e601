"""`POST /v1/tavus/tools/{name}`: signed tool calls act as the session's user, once, within the
session's limit — and every forgery gets the same 404 and changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from facetoface.models import UserGoal
from tests.conftest import RunningService
from tests.support.factories import create_user
from tests.support.sessions import given_session
from tests.support.tool_calls import (
    app_events,
    call_body,
    deliver,
    goal_id,
    progress,
    snapshot,
    tool_path,
)

MEDITATE = "Meditate 10 minutes every morning"
UPDATE = tool_path("update_goal_progress")


async def test_update_goal_progress_moves_the_goal_logs_it_and_undo_restores_it(
    service: RunningService,
) -> None:
    live = await given_session(service)
    goal = await goal_id(service, live.user_id, MEDITATE)
    body = call_body(live.conversation_id, {"goal_id": str(goal), "progress_percentage": 60})

    answer = await deliver(service, UPDATE, body)

    assert answer.status_code == 200, answer.text
    assert answer.text == f"Updated «{MEDITATE}» to 60 %"
    assert await progress(service, goal) == 60
    headers = service.auth(live.user_id)
    listed = await service.client.get(
        "/v1/me/goal-changes", params={"session_id": str(live.session_id)}, headers=headers
    )
    assert listed.status_code == 200, listed.text
    [change] = listed.json()["items"]
    assert change | {"id": None, "created_at": None} == {
        "id": None,
        "goal_id": str(goal),
        "goal_text": MEDITATE,
        "session_id": str(live.session_id),
        "kind": "progress",
        "source": "tool",
        "before": 40,
        "after": 60,
        "note": None,
        "created_at": None,
        "undone_at": None,
    }

    undo = await service.client.post(f"/v1/me/goal-changes/{change['id']}/undo", headers=headers)
    assert undo.status_code == 200, undo.text
    assert undo.json()["undone_at"] is not None
    assert await progress(service, goal) == 40
    again = await service.client.post(f"/v1/me/goal-changes/{change['id']}/undo", headers=headers)
    assert again.status_code == 200
    assert again.json()["undone_at"] == undo.json()["undone_at"]
    assert await progress(service, goal) == 40

    # The app hears of the change and of its undo, once each (the second undo adds nothing).
    events = await app_events(service)
    assert [
        (e["type"], e["progress_before"], e["progress_after"], e["undone"]) for e in events
    ] == [
        ("goal.changed", 40, 60, False),
        ("goal.changed", 60, 40, True),
    ]
    assert {e["change_id"] for e in events} == {change["id"]}
    assert {e["session_id"] for e in events} == {str(live.session_id)}


async def test_undo_refuses_when_the_goal_changed_since(service: RunningService) -> None:
    live = await given_session(service)
    goal = await goal_id(service, live.user_id, MEDITATE)
    body = call_body(live.conversation_id, {"goal_id": str(goal), "progress_percentage": 60})
    assert (await deliver(service, UPDATE, body)).status_code == 200
    async with service.db.transaction() as session:  # the user edits it in the app
        await session.execute(
            update(UserGoal).where(UserGoal.id == goal).values(progress_percentage=75)
        )
    headers = service.auth(live.user_id)
    [change] = (await service.client.get("/v1/me/goal-changes", headers=headers)).json()["items"]

    undo = await service.client.post(f"/v1/me/goal-changes/{change['id']}/undo", headers=headers)

    assert undo.status_code == 409
    assert undo.json()["code"] == "goal_changed_since"
    assert await progress(service, goal) == 75


async def test_another_users_change_cannot_be_read_or_undone(service: RunningService) -> None:
    live = await given_session(service)
    goal = await goal_id(service, live.user_id, MEDITATE)
    body = call_body(live.conversation_id, {"goal_id": str(goal), "progress_percentage": 60})
    assert (await deliver(service, UPDATE, body)).status_code == 200
    [change] = (
        await service.client.get("/v1/me/goal-changes", headers=service.auth(live.user_id))
    ).json()["items"]
    other = service.auth(await create_user(service.db))

    assert (await service.client.get("/v1/me/goal-changes", headers=other)).json()["items"] == []
    undo = await service.client.post(f"/v1/me/goal-changes/{change['id']}/undo", headers=other)
    assert undo.status_code == 404
    assert await progress(service, goal) == 60


async def test_add_goal_adds_an_active_goal_and_undo_archives_it(service: RunningService) -> None:
    live = await given_session(service)
    body = call_body(live.conversation_id, {"goal_text": "run 5 km by June"})

    answer = await deliver(service, tool_path("add_goal"), body)

    assert answer.status_code == 200, answer.text
    assert answer.text.startswith("Added the goal «run 5 km by June»")
    async with service.db.transaction() as session:
        added = (
            await session.execute(
                select(UserGoal).where(
                    UserGoal.user_id == live.user_id, UserGoal.goal_text == "run 5 km by June"
                )
            )
        ).scalar_one()
    assert (added.status, added.progress_percentage, added.source) == (
        "active",
        0,
        "session_suggestion",
    )
    headers = service.auth(live.user_id)
    [change] = (await service.client.get("/v1/me/goal-changes", headers=headers)).json()["items"]
    assert (change["kind"], change["before"], change["goal_id"]) == ("added", None, str(added.id))
    undo = await service.client.post(f"/v1/me/goal-changes/{change['id']}/undo", headers=headers)
    assert undo.status_code == 200, undo.text
    async with service.db.transaction() as session:
        status = (
            await session.execute(select(UserGoal.status).where(UserGoal.id == added.id))
        ).scalar_one()
    assert status == "archived"


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"goal_id": "not-a-uuid", "progress_percentage": 60}, "goal_id"),
        ({"progress_percentage": 101}, "progress_percentage"),
        ({"progress_percentage": -1}, "progress_percentage"),
        ({"progress_percentage": 50, "note": "x" * 501}, "note"),
    ],
)
async def test_arguments_are_validated_and_bounded(
    service: RunningService, arguments: dict[str, Any], field: str
) -> None:
    live = await given_session(service)
    goal = await goal_id(service, live.user_id, MEDITATE)
    before = await snapshot(service)
    body = call_body(live.conversation_id, {"goal_id": str(goal), **arguments})

    answer = await deliver(service, UPDATE, body)

    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_tool_call"
    assert field in answer.json()["detail"]
    assert await snapshot(service) == before


@pytest.mark.parametrize("overrides", [{"tool_changes_per_session": 2}])
async def test_a_session_makes_at_most_the_configured_number_of_changes(
    service: RunningService, overrides: dict[str, Any]
) -> None:
    live = await given_session(service)
    goal = await goal_id(service, live.user_id, MEDITATE)
    for percent in (50, 60):
        body = call_body(
            live.conversation_id, {"goal_id": str(goal), "progress_percentage": percent}
        )
        assert (await deliver(service, UPDATE, body)).status_code == 200

    body = call_body(live.conversation_id, {"goal_id": str(goal), "progress_percentage": 70})
    answer = await deliver(service, UPDATE, body)

    assert answer.status_code == 200
    assert answer.text.startswith("I can't change anything more in this session")
    assert await progress(service, goal) == 60


# --- the forgery matrix -----------------------------------------------------------------------
def refusals() -> float:
    labels = {"outcome": "refused"}
    return REGISTRY.get_sample_value("facetoface_tool_calls_total", labels) or 0.0


FORGERIES = [
    "no_signature",
    "wrong_secret",
    "body_changed_after_signing",
    "another_users_goal",
    "ended_session",
    "unknown_conversation",
    "replayed_tool_call_id",
    "unknown_tool",
]


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_every_forgery_gets_the_same_404_and_changes_nothing(
    service: RunningService, forgery: str
) -> None:
    live = await given_session(service)
    goal = await goal_id(service, live.user_id, MEDITATE)
    arguments = {"goal_id": str(goal), "progress_percentage": 60}
    body = call_body(live.conversation_id, arguments)
    kwargs: dict[str, Any] = {}
    path = UPDATE
    if forgery == "no_signature":
        kwargs["signature"] = False
    elif forgery == "wrong_secret":
        kwargs["secret"] = "not-the-secret-" + "x" * 32
    elif forgery == "body_changed_after_signing":
        kwargs["signed_body"] = call_body(
            live.conversation_id, {**arguments, "progress_percentage": 10}
        )
    elif forgery == "another_users_goal":
        other = await given_session(service)
        body = call_body(other.conversation_id, arguments)
    elif forgery == "ended_session":
        ended = await given_session(service, status="ended")
        body = call_body(
            ended.conversation_id,
            {
                "goal_id": str(await goal_id(service, ended.user_id, MEDITATE)),
                "progress_percentage": 60,
            },
        )
    elif forgery == "unknown_conversation":
        body = call_body("c0000unknown", arguments)
    elif forgery == "replayed_tool_call_id":
        assert (await deliver(service, UPDATE, body)).status_code == 200
    elif forgery == "unknown_tool":
        path = tool_path("delete_everything")
    before = await snapshot(service)
    refused = refusals()

    answer = await deliver(service, path, body, **kwargs)

    assert refusals() == refused + 1, "counted in facetoface_tool_calls_total"
    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert (answer.json()["code"], answer.json()["detail"]) == (
        "not_found",
        "No such conversation.",
    )
    assert await snapshot(service) == before


async def test_the_same_404_for_a_session_ended_long_ago(service: RunningService) -> None:
    ended = await given_session(service, status="ended", age=timedelta(days=3))
    goal = await goal_id(service, ended.user_id, MEDITATE)
    before = await snapshot(service)
    body = call_body(ended.conversation_id, {"goal_id": str(goal), "progress_percentage": 60})

    answer = await deliver(service, UPDATE, body)

    assert answer.status_code == 404
    assert await snapshot(service) == before


@pytest.mark.parametrize("overrides", [{"tavus_memory": "participant"}])
async def test_remember_is_refused_politely_when_the_user_turned_memory_off(
    service: RunningService, overrides: dict[str, Any]
) -> None:
    live = await given_session(service)
    headers = service.auth(live.user_id)
    off = await service.client.put(
        "/v1/me/preferences", json={"mentor_memory": False}, headers=headers
    )
    assert off.status_code == 200

    answer = await deliver(
        service, tool_path("remember"), call_body(live.conversation_id, {"fact": "I like tea"})
    )

    assert answer.status_code == 200
    assert answer.text.startswith("I can't remember things between sessions")
    memory = (await service.client.get("/v1/me/memory", headers=headers)).json()
    assert memory == {"enabled": False, "pinned": [], "profile": None, "timeline": None}
    # The session began with memory on (its store exists at Tavus): nothing was pinned to it.
    tag = f"{service.settings.deployment_name}:{live.user_id}"
    for store in (await service.state.tavus.list_memory_stores(participant_tag=tag)).data:
        details = await service.state.tavus.get_memory_store(store.memory_store_id)
        assert details.pinned_memories == []


async def test_remember_is_refused_when_the_deployment_keeps_no_memory(
    service: RunningService,
) -> None:
    live = await given_session(service)  # TAVUS_MEMORY is off by default

    answer = await deliver(
        service, tool_path("remember"), call_body(live.conversation_id, {"fact": "I like tea"})
    )

    assert answer.status_code == 200
    assert answer.text.startswith("I can't remember things between sessions")


async def test_the_same_call_delivered_twice_at_once_changes_the_goal_once(
    service: RunningService,
) -> None:
    live = await given_session(service)
    goal = await goal_id(service, live.user_id, MEDITATE)
    body = call_body(live.conversation_id, {"goal_id": str(goal), "progress_percentage": 60})

    answers = await asyncio.gather(*(deliver(service, UPDATE, body) for _ in range(4)))

    assert sorted(a.status_code for a in answers) == [200, 404, 404, 404]
    changes = (
        await service.client.get("/v1/me/goal-changes", headers=service.auth(live.user_id))
    ).json()["items"]
    assert [(c["before"], c["after"]) for c in changes] == [(40, 60)]


@pytest.mark.parametrize("overrides", [{"tool_changes_per_session": 2}])
async def test_concurrent_calls_stay_within_the_limit(
    service: RunningService, overrides: dict[str, Any]
) -> None:
    live = await given_session(service)
    goal = await goal_id(service, live.user_id, MEDITATE)
    bodies = [
        call_body(live.conversation_id, {"goal_id": str(goal), "progress_percentage": p})
        for p in (51, 52, 53, 54, 55)
    ]

    answers = await asyncio.gather(*(deliver(service, UPDATE, body) for body in bodies))

    assert [a.status_code for a in answers] == [200] * 5
    assert sum(a.text.startswith("Updated") for a in answers) == 2
    changes = (
        await service.client.get("/v1/me/goal-changes", headers=service.auth(live.user_id))
    ).json()["items"]
    assert len(changes) == 2


async def test_the_log_is_paged_newest_first(service: RunningService) -> None:
    live = await given_session(service)
    goal = await goal_id(service, live.user_id, MEDITATE)
    for percent in (50, 60, 70):
        body = call_body(
            live.conversation_id, {"goal_id": str(goal), "progress_percentage": percent}
        )
        assert (await deliver(service, UPDATE, body)).status_code == 200
    headers = service.auth(live.user_id)

    first = (
        await service.client.get("/v1/me/goal-changes", params={"limit": 2}, headers=headers)
    ).json()
    second = (
        await service.client.get(
            "/v1/me/goal-changes",
            params={"limit": 2, "cursor": first["next_cursor"]},
            headers=headers,
        )
    ).json()

    assert [c["after"] for c in first["items"] + second["items"]] == [70, 60, 50]
    assert second["next_cursor"] is None
    other = await service.client.get(
        "/v1/me/goal-changes", params={"session_id": str(uuid.uuid4())}, headers=headers
    )
    assert other.json()["items"] == []
    bad = await service.client.get(
        "/v1/me/goal-changes", params={"cursor": "not-ours"}, headers=headers
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_cursor")
