"""Commands on the Tavus account: `facetoface tavus setup` (the mentor's tools)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from facetoface.cli.common import app, database, fail, read_settings
from facetoface.config import ConfigurationError, Settings

if TYPE_CHECKING:
    from facetoface.tavus.mentor_tools import SetupResult

tavus_app = typer.Typer(help="Set up this deployment's side of the Tavus account.")
app.add_typer(tavus_app, name="tavus")


async def run_setup(settings: Settings, *, replace: bool) -> tuple[list[str], SetupResult]:
    """Provision the mentor's tools (what `tavus setup` and `doctor --fix` do)."""
    from facetoface.app import build_tavus_client
    from facetoface.db import Database
    from facetoface.tools.setup import setup_tools

    db = Database(settings)
    tavus = build_tavus_client(settings)
    try:
        return await setup_tools(settings, db, tavus, replace=replace)
    finally:
        await tavus.aclose()
        await db.dispose()


def describe_setup(pals: list[str], result: SetupResult) -> str:
    """What a setup did, in a few lines."""
    lines = []
    if result.created:
        lines.append(f"registered: {', '.join(result.created)}")
    if result.replaced:
        lines.append(f"replaced: {', '.join(result.replaced)}")
    for pal, names in result.attached.items():
        lines.append(f"attached to PAL {pal}: {', '.join(names)}")
    if not result.changed:
        lines.append(f"the mentor's tools are registered and attached to {', '.join(pals)}")
    return "\n".join(lines)


@tavus_app.command("setup")
def setup(
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Register every tool anew (after changing TAVUS_TOOL_SECRET: Tavus never "
            "shows a tool's secret, so a changed one cannot be detected)",
        ),
    ] = False,
) -> None:
    """Register the mentor's tools at Tavus (update_goal_progress, add_goal, remember, and the
    post-call session_report) and attach them to every mentor's PAL. Idempotent: a second run
    changes nothing."""
    from facetoface.tavus import TavusError

    settings = read_settings()
    with database(settings, "app") as resolved:
        try:
            pals, result = asyncio.run(run_setup(resolved, replace=replace))
        except ConfigurationError as exc:
            raise fail(str(exc)) from exc
        except TavusError as exc:
            raise fail(f"Tavus: {exc}") from exc
    print(describe_setup(pals, result))
