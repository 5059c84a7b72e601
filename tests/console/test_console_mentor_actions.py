"""The mentor's actions in the console, in a real Chromium through the simulator (issue 19).

Maria says "I'm at 60 % on meditating" and "remember that my dog is called Rex" in the room:
the session's details list the change under "What changed in this session" and Undo restores
the goal (what the mentor knows follows); the mentor's report arrives with summary, next steps,
duration and cost; "What your mentor remembers" lists the pinned fact and what was learned,
Forget removes it, Forget everything deletes the rest, and the opt-out stays.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from playwright.async_api import Page, expect

from facetoface.demo import demo_id
from facetoface.tools.setup import setup_tools
from tests.conftest import RunningService
from tests.console.test_console_browser import EXPECT_MS, RequestLog, seeded, shot, sign_in_as
from tests.support.eventually import eventually
from tests.support.tool_calls import goal_id, progress

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

__all__ = ["seeded"]  # the fixture, used here by name

MEDITATE = "Meditate 10 minutes every morning"


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {
        "environment": "development",
        "session_participant_left_timeout_seconds": 3,
        "tavus_memory": "participant",
        "tavus_cost_per_minute": Decimal("0.30"),
    }


async def test_the_mentors_changes_report_and_memory_in_the_console(
    seeded: RunningService, browser_page: Page
) -> None:
    service, page = seeded, browser_page
    await setup_tools(service.settings, service.db, service.state.tavus)
    maria = demo_id("maria")
    meditate = await goal_id(service, maria, MEDITATE)
    requests = RequestLog(page)
    await sign_in_as(page, service, "Maria Silva")

    memory = page.locator("#memory")
    await expect(memory.get_by_label("Let my mentor remember me")).to_be_checked()
    await expect(memory).to_contain_text("Nothing pinned.")

    await page.get_by_role("button", name="Start a session").click()
    room = page.frame_locator("#room")
    await room.get_by_role("button", name="Join").click()
    answers = room.locator(".turn.assistant")
    await expect(answers).to_have_count(1)  # the greeting
    for said, answer in (
        ("I'm at 60 % on meditating", f"Updated «{MEDITATE}» to 60 %"),
        ("remember that my dog is called Rex", "I'll remember: «my dog is called Rex»"),
        ("I live in Lisbon, and I love hiking", ""),  # learned (not pinned) from the call
    ):
        count = await answers.count()
        await room.get_by_label("What you say").fill(said)
        await room.get_by_role("button", name="Say").click()
        await expect(answers).to_have_count(count + 1)
        await expect(answers.last).to_contain_text(answer)
    assert await progress(service, meditate) == 60
    await page.get_by_role("button", name="End session").click()
    await expect(page.locator("#ended-summary")).to_contain_text("has ended: completed")

    # What the mentor remembers is read again after the session: the pinned fact, and what
    # was learned from the call (once the store has consolidated it).
    pinned = memory.locator("ul.pinned li")
    await expect(pinned).to_have_count(1, timeout=EXPECT_MS)
    await expect(pinned).to_contain_text("my dog is called Rex")

    # The details: the report (after the call), and the change with Undo.
    await page.get_by_role("button", name="Read the transcript").click()
    dialog = page.locator("#detail")
    report = dialog.locator("section.report")

    async def reported() -> bool:
        if await report.locator(".summary").count():
            return True
        again = report.get_by_role("button", name="Check for the report")
        if await again.count():
            await again.click()
        return False

    await eventually(reported, what="the report is shown")
    await expect(report.locator(".summary")).not_to_have_text("")
    detail = (
        await service.client.get(
            f"/v1/sessions/{await dialog_session(page)}", headers=service.auth(maria)
        )
    ).json()
    body = detail["report"]
    await expect(report.locator(".summary")).to_have_text(body["summary"])
    for step in body["next_steps"]:
        await expect(report.locator(".next-steps")).to_contain_text(step)
    await expect(report).to_contain_text(f"{body['estimated_cost']:.2f}")
    await expect(report).to_contain_text("Billed duration")

    changes = dialog.locator("section.changes")
    change = changes.locator("li", has_text=f"«{MEDITATE}»: 40% → 60%")
    await expect(change).to_contain_text("during the call")
    await shot(page, "session-report", full_page=False)
    await page.set_viewport_size({"width": 375, "height": 812})
    await changes.scroll_into_view_if_needed()
    await shot(page, "session-report-phone", full_page=False)
    await page.set_viewport_size({"width": 1280, "height": 860})

    await change.get_by_role("button", name=re.compile("^Undo")).click()
    await expect(change.locator(".badge")).to_contain_text("undone")
    await expect(change.get_by_role("button")).to_have_count(0)
    assert await progress(service, meditate) == 40
    # What the mentor knows follows: the goal is back at 40 %, and the undo is said.
    goals = page.locator("#context .context-section", has_text="Active goals")
    await expect(goals).to_contain_text(f"«{MEDITATE}» (mindfulness goal, 40% done")
    # ... and the lines written to the mentor read the right way round for the user: the
    # mentor did it, the user undid it; the goal ids the mentor's tools need are left out.
    since = page.locator("#context .context-section", has_text="Since last time")
    await expect(since).to_contain_text(
        f"Last session Sage moved «{MEDITATE}» from 40% to 60%; you undid this"
    )
    assert "goal_id" not in await goals.inner_text()
    assert "the user undid" not in await since.inner_text()
    await dialog.get_by_role("button", name="Close").click()

    learned = memory.locator('dl[aria-label="Learned profile"]')
    await expect(learned).to_contain_text("Lisbon", timeout=EXPECT_MS)
    await expect(learned).to_contain_text("hiking")
    await expect(memory.locator('ol[aria-label="Learned timeline"] li')).to_have_count(1)
    await page.mouse.move(0, 0)  # no button drawn hovered
    await shot(memory, "memory")
    await page.set_viewport_size({"width": 375, "height": 812})
    await shot(memory, "memory-phone")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    await page.set_viewport_size({"width": 1280, "height": 860})

    # Forget one fact: gone here and from the store.
    await pinned.get_by_role("button", name="Forget “my dog is called Rex”").click()
    await expect(memory).to_contain_text("Nothing pinned.")
    read = await service.client.get("/v1/me/memory", headers=service.auth(maria))
    assert read.json()["pinned"] == []

    # Forget everything, after a confirmation: the learned memory goes too.
    await memory.get_by_role("button", name="Forget everything…").click()
    confirm = page.locator("#confirm-forget-all")
    await expect(confirm.get_by_role("button", name="Keep it")).to_be_focused()
    await confirm.get_by_role("button", name="Forget everything", exact=True).click()
    await expect(confirm).to_be_hidden()
    await expect(learned).to_have_count(0)
    await expect(memory).to_contain_text("No session remembered yet.")

    # The opt-out stays: turning memory off is kept, and said.
    await memory.get_by_label("Let my mentor remember me").uncheck()
    await expect(memory).to_contain_text("Your mentor remembers nothing new")
    prefs = await service.client.get("/v1/me/preferences", headers=service.auth(maria))
    assert prefs.json()["mentor_memory"] is False
    await page.reload()
    toggle = page.locator("#memory").get_by_label("Let my mentor remember me")
    await expect(toggle).not_to_be_checked()
    requests.assert_own_origin_only(service)


async def dialog_session(page: Page) -> str:
    """The id of the session the details show (from their address)."""
    match = re.search(r"#session/([0-9a-f-]{36})$", page.url)
    assert match, page.url
    return match.group(1)
