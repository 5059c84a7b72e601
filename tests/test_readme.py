"""The README's example context is what the service really builds for the demo user."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from facetoface.app import build_services
from facetoface.config import Settings
from facetoface.db import Database, Identity, run_migrations
from facetoface.demo import demo_id, seed_demo_data
from tests.support.factories import unused_tavus

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_context_example_is_current(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, environment="test", data_dir=tmp_path)  # type: ignore[call-arg]
    run_migrations(settings)

    async def build() -> str:
        db = Database(settings)
        try:
            async with db.transaction() as session:
                await seed_demo_data(session)
            services = await build_services(settings, db, unused_tavus())
            context, _ = await services.sessions.preview_context(Identity(demo_id("maria")), None)
            return context.text
        finally:
            await db.dispose()

    block = re.search(
        r"### What the mentor is told.*?```text\n(.*?)\n```", README.read_text(), re.S
    )
    assert block is not None, "the README lost its context example"
    assert block.group(1) == asyncio.run(build())
