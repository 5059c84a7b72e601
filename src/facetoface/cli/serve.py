"""`facetoface serve`: the HTTP service (and, in development without a Tavus key, the
simulator beside it)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import signal
from collections.abc import Coroutine, Iterator
from typing import Annotated, Any

import typer
import uvicorn

from facetoface.cli.common import app, database, fail, log, read_settings
from facetoface.config import ConfigurationError, Environment, Settings, is_loopback_url


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
    settings = _callbacks_reach(settings, host, port)
    # SIGTERM drains (facetoface.shutdown), then uvicorn re-raises it; without a handler of
    # ours that would end the process before the `with` below stops the embedded database.
    signal.signal(signal.SIGTERM, _exit_after_drain)
    # Ctrl-C: uvicorn stops gracefully, then re-raises SIGINT into this handler, and the
    # process ends as Ctrl-C does (130). With Python's own handler in place, asyncio's runner
    # would take SIGINT over and merely cancel the main task: when that task was finishing
    # anyway, the process exited 0 (seen in the walkthrough test, now and then).
    signal.signal(signal.SIGINT, _interrupted)
    with database(settings, "app") as settings:
        if workers == 1:
            _run_fast(_serve(settings, host, port))
            if _interrupted_while_serving:
                raise KeyboardInterrupt
            return
        if settings.metrics_port:
            raise fail(
                "METRICS_PORT is served by one process: with --workers, unset it and protect "
                "/metrics with METRICS_TOKEN"
            )
        asyncio.run(_check_database(settings))
        _say_where(settings, host, port)
        with _simulator_process(settings):
            _serve_workers(settings, host, port, workers)


def _callbacks_reach(settings: Settings, host: str, port: int) -> Settings:
    """Outside production (which must set it) an unset `PUBLIC_BASE_URL` follows
    `--host`/`--port`, so the simulator's callbacks reach the port actually served; a set one
    that names this machine on another port is said out loud (callbacks would go where nobody
    listens)."""
    production = settings.environment is Environment.production
    if not production and "public_base_url" not in settings.model_fields_set:
        shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        shown = f"[{shown}]" if ":" in shown else shown
        return settings.model_copy(update={"public_base_url": f"http://{shown}:{port}"})
    from urllib.parse import urlsplit

    public = urlsplit(settings.public_base_url)
    default_port = 443 if public.scheme == "https" else 80
    if is_loopback_url(settings.public_base_url) and (public.port or default_port) != port:
        typer.echo(
            f"facetoface: warning: PUBLIC_BASE_URL={settings.public_base_url} is this machine "
            f"on port {public.port or default_port}, but serve listens on {port}: callbacks "
            "will not arrive unless something forwards them (unset PUBLIC_BASE_URL in "
            "development, or set it to the served address)",
            err=True,
        )
    return settings


def _say_where(settings: Settings, host: str, port: int) -> None:
    """The addresses people open (`make run` ends here): the console, the API's docs."""
    base = settings.public_base_url if settings.is_development else f"http://{host}:{port}"
    typer.echo(f"facetoface: serving on http://{host}:{port}")
    if settings.is_development:
        typer.echo(f"  console:  {base}/console")
    if settings.serves_openapi:
        typer.echo(f"  API docs: {base}/docs")


@contextlib.contextmanager
def _simulator_process(settings: Settings) -> Iterator[None]:
    """With several workers the simulator cannot live inside one of them: in development
    (no TAVUS_API_KEY) it runs as a process of its own on TAVUS_SIM_PORT while they serve."""
    if not settings.uses_simulator:
        yield
        return
    import socket
    import subprocess
    import sys
    import time

    process = subprocess.Popen(  # noqa: S603 - this interpreter, our own arguments
        [
            sys.executable,
            "-m",
            "facetoface",
            "tavus-sim",
            "--port",
            str(settings.tavus_sim_port),
            "--latency-ms",
            str(settings.tavus_sim_latency_ms),
        ]
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise fail(
                    f"the Tavus simulator exited ({process.returncode}): is TAVUS_SIM_PORT "
                    f"{settings.tavus_sim_port} free?"
                )
            try:
                socket.create_connection(("127.0.0.1", settings.tavus_sim_port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise fail("the Tavus simulator did not start within 60 s") from None
                time.sleep(0.1)
        log.info(
            "tavus_sim.process",
            url=f"http://127.0.0.1:{settings.tavus_sim_port}",
            note="no TAVUS_API_KEY: the built-in Tavus simulator, a process of its own",
        )
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _exit_after_drain(signum: int, frame: object) -> None:
    raise SystemExit(0)


#: Set when Ctrl-C came while the event loop ran: the process ends 130 once the loop is done.
_interrupted_while_serving = False


def _interrupted(signum: int, frame: object) -> None:
    """Ctrl-C. Outside the event loop (starting the embedded database, say), as Python's own
    handler: KeyboardInterrupt. Inside it, the SIGINT uvicorn re-raises after stopping
    gracefully is only noted, and `serve` raises KeyboardInterrupt once the loop has ended:
    raised inside the loop, it cut the loop short and the app's lifespan task, still
    finishing, was cancelled and logged a traceback on every Ctrl-C."""
    global _interrupted_while_serving
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise KeyboardInterrupt from None
    _interrupted_while_serving = True


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
    from facetoface.limits import protocol_environment

    # The workers read their settings from the environment: the resolved database and the
    # callback address with them, and the server's bounds (the protocol class they import by
    # name reads those).
    os.environ["DATABASE_URL"] = settings.database_url
    os.environ["PUBLIC_BASE_URL"] = settings.public_base_url
    os.environ.update(protocol_environment(settings))
    log.info("serve.workers", workers=workers, metrics_dir=directory)
    try:
        config = uvicorn.Config(
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
        from facetoface.cli.supervisor import Supervisor

        with contextlib.suppress(KeyboardInterrupt):
            Supervisor(config, sockets=[config.bind_socket()]).run()
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
    from facetoface.limits import bounded_http_protocol
    from facetoface.shutdown import requests_timeout

    return {
        # The bounds, the idle timeout between keep-alive requests among them.
        "http": bounded_http_protocol(settings),
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
        from facetoface.doctor import serving_role_problem

        problem = await serving_role_problem(db, settings)
        if problem is not None:
            raise fail(f"refusing to start in {settings.environment.value} mode: {problem}")
    except UnmigratedDatabase as exc:
        raise fail(str(exc)) from exc
    except typer.Exit:
        raise
    except Exception as exc:
        raise fail(f"cannot reach the database: {type(exc).__name__}: {_first_line(exc)}") from exc
    finally:
        await db.dispose()


def _first_line(exc: BaseException) -> str:
    """An error's first line (a driver's message may go on for lines): one line of output."""
    return (str(exc).strip().splitlines() or [""])[0][:300]


async def _serve(settings: Settings, host: str, port: int) -> None:
    from facetoface.app import create_app

    await _check_database(settings)
    _say_where(settings, host, port)

    app = create_app(settings, freeze_heap=True, drain_on_sigterm=True)
    main_server = uvicorn.Server(server_config(app, settings, host, port))
    # The servers beside the main one stop with it; only the main one handles signals.
    beside: list[uvicorn.Server] = []
    tasks = [asyncio.ensure_future(_serve_main(main_server, beside))]
    if settings.metrics_port:
        # `/metrics` on a private address of its own; the app's lifespan runs once (above).
        metrics_config = server_config(app, settings, settings.metrics_host, settings.metrics_port)
        metrics_config.lifespan = "off"
        beside.append(_ServerBeside(metrics_config))
        tasks.append(asyncio.ensure_future(beside[-1].serve()))
        log.info(
            "serve.metrics_port", url=f"http://{settings.metrics_host}:{settings.metrics_port}"
        )
    if settings.uses_simulator:
        from tavus_sim import SimConfig, create_sim_app

        sim_config = SimConfig(latency_ms=settings.tavus_sim_latency_ms)
        sim_server = _ServerBeside(
            uvicorn.Config(
                create_sim_app(sim_config),
                host="127.0.0.1",
                port=settings.tavus_sim_port,
                log_config=None,
                access_log=False,
            )
        )
        beside.append(sim_server)
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


class _ServerBeside(uvicorn.Server):
    """A uvicorn server beside the main one (the metrics port, the embedded simulator): it
    leaves signals to the main server and stops when that one stops. (Each server installing
    its own handlers stacked them in start order, and which one heard Ctrl-C depended on it.)"""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve_main(main_server: uvicorn.Server, beside: list[uvicorn.Server]) -> None:
    """Serve until a signal (or a failure) stops the main server, then stop the others."""
    try:
        await main_server.serve()
    finally:
        for server in beside:
            server.should_exit = True


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
