"""Request handling shared by the simulated ``/v2`` routes: fault rules, Tavus-style error
answers, query parameters and bodies parsed by hand (so bad input gets Tavus's 400 bodies
rather than FastAPI's 422).

Latency and the ``x-api-key`` check happen before routing, in gate.py.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ValidationError

from tavus_sim.faults import (
    CONCURRENCY_LIMIT_BODY,
    DEFAULT_MALFORMED_BODY,
    DEFAULT_STATUS_BODY,
    GATEWAY_TIMEOUT_BODY,
    OUT_OF_CREDITS_BODY,
    FaultRule,
    drop_connection,
)
from tavus_sim.responses import JSONResponse
from tavus_sim.runtime import SimRuntime, get_runtime

ModelT = TypeVar("ModelT", bound=BaseModel)
ItemT = TypeVar("ItemT")


class ApiError(Exception):
    """An error answer with a Tavus-style ``{"message": ...}`` body (400 unless told)."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code

    def response(self) -> JSONResponse:
        """Render the error."""
        return JSONResponse({"message": self.message}, status_code=self.status_code)


async def fault_response(
    request: Request, runtime: SimRuntime, rule: FaultRule, done: Response | None
) -> Response:
    """Turn a fault rule into what the client gets; ``done`` is the real answer when the
    operation was applied first."""
    if rule.kind == "timeout":
        await runtime.sleep(rule.delay_s)
        return done or JSONResponse(GATEWAY_TIMEOUT_BODY, status_code=504)
    if rule.kind == "concurrency_limit":
        return JSONResponse(CONCURRENCY_LIMIT_BODY, status_code=400)
    if rule.kind == "out_of_credits":
        return JSONResponse(OUT_OF_CREDITS_BODY, status_code=402)
    if rule.kind == "drop_connection":
        await drop_connection(request.scope)
        # Discarded by uvicorn: the connection is already gone.
        return Response(status_code=500)
    if rule.kind == "malformed":
        malformed = DEFAULT_MALFORMED_BODY if rule.body is None else rule.body
        if isinstance(malformed, str):
            return Response(malformed, status_code=200, media_type="application/json")
        return JSONResponse(malformed, status_code=200)
    body = DEFAULT_STATUS_BODY if rule.body is None else rule.body
    if isinstance(body, str):
        return PlainTextResponse(body, status_code=rule.status)
    return JSONResponse(body, status_code=rule.status)


async def guarded(
    request: Request, endpoint: str, action: Callable[[SimRuntime], Awaitable[Response]]
) -> Response:
    """Run ``action`` under the fault rules of ``endpoint``, rendering ``ApiError``s."""
    runtime = get_runtime(request)
    rule = runtime.faults.take(endpoint, request.path_params.get("conversation_id"))
    if rule is not None and not rule.apply_first:
        return await fault_response(request, runtime, rule, None)
    try:
        response = await action(runtime)
    except ApiError as exc:
        response = exc.response()
    if rule is not None:
        return await fault_response(request, runtime, rule, response)
    return response


def bool_param(request: Request, name: str) -> bool:
    """A ``true``/``false`` query parameter (absent = false)."""
    raw = request.query_params.get(name)
    if raw is None or raw.lower() in ("false", "0", ""):
        return False
    if raw.lower() in ("true", "1"):
        return True
    raise ApiError(f"{name} must be true or false")


def int_param(request: Request, name: str, default: int) -> int:
    """A positive integer query parameter."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(f"{name} must be a positive integer") from None
    if value < 1:
        raise ApiError(f"{name} must be a positive integer")
    return value


def choice_param(request: Request, name: str, allowed: Sequence[str]) -> str | None:
    """A query parameter restricted to ``allowed`` values (absent = ``None``)."""
    raw = request.query_params.get(name)
    if raw is not None and raw not in allowed:
        raise ApiError(f"{name} must be one of: {', '.join(allowed)}")
    return raw


def page_of(
    request: Request, items: Sequence[ItemT], render: Callable[[ItemT], dict[str, Any]]
) -> JSONResponse:
    """``{"data": [...], "total_count": n}`` for ``?limit=`` (10) and ``?page=`` (1-based)."""
    limit = int_param(request, "limit", 10)
    page = int_param(request, "page", 1)
    window = items[(page - 1) * limit : page * limit]
    return JSONResponse({"data": [render(item) for item in window], "total_count": len(items)})


def describe(exc: ValidationError) -> str:
    """A one-line account of what is wrong with a body."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "Invalid request body: " + "; ".join(parts)


def parse_body(model: type[ModelT], raw: bytes) -> ModelT:
    """Validate a JSON body (empty = ``{}``); ``ApiError`` 400 when it does not fit."""
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise ApiError(describe(exc)) from None


def parsed_json(raw: bytes) -> Any:
    """The body as JSON, or ``None`` when it is not JSON (for the create ledger)."""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
