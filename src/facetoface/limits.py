"""Request limits: the body of every route (its size before any of it is read into memory,
and its arrival time), and the server's own bounds (`bounded_http_protocol`)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facetoface.config import Settings
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


class BodyDeadlineMiddleware:
    """408 for a request whose body does not arrive within `seconds` of its head.

    The deadline runs while the app waits for body bytes (the head's own deadline is the
    server protocol's). When it passes, the 408 is answered here — if the app has not begun
    its answer — with `connection: close`, and the app is told the client is gone, so
    whatever it answers after that goes nowhere. A slow client (or one that stopped sending)
    holds its connection and its request no longer than the deadline.
    """

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        body_done = False
        started = False
        timed_out = False

        async def timed_receive() -> Message:
            nonlocal body_done, timed_out
            if timed_out:
                return {"type": "http.disconnect"}
            if body_done:
                return await receive()  # waiting for a disconnect: no deadline
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                if not started:
                    await problem_response(
                        status=408,
                        code="request_timeout",
                        title="Request timeout",
                        detail=f"The request body did not arrive within {self.seconds:g} s.",
                        headers={"Connection": "close"},
                    )(scope, receive, send)
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if timed_out:
                return  # the 408 was the answer
            started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not timed_out:
                raise
            # The app failed reading a body it was told will never come: the 408 answered.


#: The settings the HTTP protocol enforces itself (`http_protocol`, before the app).
PROTOCOL_BOUNDS = (
    "http_max_header_bytes",
    "http_idle_timeout_seconds",
    "http_head_timeout_seconds",
    "http_max_connections",
)


def bounded_http_protocol(settings: Settings) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol (httptools) with the bounds of `http_protocol`: the head
    cap, the idle and head timeouts and the connection cap, as `settings` say.

    A request line plus headers beyond `HTTP_MAX_HEADER_BYTES` is answered `431 Request Header
    Fields Too Large` and the connection closed, before any more of it is read: a client
    cannot make the server buffer (and parse) a multi-megabyte `Authorization` header that
    would be refused anyway, stalling the event loop for everyone.
    """
    from facetoface.http_protocol import HeadLimitedHttpToolsProtocol as Default

    bounds: dict[str, Any] = {field: getattr(settings, field) for field in PROTOCOL_BOUNDS}
    if all(getattr(Default, name) == value for name, value in bounds.items()):
        return Default  # importable by name: works with --workers too
    return type("HeadLimitedHttpToolsProtocol", (Default,), bounds)


def protocol_environment(settings: Settings) -> dict[str, str]:
    """The bounds as the environment `http_protocol` reads in worker processes."""
    return {field.upper(): str(getattr(settings, field)) for field in PROTOCOL_BOUNDS}
