"""The current request's id, and the facts a route adds to its one log line, carried in
context variables."""

from __future__ import annotations

import os
import socket
from contextvars import ContextVar
from typing import Any

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
#: The facts a route adds to its request's `http.request` line. A dict set per request (not
#: values bound one by one): a route running in a copied context still adds to the same one.
_request_facts: ContextVar[dict[str, Any] | None] = ContextVar("request_facts", default=None)


def current_request_id() -> str | None:
    """The id of the request being served, or None outside a request."""
    return _request_id.get()


def set_request_id(value: str | None) -> object:
    """Set the request id; returns a token for `reset_request_id`."""
    return _request_id.set(value)


def reset_request_id(token: object) -> None:
    """Restore the previous request id."""
    _request_id.reset(token)  # type: ignore[arg-type]


def begin_request_facts() -> tuple[dict[str, Any], object]:
    """A new, empty set of facts for the request being served; returns it and a token for
    `end_request_facts` (the middleware's, around each request)."""
    facts: dict[str, Any] = {}
    return facts, _request_facts.set(facts)


def end_request_facts(token: object) -> None:
    """Restore the facts of whatever was being served before."""
    _request_facts.reset(token)  # type: ignore[arg-type]


def add_request_facts(**facts: Any) -> bool:
    """Add `facts` to the current request's `http.request` line, so a hot route logs one line
    and not two; False outside a request (the caller then logs them itself)."""
    current = _request_facts.get()
    if current is None:
        return False
    current.update(facts)
    return True


def replica_name() -> str:
    """This process, as operators see it (logs, the console's pass history): `<host>:<pid>`."""
    return f"{socket.gethostname()}:{os.getpid()}"
