"""The server's HTTP/1.1 protocol: uvicorn's (httptools) with bounds on what a connection may
hold.

Kept in a module of its own (imported only by the server) so that worker processes started
by `serve --workers N` can import it by name; its bounds are then read from the environment
(`serve` exports them). What it adds to uvicorn:

- **a head cap** (`HTTP_MAX_HEADER_BYTES`) on *every* request of a connection: beyond it, 431
  and close, before the rest of the head is read;
- **an idle timeout** (`HTTP_IDLE_TIMEOUT_SECONDS`) for a connection that sends nothing at all,
  and between its requests (the protocol sets uvicorn's keep-alive timer to the same value);
- **a head deadline** (`HTTP_HEAD_TIMEOUT_SECONDS`): a request's line and headers must arrive
  within it of their first byte, else 408 and close (the body's deadline is the app's,
  `limits.BodyDeadlineMiddleware`, so its 408 is logged and counted like any answer);
- **a connection cap** (`HTTP_MAX_CONNECTIONS`) per process: a connection beyond it is
  answered 503 and closed at once, so a flood of idle sockets cannot use up the process's file
  descriptors (and with them its database connections and probes).
"""

from __future__ import annotations

import asyncio
import json
import os
from http import HTTPStatus
from typing import Any, ClassVar

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from facetoface.config import Settings
from facetoface.errors import PROBLEM_JSON, problem_document
from facetoface.observability.metrics import record_connection_refused

log = structlog.get_logger("facetoface.http")


def _bound(field: str) -> float:
    """A bound of this process: its setting's environment variable (`serve --workers` exports
    the bounds to its workers), else the setting's default (`config.Settings` is the one
    source of both)."""
    default = Settings.model_fields[field].default
    return float(os.environ.get(field.upper()) or default)


#: After a refusal, what is still arriving is read and dropped for this long (or this much)
#: before the connection closes: closing with unread data makes the kernel send a reset,
#: and a client still sending its head would see the reset instead of the answer.
_LINGER_SECONDS = 2.0
_LINGER_BYTES = 8 * 1024 * 1024


class HeadLimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds of the module docstring. Each refusal is
    a problem document written by the protocol itself (the app never sees the request), then
    a lingering close, so the client gets the answer rather than a reset."""

    # Class attributes named as the `Settings` fields they come from (`limits` subclasses
    # with other values when a process's settings differ from its environment's).
    http_max_header_bytes: ClassVar[int] = int(_bound("http_max_header_bytes"))
    http_idle_timeout_seconds: ClassVar[float] = _bound("http_idle_timeout_seconds")
    http_head_timeout_seconds: ClassVar[float] = _bound("http_head_timeout_seconds")
    http_max_connections: ClassVar[int] = int(_bound("http_max_connections"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One idle timeout: between requests (uvicorn's keep-alive timer) as before the first.
        # (uvicorn types it int; it is a delay for `call_later`, a float.)
        self.timeout_keep_alive = self.http_idle_timeout_seconds  # type: ignore[assignment]
        self._head_bytes = 0
        self._head_tail = b""
        # True from the connection's start and from the end of each request: the next bytes
        # are a head. (Set when a message completes, not when the parser sees the next one
        # begin: by then the first chunk of a keep-alive request would have gone uncounted.)
        self._reading_head = True
        self._lingering = False
        self._dropped = 0
        self._head_deadline: asyncio.TimerHandle | None = None

    # --- connection ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.http_max_connections:
            record_connection_refused("too_many_connections")
            # Past twice the cap, lingering would itself hold descriptors: close at once.
            linger = len(self.connections) <= 2 * self.http_max_connections
            self._refuse(
                503,
                "too_many_connections",
                "Too many connections",
                "This server holds as many connections as it may; retry shortly.",
                linger=linger,
                extra_headers=b"retry-after: 1\r\n",
            )
            return
        # Nothing sent yet: the same idle timer uvicorn arms between requests (its
        # `data_received` cancels it at the first byte).
        self.timeout_keep_alive_task = self.loop.call_later(
            self.http_idle_timeout_seconds, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    # --- parser callbacks ----------------------------------------------------------------
    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._cancel_head_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._start_next_head()

    def _start_next_head(self) -> None:
        self._reading_head = True
        self._head_bytes = 0
        self._head_tail = b""

    # --- bytes in ------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._dropped += len(data)
            if self._dropped > _LINGER_BYTES:
                self.transport.close()
            return
        if self._reading_head:
            if self._head_deadline is None:
                self._head_deadline = self.loop.call_later(
                    self.http_head_timeout_seconds, self._head_too_slow
                )
            # Only the head counts: a chunk may carry the end of the head and a body after it
            # (the body has limits of its own). The blank line may straddle two chunks.
            seen = self._head_tail + data
            end = seen.find(b"\r\n\r\n")
            head = len(data) if end < 0 else max(0, end + 4 - len(self._head_tail))
            self._head_bytes += head
            self._head_tail = seen[-3:]
            if self._head_bytes > self.http_max_header_bytes:
                record_connection_refused("head_too_large")
                self._refuse(
                    431,
                    "request_header_fields_too_large",
                    "Request header fields too large",
                    f"The request head exceeds {self.http_max_header_bytes} bytes.",
                )
                return
        super().data_received(data)

    # --- refusals ------------------------------------------------------------------------
    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self._lingering or self.transport.is_closing():
            return
        record_connection_refused("head_timeout")
        log.info("http.head_timeout", seconds=self.http_head_timeout_seconds)
        self._refuse(
            408,
            "request_timeout",
            "Request timeout",
            f"The request head did not arrive within {self.http_head_timeout_seconds:g} s.",
        )

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _refuse(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        *,
        linger: bool = True,
        extra_headers: bytes = b"",
    ) -> None:
        """Answer `status` with a problem document and close (after a lingering read)."""
        self._cancel_head_deadline()
        self._unset_keepalive_if_required()
        body = json.dumps(
            problem_document(status=status, code=code, title=title, detail=detail),
            separators=(",", ":"),
        ).encode()
        reason = HTTPStatus(status).phrase.encode()
        self.transport.write(
            b"HTTP/1.1 " + str(status).encode() + b" " + reason + b"\r\n"
            b"content-type: " + PROBLEM_JSON.encode() + b"\r\n"
            b"content-length: "
            + str(len(body)).encode()
            + b"\r\n"
            + extra_headers
            + b"connection: close\r\n\r\n"
            + body
        )
        self._lingering = True
        if not linger:
            self.transport.close()
            return
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the answer is complete: the client reads it, then EOF
        self.loop.call_later(_LINGER_SECONDS, self.transport.close)
