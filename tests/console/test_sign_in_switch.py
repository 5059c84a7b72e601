"""A link never switches the signed-in user silently, in a real Chromium.

`/console/sign-in#access_token=<token>` (or `/console#…`) is how an app opens the console
signed in. While someone is signed in, a link carrying another user's token — planted in a
message, or opened from another account's app — asks which user to be, and keeps the
signed-in one unless told otherwise.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.conftest import RunningService
from tests.console.test_console_browser import EXPECT_MS
from tests.support.factories import create_user

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


async def signed_in_token(page: Page) -> str | None:
    token: str | None = await page.evaluate(
        "() => sessionStorage.getItem('facetoface.access_token')"
    )
    return token


async def test_a_link_with_another_users_token_asks_before_switching(
    service: RunningService, browser_page: Page
) -> None:
    page = browser_page
    maria = service.token(await create_user(service.db), email="maria@example.com")
    joao = service.token(
        await create_user(service.db, full_name="João Souza"), email="joao@example.com"
    )
    console = re.compile(re.escape(f"{service.url}/console") + r"$")
    question = page.get_by_role("heading", name="Switch user?")

    await page.goto(f"{service.url}/console/sign-in#access_token={maria}")
    await page.wait_for_url(console, timeout=EXPECT_MS)
    assert await signed_in_token(page) == maria

    # Another user's link while Maria is signed in: asked, Maria kept until she answers.
    await page.goto(f"{service.url}/console/sign-in#access_token={joao}")
    await expect(question).to_be_visible(timeout=EXPECT_MS)
    await expect(page.locator("#switch-current")).to_have_text("maria@example.com")
    await expect(page.locator("#switch-offered")).to_have_text("joao@example.com")
    assert "access_token" not in page.url
    assert await signed_in_token(page) == maria
    await page.get_by_role("button", name=re.compile(r"^Stay signed in as")).click()
    await page.wait_for_url(console, timeout=EXPECT_MS)
    assert await signed_in_token(page) == maria

    # The console's own address with such a link asks the same way; switching is a choice.
    # (Arriving from elsewhere in the same tab, as a clicked link does: a change of the
    # fragment alone would not load the page again.)
    await page.goto("about:blank")
    await page.goto(f"{service.url}/console#access_token={joao}")
    await expect(question).to_be_visible(timeout=EXPECT_MS)
    assert await signed_in_token(page) == maria
    await page.get_by_role("button", name=re.compile(r"^Sign in as")).click()
    await page.wait_for_url(console, timeout=EXPECT_MS)
    assert await signed_in_token(page) == joao


async def test_an_unconfirmed_start_is_explained_plainly(
    service: RunningService, browser_page: Page
) -> None:
    """Tavus did not confirm the create: the page says there is nothing to join yet, that it
    is being checked, and when to try again — not a bare error."""
    page = browser_page
    maria = service.token(await create_user(service.db), email="maria@example.com")
    await page.goto(f"{service.url}/console#access_token={maria}")
    service.sim.add_fault(endpoint="create", kind="status", status=502)

    await page.get_by_role("button", name="Start a session").click()

    explained = page.locator("#session-error .outcome-unknown")
    await expect(explained).to_contain_text("no room to join", timeout=EXPECT_MS)
    await expect(explained).to_contain_text("try again in about 1 min")
