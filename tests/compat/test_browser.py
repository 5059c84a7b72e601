"""supabase-js in real Chromium, from a page on another origin (a frontend dev server on another
port): the CORS preflight passes and `functions.invoke` starts and ends a session; a
production-mode app refuses an origin it was not configured with.

The page loads supabase-js's UMD build from `tests/node/node_modules`, served by the page's own
server (no CDN). Screenshots land in `test-artifacts/screenshots/`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from facetoface.app import create_app
from facetoface.observability.metrics import UNMATCHED_ROUTE
from tavus_sim import SimConfig, SimServer
from tests.conftest import RunningService, app_role_url, base_settings, bound_socket
from tests.support.browser import save_screenshot
from tests.support.eventually import eventually
from tests.support.factories import create_user, session_rows
from tests.support.node import NODE_MODULES
from tests.support.supabase import anon_key

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

UMD = NODE_MODULES / "@supabase" / "supabase-js" / "dist" / "umd" / "supabase.js"

#: The app's flow: start, then end with the one id the shipped page passes.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>origin app</title>
<script src="/supabase.js"></script></head>
<body><h1>Face-to-Face (origin app, another origin)</h1><pre id="out">running…</pre>
<script>
(async () => {
  const cfg = await (await fetch('/config.json')).json();
  const options = { auth: { persistSession: false, autoRefreshToken: false } };
  if (cfg.token) options.accessToken = async () => cfg.token;
  const client = supabase.createClient(cfg.url, cfg.anonKey, options);
  async function invoke(name, body) {
    const { data, error } = await client.functions.invoke(name, { body });
    if (!error) return { data };
    const out = { error: { name: error.name, message: error.message } };
    if (error.context && typeof error.context.json === 'function') {
      out.error.status = error.context.status;
      out.error.body = await error.context.json();
    }
    return out;
  }
  const results = { origin: window.location.origin };
  results.start = await invoke('start-tavus-session', { user_id: cfg.userId });
  if (results.start.data) {
    results.end = await invoke('end-tavus-session', {
      tavus_conversation_id: results.start.data.conversation_id,
    });
  }
  window.__results = results;
  document.getElementById('out').textContent = JSON.stringify(results, null, 2);
})().catch((e) => { window.__results = { crashed: String(e) }; });
</script></body></html>
"""


async def serving(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    """Until `server` (run by `task`) has started; its error if it stopped instead."""

    def started() -> bool:
        if task.done():
            task.result()
            raise AssertionError("the server stopped during startup")
        return bool(server.started)

    await eventually(started, what="the server started")


@dataclass
class PageServer:
    """The origin app's frontend: a page, supabase-js, and the page's config."""

    port: int
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def page_server(node: str) -> AsyncIterator[PageServer]:
    del node  # only its installation of supabase-js
    sock = bound_socket()
    server_state = PageServer(sock.getsockname()[1])

    async def index(request: Request) -> Response:
        return HTMLResponse(PAGE)

    async def script(request: Request) -> Response:
        return FileResponse(UMD, media_type="text/javascript")

    async def config(request: Request) -> Response:
        return JSONResponse(server_state.config)

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/supabase.js", script),
            Route("/config.json", config),
        ]
    )
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await serving(server, task)
    try:
        yield server_state
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    # Development, with no CORS configuration at all: a local dev server works out of the box.
    return {"environment": "development", "cors_allowed_origins": []}


def requests_counted(method: str, route: str, status: int) -> float:
    value = REGISTRY.get_sample_value(
        "facetoface_http_requests_total",
        {"method": method, "route": route, "status": str(status)},
    )
    return value or 0.0


async def run_page(page: Any, page_server: PageServer, name: str) -> dict[str, Any]:
    await page.goto(page_server.origin + "/")
    await page.wait_for_function("window.__results !== undefined", timeout=30_000)
    results: dict[str, Any] = await page.evaluate("window.__results")
    await save_screenshot(page, name)
    return results


async def test_a_page_on_another_origin_starts_and_ends_through_supabase_js(
    service: RunningService, page_server: PageServer, browser_page: Any
) -> None:
    user_id = await create_user(service.db)
    page_server.config.update(
        url=service.url,
        anonKey=anon_key(service.settings),
        token=service.token(user_id),
        userId=str(user_id),
    )
    preflights = requests_counted("OPTIONS", UNMATCHED_ROUTE, 200)
    starts = requests_counted("POST", "/functions/v1/start-tavus-session", 200)

    results = await run_page(browser_page, page_server, "supabase-js-cross-origin")

    assert results["origin"] != service.url  # another origin: every call is cross-origin
    start = results["start"]["data"]
    assert start["success"] is True
    assert results["end"]["data"]["success"] is True
    assert results["end"]["data"]["message"] == "Session ended successfully"
    # The calls carry Authorization/apikey/x-client-info: each one needed a passed preflight.
    assert requests_counted("OPTIONS", UNMATCHED_ROUTE, 200) - preflights >= 2
    assert requests_counted("POST", "/functions/v1/start-tavus-session", 200) - starts == 1
    rows = await session_rows(service.db, start["daily_session_id"])
    assert rows["daily"]["user_id"] == user_id
    assert rows["conversation"]["status"] == "ended"


@pytest.fixture(scope="module")
def sim_server() -> Iterator[SimServer]:
    """The simulator with a key of its own: production refuses the simulator's default key
    (`sim-key`), and one test here runs the service in production mode."""
    with SimServer(SimConfig(replica_join_delay_ms=20, api_key="tvsk_browser_simulated")) as server:
        yield server


@pytest.fixture
async def production_service(
    sim: SimServer, database_settings: dict[str, Any]
) -> AsyncIterator[str]:
    """The service in production mode with one configured browser origin (not the page's),
    under uvicorn with its lifespan (its public address is not this socket's, so it is not
    one of the shared test services)."""
    settings = base_settings(
        environment="production",
        database_url=app_role_url(database_settings["database_url"]),
        tavus_api_key=sim.config.api_key,
        tavus_base_url=sim.api_url,
        tavus_default_persona_id="p0000default",
        supabase_url="https://project.supabase.example",
        public_base_url="https://facetoface.example",
        cors_allowed_origins=["https://app.example.com"],
        deployment_name="browser-test",
        metrics_token="browser-test-metrics-token-9f2Kx7Lq4Zr8Wv3N",
        reconcile_interval_seconds=0,
    )
    sock = bound_socket()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_config=None, access_log=False, lifespan="on")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await serving(server, task)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_a_production_app_refuses_an_origin_it_was_not_configured_with(
    production_service: str, page_server: PageServer, browser_page: Any
) -> None:
    page_server.config.update(
        url=production_service, anonKey="an-anon-key", token="a-token", userId="u"
    )
    refused = requests_counted("OPTIONS", UNMATCHED_ROUTE, 400)
    starts = sum(
        requests_counted("POST", "/functions/v1/start-tavus-session", status)
        for status in (200, 401, 403)
    )

    results = await run_page(browser_page, page_server, "supabase-js-refused-origin")

    assert results["start"]["error"]["name"] == "FunctionsFetchError", json.dumps(results)
    assert "end" not in results
    assert requests_counted("OPTIONS", UNMATCHED_ROUTE, 400) - refused >= 1
    after = sum(
        requests_counted("POST", "/functions/v1/start-tavus-session", status)
        for status in (200, 401, 403)
    )
    assert after == starts  # the browser never sent the call itself
