"""The console joins a private room with its meeting token, in a real Chromium.

With `SESSION_PRIVATE_ROOMS` on, the console puts the token the API gave the owner into the
room's address (`?t=`); the simulator's room page joins with it — after a start, and after a
reload (the console reads the live session again for its token) — while the same room without
the token refuses to let anyone in.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import Page, expect

from facetoface.demo import demo_id, seed_demo_data
from tests.conftest import RunningService
from tests.console.test_console_browser import EXPECT_MS, RequestLog, sign_in_as

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"environment": "development", "session_private_rooms": True}


async def test_the_console_joins_a_private_room_with_its_token(
    service: RunningService, browser_page: Page, chromium: Any
) -> None:
    async with service.db.transaction() as session:
        await seed_demo_data(session)
    page = browser_page
    requests = RequestLog(page)
    await sign_in_as(page, service, "Maria Silva")
    await page.get_by_role("button", name="Start a session").click()

    frame = page.locator("#room")
    await expect(frame).to_have_attribute("src", re.compile(r"[?&]t="), timeout=EXPECT_MS)
    src = await frame.get_attribute("src")
    assert src is not None
    live = (
        await service.client.get("/v1/sessions?limit=1", headers=service.auth(demo_id("maria")))
    ).json()["items"][0]
    detail = (
        await service.client.get(
            f"/v1/sessions/{live['id']}", headers=service.auth(demo_id("maria"))
        )
    ).json()
    assert parse_qs(urlsplit(src).query) == {"t": [detail["meeting_token"]]}
    room = page.frame_locator("#room")
    await room.get_by_role("button", name="Join").click()
    await expect(room.get_by_text("Hello Maria Silva, I'm Sage.")).to_be_visible()

    # A reload: the console finds the live session and joins again with its token.
    await page.reload()
    await expect(frame).to_have_attribute("src", src, timeout=EXPECT_MS)
    await room.get_by_role("button", name="Join").click()
    await expect(room.get_by_role("button", name="Leave")).to_be_enabled()

    # The same room without the token: nobody gets in.
    stranger = await chromium.new_page()
    try:
        await stranger.goto(live["conversation_url"])
        await stranger.get_by_role("button", name="Join").click()
        await expect(
            stranger.get_by_text("You are not allowed to join this meeting.")
        ).to_be_visible()
    finally:
        await stranger.close()
    assert len(service.sim.room_state(live["conversation_id"])["participants"]) == 2

    await page.get_by_role("button", name="End session").click()
    await expect(page.locator("#ended-summary")).to_contain_text("has ended")
    requests.assert_own_origin_only(service)
