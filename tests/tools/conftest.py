"""The service's settings for a test: its `overrides` parameter, if it has one."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def service_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    callspec = getattr(request.node, "callspec", None)
    return dict(callspec.params.get("overrides", {})) if callspec else {}
