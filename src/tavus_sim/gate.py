"""The front door of the simulated ``/v2`` API: latency, the API key, Tavus-shaped 404/405.

Every request under ``/v2`` waits ``latency_ms`` and then needs a right ``x-api-key`` (the
simulator's own, ``SimConfig.api_key``, or another account's, ``SimConfig.other_api_keys``)
*before* routing, so a missing or wrong key gets ``401 {"message": "Invalid access token"}``
on every path — existing or not, any method — and never learns whether a resource or route
exists. Behind the key, an unknown path answers ``404 {"message": "Not Found"}`` and a known
path with the wrong method ``405 {"message": "Method Not Allowed"}`` with an ``Allow``
header: JSON with ``message``, as Tavus's other errors, not FastAPI's ``detail``.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tavus_sim.responses import JSONResponse
from tavus_sim.runtime import SimRuntime

INVALID_TOKEN_BODY = {"message": "Invalid access token"}
API_PREFIX = "/v2"

_MESSAGES = {404: "Not Found", 405: "Method Not Allowed"}


def is_api_path(path: str) -> bool:
    """Whether a path belongs to the simulated Tavus API."""
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


class ApiGate:
    """ASGI middleware: latency and the API key check for every ``/v2`` request."""

    def __init__(self, app: ASGIApp, runtime: SimRuntime) -> None:
        self._app = app
        self._runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_api_path(scope["path"]):
            await self._app(scope, receive, send)
            return
        config = self._runtime.config
        if config.latency_ms:
            await self._runtime.sleep(config.latency_ms / 1000)
        given = b""
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                given = value
                break
        keys = [config.api_key, *config.other_api_keys]
        # Every key is compared, so the time taken does not tell which one nearly matched.
        matches = [hmac.compare_digest(given, key.encode()) for key in keys]
        if not any(matches):
            await JSONResponse(INVALID_TOKEN_BODY, status_code=401)(scope, receive, send)
            return
        await self._app(scope, receive, send)


def account_of(request: Request) -> str:
    """The account a ``/v2`` request acts for: its API key, which the gate has checked.

    Only Memory Stores are kept apart by account (memory.py); everything else is shared.
    """
    return request.headers.get("x-api-key", "")


def api_routes(routers: Iterable[APIRouter]) -> list[Route]:
    """The routes of the simulated API (the routers carry the ``/v2`` prefix)."""
    return [route for router in routers for route in router.routes if isinstance(route, Route)]


def _allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    methods: set[str] = set()
    for route in routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE and isinstance(route, Route) and route.methods:
            methods |= route.methods - {"HEAD"}
    return sorted(methods)


def install_gate(app: FastAPI, runtime: SimRuntime, routers: Iterable[APIRouter]) -> None:
    """Put the gate in front of ``app`` and give its 404/405 answers Tavus's shape.

    ``routers`` are the API's routers: a 405's ``Allow`` lists every method their routes
    serve on the path (Starlette's own names only the first route that matched it).
    """
    routes = api_routes(routers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not is_api_path(request.url.path) or exc.status_code not in _MESSAGES:
            return await http_exception_handler(request, exc)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(routes, request.scope))
        return JSONResponse(
            {"message": _MESSAGES[exc.status_code]}, status_code=exc.status_code, headers=headers
        )

    app.add_middleware(ApiGate, runtime=runtime)
    app.add_exception_handler(StarletteHTTPException, http_error)
