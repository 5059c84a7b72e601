"""Errors of the origin's routes, rendered in the origin's shape.

The Edge Functions answered failures with `{"error": "<message>"}`; supabase-js hands that body
to the app (`FunctionsHttpError.context`). These routes answer the same shape, plus the stable
`code` of `/v1` and the request id, with the same extra members (`session`, `errors`, …) and
headers (`Retry-After`). Malformed input is a 400 here (the origin's status for a bad body),
where `/v1` answers 422; the `code` is the same (`validation_error`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from facetoface.errors import (
    BadRequest,
    FacetofaceError,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    validation_errors,
)
from facetoface.observability.context import current_request_id

log = structlog.get_logger(__name__)

#: Where the origin's routes live: errors under it take the origin's shape.
ORIGIN_PREFIX = "/functions/v1/"


def origin_error_response(
    *,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """Render an error in the shape Supabase Edge Functions answered with, `{"error": …}`,
    plus our stable `code` and the request id (the `/functions/v1/*` routes use it)."""
    body: dict[str, Any] = {"error": message, "code": code, "request_id": current_request_id()}
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    return JSONResponse(body, status_code=status, headers=headers)


def origin_error(description: str) -> dict[str, Any]:
    """A route's documented error answer (OpenAPI `responses`) in the origin's shape."""
    return {
        "description": description,
        "content": {
            "application/json": {"example": {"error": "…", "code": "…", "request_id": "…"}}
        },
    }


def render_origin_error(
    status: int, code: str, title: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """`origin_error_response` as an `ErrorRenderer` (the body limit's 413, for these routes)."""
    return origin_error_response(status=status, code=code, message=detail, headers=headers)


class UserMismatch(Forbidden):
    code = "user_mismatch"
    title = "user_id is not the signed-in user"


class MalformedWebhook(BadRequest):
    code = "validation_error"
    title = "Not a Tavus conversation callback"


class WebhookRateLimited(FacetofaceError):
    status_code = 429
    code = "rate_limited"
    title = "Too many webhook posts"


class WebhookTavusUnavailable(ServiceUnavailable):
    code = "tavus_unavailable"
    title = "The video service could not be asked about the conversation"


class FunctionNotFound(NotFound):
    code = "function_not_found"
    title = "No such function"


def render(exc: FacetofaceError) -> Response:
    """One of our errors in the origin's shape."""
    if isinstance(exc, Unauthorized):
        log.info("auth.rejected", reason=exc.reason)
    return origin_error_response(
        status=exc.status_code,
        code=exc.code,
        message=exc.detail,
        headers=exc.headers,
        extra=exc.extra,
    )


class OriginErrorRoute(APIRoute):
    """A route whose every failure — ours, a malformed body, a bug — is answered in the
    origin's shape. Scoped to the `/functions/v1` router; `/v1` keeps RFC 9457."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except FacetofaceError as exc:
                return render(exc)
            except RequestValidationError as exc:
                return origin_error_response(
                    status=400,
                    code="validation_error",
                    message="The request body does not match what this function accepts.",
                    extra={"errors": validation_errors(exc)},
                )
            except HTTPException as exc:
                return origin_error_response(
                    status=exc.status_code,
                    code="http_error",
                    message=str(exc.detail),
                    headers=dict(exc.headers or {}),
                )
            except ClientDisconnect:
                raise  # the client is gone: nobody to answer (logged as aborted, a 499)
            except Exception:
                log.exception("request.unhandled_error")
                return origin_error_response(
                    status=500,
                    code="internal_error",
                    message="An unexpected error occurred; it has been logged.",
                )

        return handle
