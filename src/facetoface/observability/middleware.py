"""Pure-ASGI middleware: request id, one log line, the HTTP metrics and a `Server-Timing`
header (observability/timing.py) per request.

Both are labelled by route template, never by the raw path.
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facetoface.observability import timing
from facetoface.observability.context import (
    begin_request_facts,
    end_request_facts,
    reset_request_id,
    set_request_id,
)
from facetoface.observability.metrics import (
    HTTP_IN_PROGRESS,
    UNMATCHED_ROUTE,
    observe_http_request,
)

log = structlog.get_logger("facetoface.http")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

#: Logged and counted for a request whose client hung up before its body arrived (nginx's
#: convention): a client's outcome in the 4xx class, never a server error.
ABORTED_STATUS = 499


def route_template(scope: Scope) -> str:
    """The matched route's template (`/v1/sessions/{session_id}`), never the raw path.

    Raw paths can hold secrets (callback tokens) and would explode metric cardinality.
    """
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class RequestContextMiddleware:
    """Bind a request id (client's `X-Request-ID` if sane, else a new one) for the request;
    log it and count it in `facetoface_http_*` (except probes and `/metrics`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = set_request_id(request_id)
        facts, facts_token = begin_request_facts()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        spans, timing_token = timing.begin()
        started = time.perf_counter()
        status = 500
        HTTP_IN_PROGRESS.inc()
        response_started = False
        body_done = False
        aborted = False

        async def receive_wrapper() -> Message:
            # A disconnect before the whole body arrived: the client hung up mid-request.
            nonlocal body_done, aborted
            message = await receive()
            if message["type"] == "http.disconnect" and not body_done:
                aborted = True
            elif message["type"] == "http.request" and not message.get("more_body", False):
                body_done = True
            return message

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                elapsed = time.perf_counter() - started
                headers.append((b"server-timing", timing.server_timing(spans, elapsed)))
                message["headers"] = headers
            await send(message)

        from facetoface.errors import problem_response  # errors imports this package

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except Exception:
            if aborted:
                # The client went away mid-body (the app's read failed because of it): nobody
                # is waiting for an answer, and it is the client's doing, not a bug (counted
                # as aborted below).
                return
            # A bug: answer with a problem document that still carries the request id, and
            # log the traceback (never request bodies or headers) instead of re-raising.
            log.exception("request.unhandled_error")
            if response_started:
                raise
            response = problem_response(
                status=500,
                code="internal_error",
                title="Internal server error",
                detail="An unexpected error occurred; it has been logged.",
            )
            await response(scope, receive, send_wrapper)
        finally:
            HTTP_IN_PROGRESS.dec()
            if aborted:
                status = ABORTED_STATUS  # whatever the app answered reached nobody
            seconds = time.perf_counter() - started
            route = route_template(scope)
            method = scope.get("method", "")
            observe_http_request(method, route, status, seconds)
            log.info(
                "http.request",
                method=method,
                route=route,
                status=status,
                duration_ms=round(seconds * 1000, 2),
                **facts,
                **({"outcome": "aborted"} if status == ABORTED_STATUS else {}),
            )
            structlog.contextvars.unbind_contextvars("request_id")
            end_request_facts(facts_token)
            reset_request_id(token)
            timing.end(timing_token)
