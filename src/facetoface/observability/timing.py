"""Where one request's time went: time spent waiting for a database slot (`db_wait`), in
database round trips (`db`) and in Tavus HTTP attempts (`tavus`), summed per request and sent
back in a `Server-Timing` response header (with `app`: the request's whole time in the
service), so a slow request can be explained from the outside (bench/README.md's breakdown).

What remains of `app` after the three is our own CPU plus the time the request's ready work
waited for the event loop (`facetoface_event_loop_lag_seconds` measures that wait). The
figures are durations only: nothing identifying is in the header. Recording costs a context
lookup and a dict update per span; outside a request (the reconciler, commands) nothing is
recorded.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

#: The spans named in the header, in its order.
SPANS = ("db_wait", "db", "tavus")

_CURRENT: ContextVar[dict[str, float] | None] = ContextVar("facetoface_timing", default=None)


def begin() -> tuple[dict[str, float], Token[dict[str, float] | None]]:
    """Start collecting this request's spans (in the request's context)."""
    spans: dict[str, float] = {}
    return spans, _CURRENT.set(spans)


def end(token: Token[dict[str, float] | None]) -> None:
    _CURRENT.reset(token)


def add(span: str, seconds: float) -> None:
    """Add `seconds` to `span` of the current request, if any."""
    spans = _CURRENT.get()
    if spans is not None:
        spans[span] = spans.get(span, 0.0) + seconds


def server_timing(spans: dict[str, float], total_s: float) -> bytes:
    """The `Server-Timing` header value (milliseconds, as the header's `dur` is)."""
    parts = [
        b"%s;dur=%.2f" % (name.encode(), 1000 * spans[name]) for name in SPANS if name in spans
    ]
    parts.append(b"app;dur=%.2f" % (1000 * total_s))
    return b", ".join(parts)
