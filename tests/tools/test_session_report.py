"""`POST /v1/tavus/post-call/session_report`: once per session, up to a day after it ended;
stored with the session (`GET /v1/sessions/{id}` → `report`), its goal updates applied and
logged like tool calls."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from facetoface.clock import utcnow
from tests.conftest import RunningService
from tests.support.sessions import given_session
from tests.support.tool_calls import (
    REPORT_PATH,
    app_events,
    call_body,
    deliver,
    goal_id,
    progress,
    snapshot,
)

MEDITATE = "Meditate 10 minutes every morning"
PRICE = Decimal("0.37")


def report(goal: object, **extra: Any) -> dict[str, Any]:
    return {
        "summary": "We talked about morning routines.",
        "next_steps": ["Meditate before breakfast", "Write down one boundary"],
        "goal_updates": [{"goal_id": str(goal), "progress_percentage": 70}],
        "mood": "hopeful",
        **extra,
    }


@pytest.mark.parametrize("overrides", [{"tavus_cost_per_minute": PRICE}])
async def test_the_report_is_stored_shown_with_cost_and_its_updates_applied(
    service: RunningService, overrides: dict[str, Any]
) -> None:
    live = await given_session(service, age=timedelta(minutes=10))
    headers = service.auth(live.user_id)
    ended = await service.client.post(f"/v1/sessions/{live.session_id}/end", headers=headers)
    assert ended.status_code == 200, ended.text
    goal = await goal_id(service, live.user_id, MEDITATE)

    answer = await deliver(service, REPORT_PATH, call_body(live.conversation_id, report(goal)))

    assert answer.status_code == 200, answer.text
    assert answer.text == "Report stored; 1 goal update(s) applied"
    detail = (await service.client.get(f"/v1/sessions/{live.session_id}", headers=headers)).json()
    shown = detail["report"]
    duration = detail["duration_seconds"]
    assert duration is not None
    assert duration >= 600
    assert shown | {"received_at": None} == {
        "summary": "We talked about morning routines.",
        "next_steps": ["Meditate before breakfast", "Write down one boundary"],
        "mood": "hopeful",
        "received_at": None,
        "billed_duration_seconds": duration,
        "estimated_cost": float((Decimal(duration) / 60 * PRICE).quantize(Decimal("0.01"))),
    }
    assert await progress(service, goal) == 70
    changes = (
        await service.client.get(
            "/v1/me/goal-changes", params={"session_id": str(live.session_id)}, headers=headers
        )
    ).json()["items"]
    assert [(c["source"], c["before"], c["after"]) for c in changes] == [("report", 40, 70)]
    events = await app_events(service)
    assert [(e["type"], e.get("source"), e["session_id"]) for e in events] == [
        ("goal.changed", "report", str(live.session_id)),
        ("session.report_ready", None, str(live.session_id)),
    ]

    before = await snapshot(service)
    second = await deliver(
        service, REPORT_PATH, call_body(live.conversation_id, report(goal, summary="Again"))
    )
    assert second.status_code == 404
    assert await snapshot(service) == before


async def test_no_cost_without_a_price(service: RunningService) -> None:
    live = await given_session(service)
    goal = await goal_id(service, live.user_id, MEDITATE)
    body = call_body(live.conversation_id, report(goal, goal_updates=[]))
    assert (await deliver(service, REPORT_PATH, body)).status_code == 200

    detail = await service.client.get(
        f"/v1/sessions/{live.session_id}", headers=service.auth(live.user_id)
    )

    assert "estimated_cost" not in detail.json()["report"]
    assert detail.json()["report"]["summary"] == "We talked about morning routines."


@pytest.mark.parametrize("case", ["too_late", "another_users_goal", "failed_session", "replayed"])
async def test_refused_reports_get_the_same_404_and_change_nothing(
    service: RunningService, case: str
) -> None:
    if case == "too_late":
        # Rows only: a live conversation at the simulator would keep sending callbacks.
        session = await given_session(
            service,
            status="ended",
            age=timedelta(days=2),
            at_tavus=False,
            tavus_conversation_id=f"c{uuid.uuid4().hex[:12]}",
            end_time=utcnow() - timedelta(hours=25),
        )
    elif case == "failed_session":
        session = await given_session(service, status="failed")
    else:
        session = await given_session(service)
    goal = await goal_id(service, session.user_id, MEDITATE)
    body = call_body(session.conversation_id, report(goal))
    if case == "another_users_goal":
        other = await given_session(service)
        body = call_body(other.conversation_id, report(goal))
    elif case == "replayed":
        assert (await deliver(service, REPORT_PATH, body)).status_code == 200
    before = await snapshot(service)

    answer = await deliver(service, REPORT_PATH, body)

    assert answer.status_code == 404, answer.text
    assert answer.json()["code"] == "not_found"
    assert await snapshot(service) == before


@pytest.mark.parametrize(
    "bad",
    [
        {"summary": ""},
        {"summary": "x" * 4001},
        {"next_steps": ["step"] * 11},
        {"goal_updates": [{"goal_id": "nope", "progress_percentage": 10}]},
        {"mood": "m" * 101},
    ],
)
async def test_report_arguments_are_bounded(service: RunningService, bad: dict[str, Any]) -> None:
    live = await given_session(service)
    goal = await goal_id(service, live.user_id, MEDITATE)
    before = await snapshot(service)

    answer = await deliver(
        service, REPORT_PATH, call_body(live.conversation_id, report(goal, **bad))
    )

    assert answer.status_code == 422, json.dumps(bad)[:80]
    assert await snapshot(service) == before


async def test_deleting_the_session_deletes_its_report_calls_and_changes(
    service: RunningService,
) -> None:
    live = await given_session(service)
    goal = await goal_id(service, live.user_id, MEDITATE)
    body = call_body(live.conversation_id, report(goal))
    assert (await deliver(service, REPORT_PATH, body)).status_code == 200
    assert (await snapshot(service))["reports"]

    deleted = await service.client.delete(
        f"/v1/sessions/{live.session_id}", headers=service.auth(live.user_id)
    )

    assert deleted.status_code == 204, deleted.text
    left = await snapshot(service)
    assert (left["reports"], left["calls"], left["changes"]) == ([], [], [])
