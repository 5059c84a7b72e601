"""The `facetoface` command: serve · migrate · doctor · token · seed-demo · reconcile ·
tavus-sim."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import sys
import uuid
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any

import structlog
import typer
import uvicorn

from facetoface.config import ConfigurationError, Settings, get_settings
from facetoface.errors import FacetofaceError
from facetoface.observability.logging import configure_logging

if TYPE_CHECKING:
    from facetoface.sessions.service import PurgeReport

app = typer.Typer(
    name="facetoface",
    help="Backend for AI video mentor sessions on Tavus CVI.",
    no_args_is_help=True,
    add_completion=False,
)
log = structlog.get_logger("facetoface.cli")


def _settings() -> Settings:
    try:
        settings = get_settings()
    except ValueError as exc:  # pydantic's ValidationError names the bad variable
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc
    configure_logging(settings.log_level, settings.effective_log_format)
    return settings


def _fail(message: str) -> typer.Exit:
    typer.echo(f"facetoface: {message}", err=True)
    return typer.Exit(2)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: PORT)")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes sharing the port (one event loop, one core each); "
            "metrics are merged across them",
        ),
    ] = 1,
) -> None:
    """Run the HTTP service (and, without TAVUS_API_KEY in development, the simulator)."""
    settings = _settings()
    try:
        settings.check_production_ready()
    except ConfigurationError as exc:
        raise _fail(str(exc)) from exc
    host, port = host or settings.host, port or settings.port
    if workers == 1:
        _run_fast(_serve(settings, host, port))
        return
    if settings.uses_simulator:
        raise _fail(
            "--workers needs the real Tavus API (TAVUS_API_KEY): the embedded simulator keeps "
            "its conversations in one process"
        )
    asyncio.run(_check_database(settings))
    _serve_workers(settings, host, port, workers)


def _serve_workers(settings: Settings, host: str, port: int, workers: int) -> None:
    """N uvicorn workers on one port. Each is a process of its own (one core each): what a
    CPU-bound single event loop needs to use a multi-core machine. Their Prometheus samples
    go to one directory (PROMETHEUS_MULTIPROC_DIR; a fresh temporary one unless set — emptied
    here when set), and any worker's `/metrics` serves the merged view."""
    import shutil
    import tempfile
    from pathlib import Path

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        for entry in Path(directory).glob("*.db"):
            entry.unlink()
    else:
        directory = tempfile.mkdtemp(prefix="facetoface-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    log.info("serve.workers", workers=workers, metrics_dir=directory)
    try:
        uvicorn.run(
            "facetoface.app:create_app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            **_server_options(settings),
        )
    finally:
        if "facetoface-metrics-" in directory:
            shutil.rmtree(directory, ignore_errors=True)


def _run_fast(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed (uvicorn[standard] brings it): the benchmark
    measured 15-22 % less CPU per request than on the standard event loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


#: Set in the embedded simulator's server task: its uvicorn start/stop lines would repeat the
#: service's ("Started server process" twice); `tavus_sim.embedded` says where it listens.
_EMBEDDED = contextvars.ContextVar("facetoface_embedded_server", default=False)


class _QuietEmbeddedServer(logging.Filter):
    """Drops uvicorn's informational lines logged from the embedded simulator's task."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not _EMBEDDED.get()


def _server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the service, one worker or several."""
    from facetoface.limits import head_limited_http_protocol

    return {
        "http": head_limited_http_protocol(settings.http_max_header_bytes),
        # Our logging is configured already; uvicorn's access log would print raw paths
        # (callback paths carry secret tokens): `RequestContextMiddleware` logs instead.
        "log_config": None,
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
    }


def server_config(app: Any, settings: Settings, host: str, port: int) -> uvicorn.Config:
    """How `serve` runs the app under uvicorn (the tests run it the same way)."""
    return uvicorn.Config(app, host=host, port=port, **_server_options(settings))


async def _check_database(settings: Settings) -> None:
    """Refuse to serve on an unreachable or unmigrated database (exit 2, with the fix)."""
    from facetoface.app import UnmigratedDatabase, check_migrations
    from facetoface.db import Database

    db = Database(settings)
    try:
        await check_migrations(db)
    except UnmigratedDatabase as exc:
        raise _fail(str(exc)) from exc
    except Exception as exc:
        raise _fail(f"cannot reach the database: {type(exc).__name__}: {exc}") from exc
    finally:
        await db.dispose()


async def _serve(settings: Settings, host: str, port: int) -> None:
    from facetoface.app import create_app

    await _check_database(settings)

    main_server = uvicorn.Server(
        server_config(create_app(settings, freeze_heap=True), settings, host, port)
    )
    tasks = [asyncio.ensure_future(main_server.serve())]
    if settings.uses_simulator:
        from facetoface.tavus_sim import SimConfig, create_sim_app

        sim_config = SimConfig(latency_ms=settings.tavus_sim_latency_ms)
        sim_server = uvicorn.Server(
            uvicorn.Config(
                create_sim_app(sim_config),
                host="127.0.0.1",
                port=settings.tavus_sim_port,
                log_config=None,
                access_log=False,
            )
        )
        logging.getLogger("uvicorn.error").addFilter(_QuietEmbeddedServer())
        quiet = contextvars.copy_context()
        quiet.run(_EMBEDDED.set, True)
        tasks.append(asyncio.get_running_loop().create_task(sim_server.serve(), context=quiet))
        log.info(
            "tavus_sim.embedded",
            url=f"http://127.0.0.1:{settings.tavus_sim_port}",
            note="no TAVUS_API_KEY: using the built-in Tavus simulator",
        )
    await asyncio.gather(*tasks)


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
    """Apply database migrations (SQLite or PostgreSQL, from DATABASE_URL)."""
    from facetoface.db import run_migrations

    settings = _settings()
    if not adopt:
        if dry_run:
            raise _fail("--dry-run goes with --adopt")
        before = asyncio.run(_current_revision(settings))
        run_migrations(settings, revision)
        after = asyncio.run(_current_revision(settings))
        if before == after:
            typer.echo(f"database migrated to {revision}: already at {after or 'base'}")
        else:
            typer.echo(f"database migrated to {revision}: {before or 'empty'} -> {after or 'base'}")
        return
    if revision != "head":
        raise _fail("--adopt migrates to head; give no revision")
    from facetoface.migrations.adopt import AdoptRefused, adopt_database

    try:
        report = adopt_database(settings, dry_run=dry_run)
    except AdoptRefused as exc:
        raise _fail(f"cannot adopt this database: {exc}") from exc
    except FacetofaceError as exc:
        raise _fail(f"cannot adopt this database now: {exc.detail}") from exc
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
) -> None:
    """Check this deployment end to end; print each check and how to fix what fails.

    Exit status 0 only when every check passed (or does not apply), 1 otherwise.
    """
    from facetoface.doctor import diagnose_environment, render_json, render_text

    # Only errors on stderr: the report is the output, and log lines would only repeat it.
    configure_logging("ERROR", "console")
    report = asyncio.run(diagnose_environment())
    print(render_json(report) if json_output else render_text(report))
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def token(
    email: Annotated[str | None, typer.Option(help="Look the user up by profile email")] = None,
    user_id: Annotated[str | None, typer.Option("--user-id", help="The user's UUID")] = None,
    ttl: Annotated[int | None, typer.Option(help="Lifetime in seconds")] = None,
    operator: Annotated[
        bool,
        typer.Option(
            "--operator",
            help='Add app_metadata.facetoface_role="operator" (the /v1/ops API); alone: the '
            "development operator",
        ),
    ] = False,
) -> None:
    """Print a development access token (HS256, signed with the configured secret)."""
    from facetoface.auth.dev_issuer import DEV_OPERATOR_ID, mint_token

    settings = _settings()
    if settings.supabase_url and settings.supabase_jwt_secret is None:
        raise _fail("tokens come from your Supabase project; no HS256 secret is configured")
    if operator and email is None and user_id is None:
        print(mint_token(settings, user_id=DEV_OPERATOR_ID, ttl_seconds=ttl, operator=True))
        return
    if (email is None) == (user_id is None):
        raise _fail("give exactly one of --email or --user-id (or --operator alone)")
    if user_id is not None:
        try:
            uid = uuid.UUID(user_id)
        except ValueError as exc:
            raise _fail(f"--user-id {user_id!r} is not a UUID") from exc
    else:
        assert email is not None
        found = asyncio.run(_user_id_for_email(settings, email))
        if found is None:
            raise _fail(f"no profile with email {email!r} (try `facetoface seed-demo`)")
        uid = found
    print(mint_token(settings, user_id=uid, email=email, ttl_seconds=ttl, operator=operator))


async def _user_id_for_email(settings: Settings, email: str) -> uuid.UUID | None:
    from facetoface.db import Database
    from facetoface.demo import find_user_by_email

    db = Database(settings)
    try:
        async with db.transaction() as session:
            return await find_user_by_email(session, email)
    finally:
        await db.dispose()


@app.command("seed-demo")
def seed_demo() -> None:
    """Create demo users with complete profiles and a mentor (idempotent)."""
    from facetoface.db import Database
    from facetoface.demo import seed_demo_data

    settings = _settings()

    async def run() -> list[tuple[str, str]]:
        db = Database(settings)
        try:
            async with db.transaction() as session:
                return await seed_demo_data(session)
        finally:
            await db.dispose()

    users = asyncio.run(run())
    print("Demo users (email → user id):")
    for email, uid in users:
        print(f"  {email:<28} {uid}")
    print("\nGet a token:   facetoface token --email", users[0][0])
    print(
        'Start:         curl -X POST -H "Authorization: Bearer $TOKEN" '
        f"{settings.public_base_url}/v1/sessions"
    )


@app.command("purge-user")
def purge_user(
    user_id: Annotated[str, typer.Option("--user-id", help="The user's UUID")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Delete everything stored about a user: conversations and memory stores at Tavus, then
    every row."""
    settings = _settings()
    try:
        uid = uuid.UUID(user_id)
    except ValueError as exc:
        raise _fail(f"--user-id {user_id!r} is not a UUID") from exc
    if not yes:
        typer.confirm(f"Delete all data of user {uid}, here and at Tavus?", abort=True)

    async def run() -> PurgeReport:
        from facetoface.app import build_services, build_tavus_client
        from facetoface.db import Database

        db = Database(settings)
        tavus = build_tavus_client(settings)
        try:
            services = await build_services(settings, db, tavus)
            return await services.sessions.purge_user(uid)
        finally:
            await tavus.aclose()
            await db.dispose()

    try:
        report = asyncio.run(run())
    except FacetofaceError as exc:
        raise _fail(exc.detail) from exc
    print(
        f"user {uid} purged ({report.conversations} conversation(s) and "
        f"{report.memory_stores} memory store(s) deleted at Tavus)"
    )


@app.command()
def reconcile() -> None:
    """Run one reconciler pass (what `serve` does periodically) and print what it did."""
    settings = _settings()

    async def run() -> dict[str, object]:
        from facetoface.app import build_services, build_tavus_client, check_migrations
        from facetoface.db import Database

        db = Database(settings)
        tavus = build_tavus_client(settings)
        try:
            await check_migrations(db)
            report = await (await build_services(settings, db, tavus)).reconciler.run_once()
            return {"actions": dict(report.actions), "errors": report.errors}
        finally:
            await tavus.aclose()
            await db.dispose()

    try:
        result = asyncio.run(run())
    except ConfigurationError as exc:
        raise _fail(str(exc)) from exc
    print(json.dumps(result, indent=2, sort_keys=True))


@app.command("tavus-sim")
def tavus_sim(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8100,
    api_key: Annotated[str, typer.Option(help="Accepted x-api-key")] = "sim-key",
    latency_ms: Annotated[int, typer.Option(help="Added latency per API call")] = 0,
    concurrency_limit: Annotated[int, typer.Option(help="Max active conversations")] = 10,
    reject_unknown_ids: Annotated[
        bool,
        typer.Option(
            "--reject-unknown-ids",
            help="Answer 400 to unknown persona/replica ids, like Tavus (default: adopt them)",
        ),
    ] = False,
) -> None:
    """Run the Tavus-compatible simulator on its own."""
    from facetoface.tavus_sim import SimConfig, run_sim

    settings = _settings()
    del settings  # only for logging configuration
    run_sim(
        host,
        port,
        SimConfig(
            api_key=api_key,
            latency_ms=latency_ms,
            concurrency_limit=concurrency_limit,
            unknown_ids="reject" if reject_unknown_ids else "adopt",
        ),
    )


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
