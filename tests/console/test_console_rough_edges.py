"""The console without rough edges, in a real Chromium against the service and the simulator.

A start shows its progress and the seconds it takes; one session has one status in the card
and in its history row; what the mentor knows is read again after a session (with "since last
time"); the opening written to the mentor is shown as what the mentor is told, not as if said
to the user; a session's details have an address that opens them, with back and forward; the
default mentor has one name on every screen; a 503's Retry-After holds Start back with a
countdown; a 409 leaves one primary action; operators see users by name and email, and the
sessions chart names its last day.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import Locator, Page, expect

from facetoface.auth.dev_issuer import DEV_OPERATOR_ID
from facetoface.demo import demo_id
from tests.conftest import RunningService
from tests.console.test_console_browser import (
    EXPECT_MS,
    RequestLog,
    api_start,
    seeded,
    shot,
    sign_in_as,
)
from tests.support.sessions import given_session

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

__all__ = ["seeded"]  # the fixture, used here by name

#: A CSS selector for the visible primary buttons (the default button style; the others say
#: secondary, danger or link).
PRIMARY = "button:not(.secondary):not(.danger):not(.link):visible, a.button:not(.secondary):visible"


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {
        "environment": "development",
        "session_participant_left_timeout_seconds": 3,
        # Tavus's concurrency limit answers 503 with this Retry-After: short, to count down.
        "tavus_concurrency_retry_after_seconds": 3,
    }


def section(page: Page, heading: str) -> Locator:
    """One section of "What your mentor knows", by its heading."""
    return page.locator("#context .context-section").filter(
        has=page.get_by_role("heading", name=heading, exact=True)
    )


async def test_a_session_from_start_to_details_without_rough_edges(
    seeded: RunningService, browser_page: Page
) -> None:
    service, page = seeded, browser_page
    requests = RequestLog(page)
    await sign_in_as(page, service, "Maria Silva")
    context = page.locator("#context")
    await expect(context.locator(".facts")).to_contain_text("Sage")

    # The opening is written to the mentor ("You are «Sage»…"): it is shown quoted, as what
    # the mentor is told, with a sentence saying so.
    opening = section(page, "Who meets whom")
    await expect(opening).to_contain_text(
        "Sage is told this first (these words are addressed to the mentor, not to you):"
    )
    await expect(opening.locator("blockquote")).to_contain_text("You are «Sage», meeting")
    assert await opening.locator(":scope > p", has_text="You are").count() == 0
    # This deployment keeps no memory at Tavus: the panel says so, with nothing to forget.
    memory = page.locator("#memory")
    await expect(memory).to_contain_text("This service does not keep a memory")
    await expect(memory.get_by_role("button", name="Forget everything…")).to_have_count(0)
    # Maria has no session yet: nothing "since last time".
    since = section(page, "Since last time")
    await expect(since).to_have_count(0)

    # A slow create at Tavus: the start shows a progress bar and its elapsed seconds. (The
    # mentor joins 5 s after the create: the session is "starting" until then.)
    service.sim.set_config(replica_join_delay_ms=5000)
    service.sim.add_fault("timeout", endpoint="create", delay_s=2.5, apply_first=True)
    await page.get_by_role("button", name="Start a session").click()
    progress = page.locator("#start-progress")
    await expect(progress).to_be_visible()
    await expect(progress.locator("progress")).to_be_visible()
    await expect(progress).to_contain_text(re.compile(r"Starting your session with Sage… [1-9] s"))
    await shot(page, "starting", full_page=False)
    room = page.frame_locator("#room")
    await expect(room.get_by_role("heading", name="Sage with Maria Silva")).to_be_visible(
        timeout=EXPECT_MS
    )
    await expect(progress).to_be_hidden()
    row = page.locator("#history-rows tr").first
    await expect(page.locator("#session-status")).to_have_text("starting")
    await expect(row.locator(".badge")).to_have_text("starting")

    # One status for one session: the card and its history row say the same.
    await room.get_by_role("button", name="Join").click()
    await room.get_by_label("What you say").fill("I slept badly and work is piling up")
    await room.get_by_role("button", name="Say").click()
    await expect(page.locator("#session-status")).to_have_text("live", timeout=EXPECT_MS)
    await expect(row.locator(".badge")).to_have_text("live")

    await page.get_by_role("button", name="End session").click()
    await expect(page.locator("#ended-summary")).to_contain_text("has ended: completed")
    await expect(row.locator(".badge")).to_have_text("completed")

    # What the mentor knows is read again: this session is now "since last time", and what
    # Maria said follows once the transcript is in — without a reload.
    await expect(since).to_contain_text("Session on", timeout=EXPECT_MS)
    await expect(since).to_contain_text(
        "What they said last, in their own words: «I slept badly and work is piling up»",
        timeout=EXPECT_MS * 2,
    )

    # The details have an address: it opens them on load, and back and forward follow it.
    session_id = await row.get_attribute("data-session-id")
    assert session_id
    await page.get_by_role("button", name="Read the transcript").click()
    dialog = page.locator("#detail")
    await expect(dialog).to_be_visible()
    address = f"{service.url}/console#session/{session_id}"
    # The address changes after the click's handler ran: waited for, not read at once.
    await expect(page).to_have_url(address)
    await page.reload()
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("#detail-title")).to_contain_text("Session with Sage")
    await expect(dialog.locator(".transcript")).to_contain_text("I slept badly")
    await dialog.get_by_role("button", name="Close").click()
    await expect(dialog).to_be_hidden()
    await expect(page).to_have_url(f"{service.url}/console")
    await page.go_back()
    await expect(dialog).to_be_visible()
    await expect(page).to_have_url(address)
    await page.go_forward()
    await expect(dialog).to_be_hidden()
    # A link to a session opens it in a new tab as well (the token is the tab's own).
    await page.goto(address)
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("#detail-title")).to_contain_text("Session with Sage")
    requests.assert_own_origin_only(service)

    # Signed out, the link leads through the sign-in to the session.
    await page.get_by_role("button", name="Close").click()
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{service.url}/console/sign-in")
    await page.goto(address)
    await page.wait_for_url(f"{service.url}/console/sign-in")
    await page.get_by_role("button", name=re.compile("^Maria Silva")).click()
    await page.wait_for_url(address)
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("#detail-title")).to_contain_text("Session with Sage")


async def test_the_default_mentor_has_one_name_on_every_screen(
    seeded: RunningService, browser_page: Page
) -> None:
    # Alex has no mentor of their own: the configured default is "your mentor" everywhere.
    service, page = seeded, browser_page
    await sign_in_as(page, service, "Alex Kim")
    names: list[str] = []
    context_mentor = page.locator("#context .facts dd").first
    await expect(context_mentor).not_to_have_text("")
    names.append(await context_mentor.inner_text())

    await page.get_by_role("button", name="Start a session").click()
    live_mentor = page.locator("#live-facts dd").first
    await expect(live_mentor).to_be_visible(timeout=EXPECT_MS)
    names.append(await live_mentor.inner_text())
    row_mentor = page.locator("#history-rows tr").first.locator("td").first.locator(".muted")
    await expect(row_mentor).not_to_have_text("")
    names.append(await row_mentor.inner_text())

    await page.get_by_role("button", name="End session").click()
    summary = page.locator("#ended-summary")
    await expect(summary).to_contain_text("has ended")
    match = re.match(r"Your session with (.+) has ended", await summary.inner_text())
    assert match
    names.append(match.group(1))
    await page.get_by_role("button", name="Read the transcript").click()
    title = page.locator("#detail-title")
    await expect(title).to_contain_text("Session with")
    match = re.match(r"Session with (.+) · ", await title.inner_text())
    assert match
    names.append(match.group(1))

    assert {name.lower() for name in names} == {"your mentor"}, names


async def test_at_phone_width_a_409_has_one_primary_action_and_a_503_counts_down(
    seeded: RunningService, chromium: Any
) -> None:
    service = seeded
    browser_context = await chromium.new_context(viewport={"width": 375, "height": 812})
    page = await browser_context.new_page()
    try:
        await sign_in_as(page, service, "Maria Silva")
        session = page.locator("#session")
        start = page.get_by_role("button", name="Start a session")
        await expect(start).to_be_visible()

        # Every video slot is busy: 503 with Retry-After 3. Start waits, counting down.
        service.sim.add_fault("concurrency_limit", endpoint="create")
        await start.click()
        await expect(page.locator("#session-error .problem")).to_contain_text(
            "All video mentor slots are busy"
        )
        wait = page.locator("#retry-wait")
        await expect(wait).to_contain_text(re.compile(r"You can try again in [1-3] s\."))
        await expect(start).to_be_disabled()
        await shot(page, "retry-wait-phone")
        await expect(wait).to_contain_text("You can try again in 1 s.", timeout=EXPECT_MS)
        await expect(wait).to_be_hidden(timeout=EXPECT_MS)
        await expect(start).to_be_enabled()

        # Meanwhile, on another device, Maria started a session: a 409 offers to rejoin, and
        # Rejoin is then the one primary button.
        await api_start(service, "maria")
        await start.click()
        rejoin = page.get_by_role("button", name="Rejoin your live session")
        await expect(rejoin).to_be_focused()
        primaries = session.locator(PRIMARY)
        await expect(primaries).to_have_count(1)
        await expect(primaries).to_have_text("Rejoin your live session")
        await rejoin.click()
        await expect(page.locator("#live")).to_be_visible()
        await expect(session.locator(PRIMARY)).to_have_count(0)  # End is the danger button
        await page.get_by_role("button", name="End session").click()
        await expect(page.locator("#ended-summary")).to_contain_text("has ended")
        await expect(session.locator(PRIMARY)).to_have_text("Start another session")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        await browser_context.close()


async def test_operators_see_users_by_name_and_the_chart_names_its_last_day(
    seeded: RunningService, browser_page: Page
) -> None:
    service, page = seeded, browser_page
    alex = await given_session(service, demo_id("alex"), age=timedelta(minutes=4))
    token = service.token(DEV_OPERATOR_ID, operator=True)
    stats = await service.client.get(
        "/v1/ops/stats?days=14", headers={"Authorization": f"Bearer {token}"}
    )
    last_day = stats.json()["sessions_per_day"][-1]["date"][5:]

    await sign_in_as(page, service, "Operator")
    row = page.locator(f'#live-rows tr[data-session-id="{alex.session_id}"]')
    await expect(row).to_contain_text("Alex Kim")
    await expect(row).to_contain_text("alex@example.com")
    await expect(row).to_contain_text(str(demo_id("alex")))  # the id stays, for support
    labels = page.locator("#per-day svg text.axis-label")
    await expect(labels.last).to_have_text(last_day)
    await expect(page.locator("#durations svg text.axis-label").last).to_have_text("30 min+")

    await row.get_by_role("button", name=f"End session {alex.session_id}").click()
    await expect(page.locator("#end-text")).to_contain_text("Alex Kim")
