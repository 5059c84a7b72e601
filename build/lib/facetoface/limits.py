"""Request limits: the body of every route (before any of it is read into memory), and the
request head at the server (`head_limited_http_protocol`)."""

from __future__ import annotations

import asyncio

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facetoface.errors import ErrorRenderer, problem_response


class BodyLimitMiddleware:
    """413 for bodies over the limit: by `Content-Length` up front, else while reading.

    The routes that receive Tavus's events (`callback_paths`, prefixes: they take
    transcripts) have their own, larger limit; every other route takes small JSON bodies. The
    413 is a problem document, or what `renderers` (path prefix → renderer) say for a route
    family with its own error shape.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        default_limit: int,
        callback_limit: int,
        callback_paths: tuple[str, ...] = (),
        renderers: dict[str, ErrorRenderer] | None = None,
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.callback_limit = callback_limit
        self.callback_paths = callback_paths
        self.renderers = renderers or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = self.callback_limit if path.startswith(self.callback_paths) else self.default_limit
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(limit, path)(scope, receive, send)
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
                await self._too_large(limit, path)(scope, receive, send)
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

    def _too_large(self, limit: int, path: str) -> JSONResponse:
        render = next(
            (r for prefix, r in self.renderers.items() if path.startswith(prefix)),
            _problem,
        )
        return render(
            413,
            "payload_too_large",
            "Request body too large",
            f"The body exceeds {limit} bytes.",
            None,
        )


def _problem(
    status: int, code: str, title: str, detail: str, headers: dict[str, str] | None
) -> JSONResponse:
    return problem_response(status=status, code=code, title=title, detail=detail, headers=headers)


def head_limited_http_protocol(max_head_bytes: int) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol (httptools) with a cap on the request head.

    A request line plus headers beyond `max_head_bytes` is answered `431 Request Header
    Fields Too Large` and the connection closed, before any more of it is read: a client
    cannot make the server buffer (and parse) a multi-megabyte `Authorization` header that
    would be refused anyway, stalling the event loop for everyone.
    """
    from facetoface.http_protocol import HeadLimitedHttpToolsProtocol

    if max_head_bytes == HeadLimitedHttpToolsProtocol.max_head_bytes:
        return HeadLimitedHttpToolsProtocol  # importable by name: works with --workers too
    return type(
        "HeadLimitedHttpToolsProtocol",
        (HeadLimitedHttpToolsProtocol,),
        {"max_head_bytes": max_head_bytes},
    )
