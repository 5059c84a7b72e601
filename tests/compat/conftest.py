"""Fixtures of the drop-in tests: the real supabase-js (Node) and its installed packages, and
one Chromium for the worker (tests/support/shared_browser.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.node import install_node_modules
from tests.support.shared_browser import shared_chromium


@pytest.fixture(scope="session")
def node() -> str:
    """The `node` executable, with `tests/node/node_modules` installed from the lock file."""
    return install_node_modules()


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Any]:
    """The worker's Chromium; every test still gets a fresh context (`browser_page`)."""
    async with shared_chromium() as browser:
        yield browser
