"""The server's HTTP/1.1 protocol: uvicorn's (httptools) with a cap on the request head.

Kept in a module of its own (imported only by the server) so that worker processes started
by `serve --workers N` can import it by name. The cap is `HTTP_MAX_HEADER_BYTES`.
"""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from facetoface.errors import PROBLEM_JSON, problem_document

_DEFAULT_MAX_HEAD_BYTES = 32 * 1024
#: After a 431, what is still arriving is read and dropped for this long (or this much)
#: before the connection closes: closing with unread data makes the kernel send a reset,
#: and a client still sending its head would see the reset instead of the answer.
_LINGER_SECONDS = 2.0
_LINGER_BYTES = 8 * 1024 * 1024


class HeadLimitedHttpToolsProtocol(HttpToolsProtocol):
    """Answers 431 (and closes) once a request's head outgrows `max_head_bytes`, before the
    rest of it is parsed; the rest is read and dropped for a moment first (a lingering close),
    so the client gets the answer rather than a reset."""

    max_head_bytes: ClassVar[int] = int(
        os.environ.get("HTTP_MAX_HEADER_BYTES", _DEFAULT_MAX_HEAD_BYTES)
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._head_tail = b""
        self._reading_head = True
        self._lingering = False
        self._dropped = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._head_tail = b""
        self._reading_head = True

    def on_headers_complete(self) -> None:
        self._reading_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._dropped += len(data)
            if self._dropped > _LINGER_BYTES:
                self.transport.close()
            return
        if self._reading_head:
            # Only the head counts: a chunk may carry the end of the head and a body after it
            # (the body has limits of its own). The blank line may straddle two chunks.
            seen = self._head_tail + data
            end = seen.find(b"\r\n\r\n")
            head = len(data) if end < 0 else max(0, end + 4 - len(self._head_tail))
            self._head_bytes += head
            self._head_tail = seen[-3:]
            if self._head_bytes > self.max_head_bytes:
                self._refuse_head()
                return
        super().data_received(data)

    def _refuse_head(self) -> None:
        body = json.dumps(
            problem_document(
                status=431,
                code="request_header_fields_too_large",
                title="Request header fields too large",
                detail=f"The request head exceeds {self.max_head_bytes} bytes.",
            ),
            separators=(",", ":"),
        ).encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: " + PROBLEM_JSON.encode() + b"\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the answer is complete: the client reads it, then EOF
        self.loop.call_later(_LINGER_SECONDS, self.transport.close)
