"""The README's example context is what the service really builds for the demo user."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from facetoface.app import build_state
from facetoface.auth.dev_issuer import DEV_OPERATOR_ID
from facetoface.config import Settings
from facetoface.db import Database, Identity, run_migrations
from facetoface.demo import demo_id, seed_demo_data
from facetoface.models import UserGoal
from tests.conftest import RunningService
from tests.support.factories import unused_tavus

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_context_example_is_current(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, environment="test", data_dir=tmp_path)  # type: ignore[call-arg]
    run_migrations(settings)

    async def build() -> str:
        db = Database(settings)
        try:
            async with db.transaction() as session:
                await seed_demo_data(session)
            services = await build_state(settings, db, unused_tavus())
            context, _ = await services.sessions.preview_context(Identity(demo_id("maria")), None)
            return context.text
        finally:
            await db.dispose()

    block = re.search(
        r"### What the mentor is told.*?```text\n(.*?)\n```", README.read_text(), re.S
    )
    assert block is not None, "the README lost its context example"
    assert block.group(1) == asyncio.run(build())


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
def database_settings(tmp_path: Path, sqlite_template: Path) -> dict[str, Any]:
    shutil.copy(sqlite_template, tmp_path / "facetoface.db")
    return {"data_dir": tmp_path}


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"session_participant_left_timeout_seconds": 1}


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

    room = started.json()["conversation_id"]
    await asyncio.to_thread(service.sim.join, room, "Maria")
    for text in ("I slept badly and work is piling up", "My manager keeps emailing me at midnight"):
        await asyncio.to_thread(service.sim.say, room, text)
    await asyncio.to_thread(service.sim.leave, room)
    detail: dict[str, Any] = {}
    for _ in range(200):
        detail = (
            await service.client.get(f"/v1/sessions/{started.json()['id']}", headers=maria)
        ).json()
        if detail["perception_analysis"] and detail["transcript"] and len(detail["events"]) == 4:
            break
        await asyncio.sleep(0.05)
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


def _undated(context: str) -> str:
    return _SESSION_DATE.sub(r"\1YYYY-MM-DD:", context)


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
    room = started["conversation_id"]
    await asyncio.to_thread(service.sim.join, room, "Maria")
    for text in ("I slept badly and work is piling up", "My manager keeps emailing me at midnight"):
        await asyncio.to_thread(service.sim.say, room, text)
    await asyncio.to_thread(service.sim.leave, room)
    for _ in range(200):
        detail = (await service.client.get(f"/v1/sessions/{started['id']}", headers=maria)).json()
        if detail["status"] == "completed" and detail["transcript"]:
            break
        await asyncio.sleep(0.05)
    assert detail["shutdown_reason"] == "participant_left_timeout", detail
    await asyncio.sleep(0.01)
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
