"""Real Chromium for browser tests: Playwright for Python driving Debian's Chromium.

Playwright's own browser download cannot be used here (and must not be: a test tool fetching
a browser at run time is an install step CI cannot reproduce), so the tests drive the
system's Chromium through its executable path. `.ci/run` installs Debian's
`chromium-headless-shell` package when it is missing: Chromium's own headless build (the
engine, Blink and V8, of the same Chromium release, without the browser's window and tab
user interface), which Playwright itself uses for headless runs. The full `chromium` runs that
interface even headless (a renderer for its built-in pages among them): with it, the browser
tests' Chromium used 18 s of CPU for 8 tests, with the shell 8 s. Without the shell, the tests
use `chromium`; without either, they are skipped with a loud reason on a developer machine and
fail under `CI=true`.

Use the `browser_page` fixture (an async Playwright page in a fresh incognito context) and
`save_screenshot` to keep a PNG of what the test saw.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"

#: Where `save_screenshot` writes unless told otherwise (ignored by git).
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

#: Flags for a headless Chromium on a machine with a closed network: no sandbox (root in
#: CI containers), no GPU, and no background connections to Google's services (refused here).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]


def find_chromium() -> str | None:
    """The Chromium executable: `CHROMIUM_PATH`, else Debian's headless shell, else Debian's
    or Ubuntu's browser, on PATH."""
    explicit = os.environ.get("CHROMIUM_PATH")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in ("chromium-headless-shell", "chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"browser tests need Chromium under CI=true: {reason}")
    pytest.skip(f"BROWSER TESTS SKIPPED: {reason}")


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Any]:
    """The worker's headless Chromium (Playwright `Browser`): starting one costs seconds, and
    it holds nothing of a test's — each test gets a fresh incognito context
    (`browser_page`), or makes its own and closes it."""
    executable = find_chromium()
    if executable is None:
        _unavailable("no Chromium executable (.ci/run installs Debian's `chromium-headless-shell`)")
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


@pytest.fixture
async def browser_page(chromium: Any) -> AsyncIterator[Any]:
    """A page in a fresh browser context (no cookies or storage shared between tests)."""
    context = await chromium.new_context(viewport={"width": 1280, "height": 860})
    page = await context.new_page()
    try:
        yield page
    finally:
        await context.close()


async def save_screenshot(
    page: Any, name: str, directory: Path | None = None, *, full_page: bool = True
) -> Path:
    """Save a PNG of `page` (the whole page, or the viewport: what a modal dialog covers) as
    `<directory>/<name>.png` and return its path."""
    target = directory or SCREENSHOT_DIR
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    return path
