"""The simulator's ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from tavus_sim import api, catalog_api, control, memory_api, room, tools_api
from tavus_sim.config import SimConfig
from tavus_sim.faults import RAW_SEND_SCOPE_KEY
from tavus_sim.gate import install_gate
from tavus_sim.responses import JSONResponse
from tavus_sim.runtime import SimRuntime

#: The simulated Tavus API (``/v2``), behind the gate.
API_ROUTERS = (api.router, catalog_api.router, memory_api.router, tools_api.router)


class _SimApp(FastAPI):
    """FastAPI that keeps the server's own ``send`` in the scope (for ``drop_connection``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # Stored before Starlette's middlewares wrap ``send``; see faults.drop_connection.
            scope[RAW_SEND_SCOPE_KEY] = send
        await super().__call__(scope, receive, send)


def create_sim_app(config: SimConfig | None = None) -> FastAPI:
    """Build a Tavus simulator app.

    Routes: the Tavus API under ``/v2`` (conversations, personas/pals, replicas/faces, memory
    stores, tools; behind the API-key gate), the rooms under ``/rooms``, the test control API under
    ``/_sim``. The runtime (state, faults, timers, callback sender) is on
    ``app.state.sim``; the lifespan opens the callback HTTP client and, on shutdown, cancels
    timers and pending deliveries and closes it.
    """
    runtime = SimRuntime(config or SimConfig())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.aclose()

    app = _SimApp(
        title="facetoface Tavus simulator",
        summary="Tavus-compatible CVI API for development and tests",
        lifespan=lifespan,
        default_response_class=JSONResponse,
        # The simulator's own traffic must not show up in the service's telemetry.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.sim = runtime
    install_gate(app, runtime, API_ROUTERS)
    for router in API_ROUTERS:
        app.include_router(router)
    app.include_router(room.router)
    app.include_router(control.router)
    return app
