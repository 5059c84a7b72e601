"""The server's app freezes what its startup built (`gc.freeze`), so full collections stop
walking it; apps built by tests (many per process) do not."""

from __future__ import annotations

import gc
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from facetoface.app import create_app
from tests.conftest import base_settings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.parametrize("freeze_heap", [True, False])
async def test_only_the_servers_app_freezes_its_heap(
    freeze_heap: bool, sqlite_template: Path, tmp_path: Path, unfrozen: None
) -> None:
    shutil.copy(sqlite_template, tmp_path / "facetoface.db")
    settings = base_settings(
        database_url=f"sqlite:///{tmp_path / 'facetoface.db'}", reconcile_interval_seconds=0
    )
    app = create_app(settings, freeze_heap=freeze_heap)
    async with app.router.lifespan_context(app):
        frozen = gc.get_freeze_count()
    assert (frozen > 10_000) is freeze_heap, frozen
