"""`facetoface serve`: the HTTP service (and, in development without a Tavus key, the
simulator beside it)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import signal
from collections.abc import Coroutine
from typing import Annotated, Any

import typer
import uvicorn

from facetoface.cli.common import app, database, fail, log, read_settings
from facetoface.config import ConfigurationError, Settings


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
    settings = read_settings()
    try:
        settings.check_production_ready()
    except ConfigurationError as exc:
        raise fail(str(exc)) from exc
    host, port = host or settings.host, port or settings.port
    # SIGTERM drains (facetoface.shutdown), then uvicorn re-raises it; without a handler of
    # ours that would end the process before the `with` below stops the embedded database.
    signal.signal(signal.SIGTERM, _exit_after_drain)
    with database(settings, "app") as settings:
        if workers == 1:
            _run_fast(_serve(settings, host, port))
            return
        if settings.uses_simulator:
            raise fail(
                "--workers needs the real Tavus API (TAVUS_API_KEY): the embedded simulator "
                "keeps its conversations in one process"
            )
        asyncio.run(_check_database(settings))
        _serve_workers(settings, host, port, workers)


def _exit_after_drain(signum: int, frame: object) -> None:
    raise SystemExit(0)


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
    # The workers read their settings from the environment: the resolved database with them.
    os.environ["DATABASE_URL"] = settings.database_url
    log.info("serve.workers", workers=workers, metrics_dir=directory)
    try:
        uvicorn.run(
            "facetoface.app:create_app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            # A worker imports the app before it answers the supervisor's health check; on a
            # busy host that takes longer than uvicorn's 5 s, and it would restart in a loop.
            timeout_worker_healthcheck=60,
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
    from facetoface.shutdown import requests_timeout

    return {
        "http": head_limited_http_protocol(settings.http_max_header_bytes),
        # Our logging is configured already; uvicorn's access log would print raw paths
        # (callback paths carry secret tokens): `RequestContextMiddleware` logs instead.
        "log_config": None,
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
        # SIGTERM (facetoface.shutdown): requests in flight get what is left of the grace.
        "timeout_graceful_shutdown": requests_timeout(settings),
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
        raise fail(str(exc)) from exc
    except Exception as exc:
        raise fail(f"cannot reach the database: {type(exc).__name__}: {exc}") from exc
    finally:
        await db.dispose()


async def _serve(settings: Settings, host: str, port: int) -> None:
    from facetoface.app import create_app

    await _check_database(settings)

    main_server = uvicorn.Server(
        server_config(
            create_app(settings, freeze_heap=True, drain_on_sigterm=True), settings, host, port
        )
    )
    tasks = [asyncio.ensure_future(main_server.serve())]
    if settings.uses_simulator:
        from tavus_sim import SimConfig, create_sim_app

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
        tasks.append(asyncio.ensure_future(_set_up_embedded_tools(settings, sim_server)))
    await asyncio.gather(*tasks)


async def _set_up_embedded_tools(settings: Settings, sim_server: uvicorn.Server) -> None:
    """The embedded simulator starts empty: register the mentor's tools there once it listens
    (`facetoface tavus setup` does this against a real account)."""
    from facetoface.cli.tavus import run_setup

    while not sim_server.started:
        if sim_server.should_exit:
            return
        await asyncio.sleep(0.05)
    try:
        _, result = await run_setup(settings, replace=False)
    except Exception as exc:  # the service runs without tools; say why
        log.warning("tools.setup_failed", error=type(exc).__name__, detail=str(exc))
        return
    log.info("tools.set_up", created=result.created, attached=sorted(result.attached))
