"""Fixtures of the drop-in tests: the real supabase-js (Node) and its installed packages."""

from __future__ import annotations

import pytest

from tests.support.node import install_node_modules


@pytest.fixture(scope="session")
def node() -> str:
    """The `node` executable, with `tests/node/node_modules` installed from the lock file."""
    return install_node_modules()
