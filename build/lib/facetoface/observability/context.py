"""The request id of the current request, carried in a context variable."""

from __future__ import annotations

import os
import socket
from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served, or None outside a request."""
    return _request_id.get()


def set_request_id(value: str | None) -> object:
    """Set the request id; returns a token for `reset_request_id`."""
    return _request_id.set(value)


def reset_request_id(token: object) -> None:
    """Restore the previous request id."""
    _request_id.reset(token)  # type: ignore[arg-type]


def replica_name() -> str:
    """This process, as operators see it (logs, the console's pass history): `<host>:<pid>`."""
    return f"{socket.gethostname()}:{os.getpid()}"
