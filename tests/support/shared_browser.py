"""One Chromium per test worker for the console's and the drop-in's browser tests.

Starting Playwright's driver and a Chromium costs seconds; the browser itself holds nothing
of a test's (each test gets a fresh incognito context from `browser_page`, or makes its own
and closes it). The test packages that use it override `chromium` with `shared_chromium`:

    @pytest.fixture(scope="session")
    async def chromium() -> AsyncIterator[Any]:
        async with shared_chromium() as browser:
            yield browser
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from tests.support.browser import CHROMIUM_ARGS, _unavailable, find_chromium


@contextlib.asynccontextmanager
async def shared_chromium() -> AsyncIterator[Any]:
    """A headless Chromium (Playwright `Browser`), closed when the block ends; skipped loudly
    (failed under CI=true) when Chromium or Playwright is missing, as `chromium` is."""
    executable = find_chromium()
    if executable is None:
        _unavailable("no `chromium` executable (.ci/run installs Debian's `chromium`)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:  # pragma: no cover - a dev dependency
        _unavailable("the `playwright` package is not installed (make test installs it)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()
