"""Fixtures of the console's tests: one Chromium for the worker (see
tests/support/shared_browser.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.shared_browser import shared_chromium


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Any]:
    """The worker's Chromium; every test still gets a fresh context (`browser_page`)."""
    async with shared_chromium() as browser:
        yield browser
