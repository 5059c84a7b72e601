"""Request body limits for every route, before any of the body is read into memory."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facetoface.errors import origin_error_response, problem_response

#: Routes that receive Tavus's events (transcripts included) and take the larger limit.
CALLBACK_PATHS = ("/v1/callbacks/", "/functions/v1/tavus-webhook")
#: The origin's routes answer errors in the origin's shape (`{"error": …}`).
ORIGIN_PREFIX = "/functions/v1/"


class BodyLimitMiddleware:
    """413 for bodies over the limit: by `Content-Length` up front, else while reading.

    The routes that receive Tavus's events (`/v1/callbacks/`, and the origin's
    `/functions/v1/tavus-webhook`) take transcripts and have their own, larger limit; every
    other route takes small JSON bodies.
    """

    def __init__(self, app: ASGIApp, *, default_limit: int, callback_limit: int) -> None:
        self.app = app
        self.default_limit = default_limit
        self.callback_limit = callback_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = self.callback_limit if path.startswith(CALLBACK_PATHS) else self.default_limit
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(limit, path)(scope, receive, send)
            return
        if declared is not None:
            await self.app(scope, receive, send)
            return
        # No length declared (chunked): read it here, up to the limit, then replay it.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            if received > limit:
                await _too_large(limit, path)(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _too_large(limit: int, path: str) -> JSONResponse:
    if path.startswith(ORIGIN_PREFIX):
        return origin_error_response(
            status=413, code="payload_too_large", message=f"The body exceeds {limit} bytes."
        )
    return problem_response(
        status=413,
        code="payload_too_large",
        title="Request body too large",
        detail=f"The body exceeds {limit} bytes.",
    )
