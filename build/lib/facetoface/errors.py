"""One error base class carrying an HTTP status, rendered as RFC 9457 problem documents.

Every expected failure is a `FacetofaceError` subclass with a 4xx (or a deliberate 502/503);
anything else reaching the handler is a bug and becomes a bare 500 without details.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from facetoface.observability.context import current_request_id

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class FacetofaceError(Exception):
    """An expected failure with its HTTP status and a stable machine-readable `code`."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extra = extra or {}


class BadRequest(FacetofaceError):
    status_code = 400
    code = "bad_request"
    title = "Bad request"


class Unauthorized(FacetofaceError):
    status_code = 401
    code = "unauthorized"
    title = "Authentication required"

    def __init__(self, detail: str | None = None) -> None:
        # One answer for every token failure: the reason is logged, never returned (no oracle).
        super().__init__(
            "A valid bearer access token is required.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
        self.reason = detail


class Forbidden(FacetofaceError):
    status_code = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(FacetofaceError):
    status_code = 404
    code = "not_found"
    title = "Not found"


class ProfileNotFound(NotFound):
    """The caller has no `profiles` row yet (the app creates it at sign-up); several features
    need one."""

    code = "profile_not_found"
    title = "Profile not found"


class Conflict(FacetofaceError):
    status_code = 409
    code = "conflict"
    title = "Conflict"


class ServiceUnavailable(FacetofaceError):
    status_code = 503
    code = "service_unavailable"
    title = "Service temporarily unavailable"

    def __init__(
        self,
        detail: str | None = None,
        *,
        retry_after_seconds: int = 5,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_seconds)}, extra=extra)


class BadGateway(FacetofaceError):
    status_code = 502
    code = "bad_gateway"
    title = "Upstream rejected the request"


def problem_document(*, status: int, code: str, title: str, detail: str) -> dict[str, Any]:
    """An RFC 9457 problem document with our stable `code` and the request id (None outside a
    request: the HTTP server's own answers)."""
    return {
        "type": f"https://facetoface.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": current_request_id(),
    }


def problem(description: str) -> dict[str, Any]:
    """A route's documented error answer (OpenAPI `responses`): a problem document."""
    return {"description": description, "content": {PROBLEM_JSON: {}}}


#: How a route family renders an error: (status, code, title, detail, headers) → response.
ErrorRenderer = Callable[[int, str, str, str, "dict[str, str] | None"], JSONResponse]


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """Render an RFC 9457 problem document with our stable `code` and the request id."""
    body = problem_document(status=status, code=code, title=title, detail=detail)
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def _facetoface_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FacetofaceError)
    if isinstance(exc, Unauthorized):
        log.info("auth.rejected", reason=exc.reason)
    return problem_response(
        status=exc.status_code,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers,
        extra=exc.extra,
    )


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Each validation error's location, message and type — never the offending input (it
    may be personal data)."""
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc)
    return problem_response(
        status=422,
        code="validation_error",
        title="Request validation failed",
        detail="The request does not match the documented schema.",
        extra={"errors": errors},
    )


def _allowed_methods(request: Request) -> str:
    """Every method of the path, for a 405's `Allow` (RFC 9110 §15.5.6): Starlette names only
    the first route that matched the path, and FastAPI has one route per method."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        headers["Allow"] = allowed
    return problem_response(
        status=exc.status_code,
        code=codes.get(exc.status_code, "http_error"),
        title=str(exc.detail) if exc.detail else "HTTP error",
        detail=str(exc.detail),
        headers=headers,
    )


async def _unhandled_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("request.unhandled_error", error_type=type(exc).__name__)
    return problem_response(
        status=500,
        code="internal_error",
        title="Internal server error",
        detail="An unexpected error occurred; it has been logged.",
    )


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the problem renderer."""
    app.add_exception_handler(FacetofaceError, _facetoface_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled_error)
