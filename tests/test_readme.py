"""The README's example context is what the service really builds for the demo user."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update

from facetoface.auth.dev_issuer import DEV_OPERATOR_ID
from facetoface.db import Identity
from facetoface.demo import demo_id, seed_demo_data
from facetoface.models import UserGoal
from tests.conftest import RunningService
from tests.support.eventually import eventually

README = Path(__file__).resolve().parents[1] / "README.md"


async def test_readme_context_example_is_current(service: RunningService) -> None:
    async with service.db.transaction() as session:
        await seed_demo_data(session)
    context, _ = await service.state.sessions.preview_context(Identity(demo_id("maria")), None)

    block = re.search(
        r"### What the mentor is told.*?```text\n(.*?)\n```", README.read_text(), re.S
    )
    assert block is not None, "the README lost its context example"
    assert _without_goal_ids(block.group(1)) == _without_goal_ids(context.text)


# --- the walkthrough's example outputs ------------------------------------------------------
#: Values that differ from run to run (ids, times, addresses): compared by type only.
VOLATILE = {
    "id",
    "mentor_conversation_id",
    "conversation_id",
    "conversation_url",
    "started_at",
    "ended_at",
    "created_at",
    "duration_seconds",
    "replica_joined_at",
    "timestamp",
    "seconds_from_start",
    "duration",
    "inference_id",
    "occurred_at",
    "received_at",
    "request_id",
    "replica",
    "seconds_since_last_call",
}


def readme_example(name: str) -> Any:
    """The JSON block after `<!-- walkthrough: NAME -->` in the README."""
    block = re.search(
        rf"<!-- walkthrough: {re.escape(name)} -->\n```json\n(.*?)\n```", README.read_text(), re.S
    )
    assert block is not None, f"the README lost its {name!r} example"
    return json.loads(block.group(1))


def same_shape(documented: Any, real: Any, where: str = "$") -> None:
    """Same keys everywhere, same lengths of lists, same values except the volatile ones
    (those only of the same type, or both null)."""
    assert type(documented) is type(real), f"{where}: {documented!r} vs {real!r}"
    if isinstance(real, dict):
        assert set(documented) == set(real), f"{where}: keys {sorted(documented)} vs {sorted(real)}"
        for key in real:
            if key in VOLATILE:
                assert (documented[key] is None) == (real[key] is None), f"{where}.{key}"
                assert type(documented[key]) is type(real[key]) or isinstance(
                    real[key], int | float
                ), f"{where}.{key}"
            else:
                same_shape(documented[key], real[key], f"{where}.{key}")
    elif isinstance(real, list):
        assert len(documented) == len(real), f"{where}: {len(documented)} vs {len(real)} items"
        for index, (doc_item, real_item) in enumerate(zip(documented, real, strict=True)):
            same_shape(doc_item, real_item, f"{where}[{index}]")
    else:
        assert documented == real, f"{where}: README says {documented!r}, a real run {real!r}"


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    # The room shuts as soon as Maria leaves (the README's 30 s, without the wait): the
    # shutdown reason is the same, `participant_left_timeout`.
    return {"session_participant_left_timeout_seconds": 0}


async def talk_and_leave(service: RunningService, room: str) -> None:
    """The walkthrough's room: the replica is in, Maria joins, says its two lines, and leaves."""

    async def replica_joined() -> bool:
        conversation = await asyncio.to_thread(service.sim.conversation, room)
        return conversation["replica_joined_at"] is not None

    # Leaving before the replica joins shuts the room without a `system.replica_joined`
    # (as at Tavus): the walkthrough's room has one.
    await eventually(replica_joined, what="the replica in the room")
    await asyncio.to_thread(service.sim.join, room, "Maria")
    for line in ("I slept badly and work is piling up", "My manager keeps emailing me at midnight"):
        await asyncio.to_thread(service.sim.say, room, line)
    await asyncio.to_thread(service.sim.leave, room)


async def test_readme_walkthrough_outputs_are_what_a_real_run_gives(
    service: RunningService,
) -> None:
    """The walkthrough's requests, made for real: start, the room, the detail after the call,
    an end, a 409, an operator's read."""
    async with service.db.transaction() as session:
        await seed_demo_data(session)
    maria = service.auth(demo_id("maria"))

    started = await service.client.post("/v1/sessions", headers=maria)
    assert started.status_code == 201
    same_shape(readme_example("start"), started.json())

    await talk_and_leave(service, started.json()["conversation_id"])

    seen: dict[str, Any] = {}

    async def after_the_call() -> dict[str, Any] | None:
        response = await service.client.get(f"/v1/sessions/{started.json()['id']}", headers=maria)
        detail: dict[str, Any] = response.json()
        seen.update(detail)
        done = detail["perception_analysis"] and detail["transcript"] and len(detail["events"]) == 4
        return detail if done else None

    try:
        detail = await eventually(after_the_call, what="the session's detail after its callbacks")
    except AssertionError as waited:
        # What the session had and what the simulator delivered: which side fell short.
        room = await asyncio.to_thread(service.sim.conversation, started.json()["conversation_id"])
        deliveries = room.get("deliveries")
        events = [event.get("event_type") for event in seen.get("events", [])]
        raise AssertionError(f"{waited}; events {events}; deliveries {deliveries}") from None
    same_shape(readme_example("detail"), detail)

    # From here on no callbacks: they would race with the answers shown (a shutdown reason
    # merged into the end's answer, a replica joined before the 409).
    service.sim.set_config(callback_drop_probability=1.0)
    second = await service.client.post("/v1/sessions", headers=maria)
    ended = await service.client.post(f"/v1/sessions/{second.json()['id']}/end", headers=maria)
    same_shape(readme_example("end"), ended.json())

    third = await service.client.post("/v1/sessions", headers=maria)
    conflict = await service.client.post("/v1/sessions", headers=maria)
    assert conflict.status_code == 409
    same_shape(readme_example("conflict"), conflict.json())
    await service.client.post(f"/v1/sessions/{third.json()['id']}/end", headers=maria)

    operator = {"Authorization": f"Bearer {service.token(DEV_OPERATOR_ID, operator=True)}"}
    tavus = (await service.client.get("/v1/ops/tavus", headers=operator)).json()
    same_shape(readme_example("ops-tavus"), tavus)


#: A date in the "since last time" section: the day the test runs.
_SESSION_DATE = re.compile(r"(- Session on )\d{4}-\d{2}-\d{2}:")


_GOAL_ID = re.compile(r"goal_id [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _without_goal_ids(context: str) -> str:
    """The context with each goal's id (random per seeded database) left out."""
    return _GOAL_ID.sub("goal_id <id>", context)


def _undated(context: str) -> str:
    return _without_goal_ids(_SESSION_DATE.sub(r"\1YYYY-MM-DD:", context))


async def test_readme_second_session_context_is_what_a_real_run_gives(
    service: RunningService,
) -> None:
    """The README's second-session context: Maria's first session through the simulator's
    room (the walkthrough's two lines, then she leaves), her app recording progress on a goal,
    then what the mentor would be told (only the session's date differs from run to run)."""
    async with service.db.transaction() as session:
        await seed_demo_data(session)
    maria = service.auth(demo_id("maria"))
    started = (await service.client.post("/v1/sessions", headers=maria)).json()
    await talk_and_leave(service, started["conversation_id"])

    async def completed() -> dict[str, Any] | None:
        response = await service.client.get(f"/v1/sessions/{started['id']}", headers=maria)
        detail: dict[str, Any] = response.json()
        return detail if detail["status"] == "completed" and detail["transcript"] else None

    detail = await eventually(completed, what="the first session completed, with its transcript")
    assert detail["shutdown_reason"] == "participant_left_timeout", detail
    # The goal counts as updated since the session when the database's clock (its trigger
    # stamps `updated_at`) is past the session's end.
    ended_at = datetime.fromisoformat(detail["ended_at"])

    async def database_clock_past_the_end() -> bool:
        async with service.db.transaction() as session:
            now = (await session.execute(text("SELECT clock_timestamp()"))).scalar_one()
        return bool(now > ended_at)

    await eventually(database_clock_past_the_end, what="the database's clock past the end")
    async with service.db.transaction() as session:
        await session.execute(
            update(UserGoal)
            .where(
                UserGoal.user_id == demo_id("maria"),
                UserGoal.goal_text == "Meditate 10 minutes every morning",
            )
            .values(progress_percentage=50)
        )
    context = (await service.client.get("/v1/me/context", headers=maria)).json()["text"]

    block = re.search(
        r"<!-- context: second session -->\n```text\n(.*?)\n```", README.read_text(), re.S
    )
    assert block is not None, "the README lost its second-session context example"
    assert _undated(block.group(1)) == _undated(context), context


def test_every_console_screenshot_is_in_the_readme_and_in_docs() -> None:
    from tests.console.test_console_browser import SCREENSHOTS

    text = README.read_text()
    docs = README.parent / "docs" / "console"
    shown = set(re.findall(r"\(docs/console/([a-z-]+)\.png\)", text))
    assert shown == set(SCREENSHOTS)
    for name in SCREENSHOTS:
        png = docs / f"{name}.png"
        assert png.is_file(), f"{png} is missing: run `make screenshots`"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
