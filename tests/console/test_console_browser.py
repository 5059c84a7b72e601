"""The console in a real Chromium, against the real service and the simulator over HTTP.

A user signs in, sees what the mentor knows, starts a session, talks in the simulator's room
inside the page's iframe, leaves, and reads the transcript in the history; a second start is
refused with 409 and offers to rejoin; an operator watches and acts, and a user is refused the
operators' view; markup in a goal or in what was said shows as text. Every request every page
makes is recorded: the page talks to the service's origin only, and only the room's iframe
talks to the simulator's.

Screenshots go to test-artifacts/screenshots/; with `UPDATE_DOCS_SCREENSHOTS=1` (`make
screenshots`) also to docs/console/, which the README shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Frame, Locator, Page, Request, Route, expect

from facetoface.demo import demo_id, seed_demo_data
from facetoface.models import UserGoal
from tests.conftest import RunningService
from tests.support.browser import SCREENSHOT_DIR
from tests.support.eventually import eventually
from tests.support.sessions import given_session

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
#: Every screenshot these tests take; the README shows each (tests/test_readme.py checks).
SCREENSHOTS = {
    "sign-in": "the sign-in page in development: demo users, the operator, paste a token",
    "user-console": "a signed-in user: what the mentor knows, start a session, history",
    "live-session": "a live session: the simulator's room in the page, after a few words",
    "room-closing": "the room after the user left: the countdown to its closing",
    "session-detail": "a finished session: how it ended, the transcript and the timeline",
    "rejoin-phone": "phone width: a second start refused with 409, offering to rejoin",
    "live-session-phone": "phone width: the rejoined live session with its room",
    "ops": "the operators' view: Tavus, live sessions, charts, reconciler, callbacks",
    "ops-refused": "a user opening the operators' view: the 403 problem, nothing else",
    "starting": "a start under way: the progress bar and the seconds it has taken",
    "retry-wait-phone": "phone width: a 503 with Retry-After, Start held back with a countdown",
    "session-report": "a session's details: the mentor's report and what changed, with Undo",
    "session-report-phone": "phone width: the report and the changes",
    "memory": "what the mentor remembers: pinned facts, the learned profile and timeline",
    "memory-phone": "phone width: what the mentor remembers",
}
EXPECT_MS = 10_000
MARKUP = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    # Development: the demo sign-in exists. A short left timeout: the room closes 3 s after
    # the user leaves, as Tavus would after SESSION_PARTICIPANT_LEFT_TIMEOUT_SECONDS.
    return {
        "environment": "development",
        "session_participant_left_timeout_seconds": 3,
    }


@pytest.fixture
async def seeded(service: RunningService) -> RunningService:
    async with service.db.transaction() as session:
        await seed_demo_data(session)
    return service


async def shot(target: Page | Locator, name: str, *, full_page: bool = True) -> None:
    """A PNG of a page (whole, or the viewport a modal covers) or of one element."""
    assert name in SCREENSHOTS, name
    directories = [SCREENSHOT_DIR]
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        directories.append(DOCS_SCREENSHOTS)
    for directory in directories:
        directory.mkdir(parents=True, exist_ok=True)
        path = str(directory / f"{name}.png")
        if isinstance(target, Locator):
            await target.screenshot(path=path)
        else:
            await target.screenshot(path=path, full_page=full_page)


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class RequestLog:
    """Every request a page (and its frames) makes, with the frame it came from."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.requests: list[tuple[str, bool]] = []
        page.on("request", self._record)

    def _record(self, request: Request) -> None:
        try:
            frame = request.frame
        except Exception:  # a request of no frame (none expected): count it as the page's
            main = True
        else:
            main = frame.parent_frame is None
        self.requests.append((request.url, main))

    def assert_own_origin_only(self, service: RunningService, *, room: bool = True) -> None:
        """The page talks to the service only; only the room iframe talks to the simulator."""
        mine, theirs = origin(service.url), origin(service.sim.base_url)
        assert self.requests, "no request recorded"
        for url, main in self.requests:
            if url.startswith(("data:", "about:")):
                continue
            assert origin(url) == (mine if main else theirs), (url, main)
        loaded_room = any(not main for _, main in self.requests)
        assert loaded_room == room, "the room was (not) loaded"


async def sign_in_as(page: Page, service: RunningService, name: str) -> None:
    await page.goto(f"{service.url}/console/sign-in")
    await page.get_by_role("button", name=re.compile(f"^{re.escape(name)}")).click()
    await page.wait_for_url(re.compile(r"/console(/ops)?$"))


async def api_start(service: RunningService, user: str) -> dict[str, Any]:
    headers = service.auth(demo_id(user))
    response = await service.client.post("/v1/sessions", headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def room_frame(page: Page, service: RunningService) -> Frame:
    [frame] = [f for f in page.frames if f.url.startswith(service.sim.base_url)]
    return frame


#: The console's read of one session (its poll), not the list.
SESSION_READ = re.compile(r"/v1/sessions/[0-9a-f-]{36}$")


@contextlib.asynccontextmanager
async def console_reads_held(page: Page) -> AsyncIterator[None]:
    """Within the block the console's reads of its session are held (answered after it)."""
    release = asyncio.Event()

    async def hold(route: Route) -> None:
        await release.wait()
        await route.continue_()

    await page.route(SESSION_READ, hold)
    try:
        yield
    finally:
        release.set()
        await page.unroute_all(behavior="wait")  # the held reads go on, then no more holding


async def open_transcript(page: Page) -> None:
    """Open the details; the transcript follows the shutdown by a moment: check again."""
    dialog = page.locator("#detail")

    async def shown() -> bool:
        if await dialog.locator(".transcript li").count():
            return True
        again = dialog.get_by_role("button", name="Check again")
        if await again.count():
            await again.click()
        return False

    await eventually(shown, what="the transcript is shown")


async def test_a_user_session_through_the_room(seeded: RunningService, browser_page: Page) -> None:
    service, page = seeded, browser_page
    requests = RequestLog(page)
    await page.goto(f"{service.url}/console")
    await page.wait_for_url(f"{service.url}/console/sign-in")
    await expect(page.get_by_role("button", name=re.compile("^Maria Silva"))).to_be_visible()
    await shot(page, "sign-in")

    # Keyboard only: Tab to Maria and press Enter.
    for _ in range(10):
        await page.keyboard.press("Tab")
        focused = await page.evaluate("document.activeElement.textContent")
        if "Maria Silva" in focused:
            break
    else:
        raise AssertionError("Maria's sign-in button is not reachable with Tab")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{service.url}/console")

    context = page.locator("#context")
    await expect(context).to_contain_text("Meditate 10 minutes every morning")
    await expect(context.locator(".facts")).to_contain_text("Sage")
    await expect(context.locator(".facts")).to_contain_text("Portuguese")
    await expect(page.locator("#history-empty")).to_be_visible()
    await shot(page, "user-console")

    await page.get_by_role("button", name="Start a session").click()
    room = page.frame_locator("#room")
    await expect(room.get_by_role("heading", name="Sage with Maria Silva")).to_be_visible()
    await expect(room.get_by_text("Waiting for Maria Silva to join.")).to_be_visible()
    await expect(room.get_by_label("Your name")).to_have_value("Maria Silva")
    await room.get_by_role("button", name="Join").click()
    await expect(room.get_by_text("Hello Maria Silva, I'm Sage.")).to_be_visible()
    said = f"I slept badly {MARKUP} and work is piling up"
    await room.get_by_label("What you say").fill(said)
    await room.get_by_role("button", name="Say").click()
    await expect(room.get_by_text("Let's connect it to your goal")).to_be_visible()
    await expect(room.locator(".turn.user")).to_have_text(f"You {said}")
    await expect(page.locator("#session-status")).to_contain_text("live", timeout=EXPECT_MS)
    assert await room_frame(page, service).evaluate("window.__pwned") is None
    await shot(page, "live-session")

    # The console's poll would replace the room as soon as it sees the end: its reads of the
    # session wait until the room's own goodbye has been seen.
    async with console_reads_held(page):
        await room.get_by_role("button", name="Leave").click()
        closing = room.get_by_text(re.compile(r"This room closes in \d s\."))
        await expect(closing).to_be_visible()
        await shot(page.locator("#room"), "room-closing")
        await expect(room.get_by_text("This call has ended.")).to_be_visible(timeout=EXPECT_MS)
        await expect(room.get_by_text("everyone left, and the room closed")).to_be_visible()

    # The console notices without a reload: the session completed, and why.
    summary = page.locator("#ended-summary")
    await expect(summary).to_contain_text("has ended: completed", timeout=EXPECT_MS)
    await expect(summary).to_contain_text("Everyone left; the room closed")
    row = page.locator("#history-rows tr").first
    await expect(row).to_contain_text("completed")
    await expect(row).to_contain_text("Everyone left; the room closed")

    await page.get_by_role("button", name="Read the transcript").click()
    await open_transcript(page)
    dialog = page.locator("#detail")
    await expect(dialog.locator(".transcript li.user .said")).to_have_text(said)
    await expect(dialog.locator(".transcript li.assistant").first).to_contain_text(
        "Hello Maria Silva, I'm Sage."
    )
    await expect(dialog.locator(".timeline")).to_contain_text("The room shut down")
    await expect(dialog).to_contain_text("participant_left_timeout")
    text = await dialog.inner_text()
    assert "You are «Sage»" not in text  # the mentor's instructions are not in the call
    assert await dialog.locator("script, img").count() == 0
    assert await page.evaluate("window.__pwned") is None
    await shot(page, "session-detail", full_page=False)

    # Delete it, after a confirmation (Tavus first, then every row of ours).
    await dialog.get_by_role("button", name="Delete this session…").click()
    confirm = page.locator("#confirm-delete")
    await expect(confirm).to_be_visible()
    await expect(confirm.get_by_role("button", name="Keep it")).to_be_focused()
    await confirm.get_by_role("button", name="Delete", exact=True).click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#history-empty")).to_be_visible()
    listed = await service.client.get("/v1/sessions", headers=service.auth(demo_id("maria")))
    assert listed.json()["items"] == []

    requests.assert_own_origin_only(service)


async def test_a_second_start_offers_to_rejoin_the_live_session(
    seeded: RunningService, chromium: Any
) -> None:
    service = seeded
    context = await chromium.new_context(viewport={"width": 375, "height": 812})
    page = await context.new_page()
    try:
        requests = RequestLog(page)
        await sign_in_as(page, service, "Maria Silva")
        await expect(page.get_by_role("button", name="Start a session")).to_be_visible()
        # Meanwhile, on another device, Maria started a session.
        live = await api_start(service, "maria")

        await page.get_by_role("button", name="Start a session").click()

        problem = page.locator("#session-error .problem")
        await expect(problem).to_contain_text("A session is already live")
        await expect(problem).to_contain_text(
            "End the live session (or rejoin it) before starting another."
        )
        await expect(problem).to_contain_text("session_already_active")
        rejoin = page.get_by_role("button", name="Rejoin your live session")
        await expect(rejoin).to_be_focused()
        await shot(page, "rejoin-phone")
        await rejoin.click()
        await expect(page.locator("#room")).to_have_attribute("src", live["conversation_url"])
        room = page.frame_locator("#room")
        await expect(room.get_by_role("heading", name="Sage with Maria Silva")).to_be_visible()
        await expect(page.locator("#session-error .problem")).to_have_count(0)
        # Usable at phone width: nothing wider than the screen.
        assert await page.evaluate("document.documentElement.scrollWidth") <= 375
        await shot(page, "live-session-phone")

        await page.get_by_role("button", name="End session").click()
        await expect(page.locator("#ended-summary")).to_contain_text("has ended: completed")
        ended = await service.client.get(
            f"/v1/sessions/{live['id']}", headers=service.auth(demo_id("maria"))
        )
        assert ended.json()["status"] == "completed"
        requests.assert_own_origin_only(service)
    finally:
        await context.close()


async def test_operators_watch_and_act_and_users_are_refused(
    seeded: RunningService, browser_page: Page
) -> None:
    service, page = seeded, browser_page
    requests = RequestLog(page)
    finished = await api_start(service, "sam")
    await service.client.post(
        f"/v1/sessions/{finished['id']}/end", headers=service.auth(demo_id("sam"))
    )
    # Alex's has been running for 11 of its 15 minutes; and one start failed at Tavus.
    alex = await given_session(service, demo_id("alex"), age=timedelta(minutes=11))
    assert alex.conversation_id is not None
    stuck = {"id": str(alex.session_id), "conversation_id": alex.conversation_id}
    service.sim.add_fault(
        "status", endpoint="create", status=400, body={"message": "Invalid persona_id"}
    )
    failed = await service.client.post("/v1/sessions", headers=service.auth(demo_id("maria")))
    assert failed.status_code == 502

    # A user opening the operators' view gets the 403 problem and sees nothing of anyone.
    await sign_in_as(page, service, "Maria Silva")
    await page.goto(f"{service.url}/console/ops")
    refusal = page.locator("#page-error .problem")
    await expect(refusal).to_contain_text("Operator role required")
    await expect(refusal).to_contain_text('app_metadata.facetoface_role is "operator"')
    await expect(page.locator("#ops")).to_be_hidden()
    assert stuck["id"] not in await page.content()
    await shot(page, "ops-refused")

    await page.get_by_role("button", name="Sign in as someone else").click()
    await page.get_by_role("button", name=re.compile("^Operator")).click()
    await page.wait_for_url(f"{service.url}/console/ops")
    await expect(page.locator("#tavus")).to_contain_text("closed")
    live_row = page.locator(f'#live-rows tr[data-session-id="{stuck["id"]}"]')
    await expect(live_row).to_contain_text(str(demo_id("alex")))
    await expect(live_row).to_contain_text(re.compile(r"11 min( \d+ s)? of 15 min"))
    # One completed, one failed and one live session: three bar parts (Maria's failed start
    # counts on her own date, São Paulo's, which may still be yesterday's); one ended session,
    # in under a minute.
    await expect(page.locator("#per-day svg rect")).to_have_count(3)
    await expect(page.locator("#durations svg rect")).to_have_count(1)
    await expect(page.locator("#callbacks-rows")).to_contain_text("system.replica_joined")
    await expect(page.locator("#failures-rows")).to_contain_text("tavus_rejected")
    await expect(page.locator("#failures-rows")).to_contain_text("never created at Tavus")

    await page.get_by_role("button", name="Run a pass now").click()
    await expect(page.locator("#reconcile-result")).to_contain_text("Pass finished")
    await expect(page.locator("#passes-rows tr").first).to_be_visible()
    await shot(page, "ops")

    await live_row.get_by_role("button", name=f"End session {stuck['id']}").click()
    await expect(page.locator("#confirm-end")).to_contain_text(str(demo_id("alex")))
    await page.get_by_role("button", name="End the session").click()
    await expect(live_row).to_have_count(0)
    await expect(page.locator("#live-empty")).to_be_visible()
    ended = await service.client.get(
        f"/v1/sessions/{stuck['id']}", headers=service.auth(demo_id("alex"))
    )
    assert ended.json()["status"] == "completed"
    assert service.sim.conversation(stuck["conversation_id"])["status"] == "ended"
    requests.assert_own_origin_only(service, room=False)


async def test_markup_in_a_goal_shows_as_text(seeded: RunningService, browser_page: Page) -> None:
    service, page = seeded, browser_page
    async with service.db.transaction() as session:
        session.add(
            UserGoal(
                id=uuid.uuid4(),
                user_id=demo_id("maria"),
                goal_text=f"{MARKUP} Sleep by 23:00",
                target_date=date(2026, 1, 1),  # soonest: listed first
            )
        )
    requests = RequestLog(page)

    await sign_in_as(page, service, "Maria Silva")

    goals = page.locator("#context .context-section", has_text="Active goals")
    await expect(goals.locator("li").first).to_contain_text(f"«{MARKUP} Sleep by 23:00»")
    assert await page.locator("#context script, #context img").count() == 0
    assert await page.evaluate("window.__pwned") is None
    # Nor in the room: the mentor names the goal in its answer, as text.
    await page.get_by_role("button", name="Start a session").click()
    room = page.frame_locator("#room")
    await room.get_by_role("button", name="Join").click()
    await room.get_by_label("What you say").fill("hello")
    await room.get_by_role("button", name="Say").click()
    # (shortened to the mentor's 60 characters)
    await expect(room.locator(".turn.assistant").last).to_contain_text(f"«{MARKUP[:40]}")
    assert await room.locator("#log script, #log img").count() == 0
    assert await room_frame(page, service).evaluate("window.__pwned") is None
    await page.get_by_role("button", name="End session").click()
    await expect(page.locator("#ended-summary")).to_contain_text("has ended")
    assert not any("/x" in url for url, _ in requests.requests)
    requests.assert_own_origin_only(service)
