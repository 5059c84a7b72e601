"""The server's app freezes what its startup built (`gc.freeze`), so full collections stop
walking it; apps built by tests (many per process) do not."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from facetoface.app import create_app
from tests.conftest import app_role_url, base_settings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.parametrize("freeze_heap", [True, False])
async def test_only_the_servers_app_freezes_its_heap(
    freeze_heap: bool, database_settings: dict[str, Any], unfrozen: None
) -> None:
    settings = base_settings(
        database_url=app_role_url(database_settings["database_url"]),
        reconcile_interval_seconds=0,
    )
    app = create_app(settings, freeze_heap=freeze_heap)
    async with app.router.lifespan_context(app):
        frozen = gc.get_freeze_count()
    assert (frozen > 10_000) is freeze_heap, frozen
