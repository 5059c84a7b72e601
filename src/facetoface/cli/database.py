"""Commands on the database and the deployment: migrate · doctor · reconcile · purge-user."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING, Annotated

import typer

from facetoface.cli.common import app, database, fail, read_settings
from facetoface.config import ConfigurationError, Settings, get_settings
from facetoface.errors import FacetofaceError
from facetoface.observability.logging import configure_logging

if TYPE_CHECKING:
    from facetoface.sessions import PurgeReport


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
    adopt: Annotated[
        bool,
        typer.Option(
            "--adopt",
            help="Take over a PostgreSQL database that already holds the origin app's tables "
            "and data (keeps every row; reports what it could not carry over), then migrate "
            "to head. Safe to repeat.",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --adopt: print the plan, change nothing.")
    ] = False,
) -> None:
    """Apply database migrations (to DATABASE_URL, or the embedded PostgreSQL)."""
    from facetoface.db import run_migrations
    from facetoface.db.embedded import provision_app_role

    settings = read_settings()
    if dry_run and not adopt:
        raise fail("--dry-run goes with --adopt")
    if adopt and revision != "head":
        raise fail("--adopt migrates to head; give no revision")
    with database(settings, "owner") as owner:
        if not adopt:
            before = asyncio.run(_current_revision(owner))
            run_migrations(owner, revision)
            provision_app_role(settings)
            after = asyncio.run(_current_revision(owner))
            if before == after:
                typer.echo(f"database migrated to {revision}: already at {after or 'base'}")
            else:
                typer.echo(
                    f"database migrated to {revision}: {before or 'empty'} -> {after or 'base'}"
                )
            return
        from facetoface.migrations.adopt import AdoptRefused, adopt_database

        try:
            report = adopt_database(owner, dry_run=dry_run)
        except AdoptRefused as exc:
            raise fail(f"cannot adopt this database: {exc}") from exc
        except FacetofaceError as exc:
            raise fail(f"cannot adopt this database now: {exc.detail}") from exc
        if not dry_run:
            provision_app_role(settings)
        print(report.render())


async def _current_revision(settings: Settings) -> str | None:
    from facetoface.db import Database

    db = Database(settings)
    try:
        current, _ = await db.migration_state()
        return current
    finally:
        await db.dispose()


@app.command()
def doctor(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON (for machines)")
    ] = False,
    fix: Annotated[
        bool,
        typer.Option(
            "--fix", help="First fix what can be fixed here: the mentor's tools (tavus setup)"
        ),
    ] = False,
) -> None:
    """Check this deployment end to end; print each check and how to fix what fails.

    Exit status 0 only when every check passed (or does not apply), 1 otherwise.
    """
    from facetoface.db.embedded import NotMigrated, database_settings
    from facetoface.doctor import diagnose_environment, render_json, render_text

    # Only errors on stderr: the report is the output, and log lines would only repeat it.
    configure_logging("ERROR", "console")
    if fix:
        _fix_tools()
    try:
        settings = get_settings()
    except ConfigurationError:
        report = asyncio.run(diagnose_environment())  # reports what is unreadable
    else:
        try:
            with database_settings(settings, "app") as resolved:
                report = asyncio.run(diagnose_environment(lambda: resolved))
        except NotMigrated:
            # The embedded database exists but was never migrated: the owner's view says so.
            with database_settings(settings, "owner") as resolved:
                report = asyncio.run(diagnose_environment(lambda: resolved))
        except ConfigurationError:
            report = asyncio.run(diagnose_environment(lambda: settings))
    print(render_json(report) if json_output else render_text(report))
    raise typer.Exit(0 if report.ok else 1)


def _fix_tools() -> None:
    """`doctor --fix`: provision the mentor's tools; a failure is left for the report."""
    from facetoface.cli.tavus import describe_setup, run_setup
    from facetoface.db.embedded import database_settings
    from facetoface.tavus import TavusError

    try:
        settings = Settings()
        with database_settings(settings, "app") as resolved:
            pals, result = asyncio.run(run_setup(resolved, replace=False))
    except (ValueError, ConfigurationError, TavusError, FacetofaceError) as exc:
        typer.echo(f"fix: the mentor's tools were not set up ({exc})", err=True)
        return
    typer.echo(f"fix: {describe_setup(pals, result)}", err=True)


@app.command("purge-user")
def purge_user(
    user_id: Annotated[str, typer.Option("--user-id", help="The user's UUID")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Delete everything stored about a user: conversations and memory stores at Tavus, then
    every row."""
    settings = read_settings()
    try:
        uid = uuid.UUID(user_id)
    except ValueError as exc:
        raise fail(f"--user-id {user_id!r} is not a UUID") from exc
    if not yes:
        typer.confirm(f"Delete all data of user {uid}, here and at Tavus?", abort=True)

    async def run(settings: Settings) -> PurgeReport:
        from facetoface.app import build_state, build_tavus_client
        from facetoface.db import Database

        db = Database(settings)
        tavus = build_tavus_client(settings)
        try:
            state = await build_state(settings, db, tavus)
            try:
                return await state.data_rights.purge_user(uid)
            finally:
                await state.compat.aclose()
        finally:
            await tavus.aclose()
            await db.dispose()

    with database(settings, "app") as resolved:
        try:
            report = asyncio.run(run(resolved))
        except FacetofaceError as exc:
            raise fail(exc.detail) from exc
    print(
        f"user {uid} purged ({report.conversations} conversation(s) and "
        f"{report.memory_stores} memory store(s) deleted at Tavus)"
    )


@app.command()
def reconcile() -> None:
    """Run one reconciler pass (what `serve` does periodically) and print what it did."""
    settings = read_settings()

    async def run(settings: Settings) -> dict[str, object]:
        from facetoface.app import build_state, build_tavus_client, check_migrations
        from facetoface.db import Database

        db = Database(settings)
        tavus = build_tavus_client(settings)
        try:
            await check_migrations(db)
            state = await build_state(settings, db, tavus)
            try:
                report = await state.reconciler.run_once()
            finally:
                await state.compat.aclose()
            return {"actions": dict(report.actions), "errors": report.errors}
        finally:
            await tavus.aclose()
            await db.dispose()

    with database(settings, "app") as resolved:
        try:
            result = asyncio.run(run(resolved))
        except ConfigurationError as exc:
            raise fail(str(exc)) from exc
    print(json.dumps(result, indent=2, sort_keys=True))
