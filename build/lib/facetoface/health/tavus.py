"""Tavus as this process last saw it — what readiness and the operators' view report.

Tavus's state is not probed (a probe would bill nothing but could hit rate limits and would
say little about creates); it is what this process last saw, from the `TavusClient`
`on_request` hook: `degraded` when the most recent attempt was a transport or server failure
(`unavailable`, `server_error`, `outcome_unknown` — the timeouts), `ok` when Tavus answered
(any other outcome: a 404 or a 429 is Tavus working), `unknown` before the first call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from facetoface.observability.metrics import record_tavus_request

#: Outcomes that say Tavus did not answer properly (what a reachability check would see).
DEGRADED_OUTCOMES = frozenset({"unavailable", "server_error", "outcome_unknown"})


@dataclass(slots=True)
class _LastSeen:
    endpoint: str
    outcome: str
    at: float  # time.monotonic()


class TavusHealth:
    """Tavus as this process last saw it. `on_request` is the `TavusClient` hook."""

    def __init__(self) -> None:
        self._last: _LastSeen | None = None
        self._consecutive_failures = 0

    def on_request(self, endpoint: str, outcome: str, seconds: float) -> None:
        """Record metrics and remember the outcome (cancelled attempts say nothing)."""
        record_tavus_request(endpoint, outcome, seconds)
        if outcome == "cancelled":
            return
        self._last = _LastSeen(endpoint, outcome, time.monotonic())
        if outcome in DEGRADED_OUTCOMES:
            self._consecutive_failures += 1
        else:
            self._consecutive_failures = 0

    def snapshot(self) -> dict[str, Any]:
        """`{"status": "ok"|"degraded"|"unknown", ...details}` for `/readyz`."""
        last = self._last
        if last is None:
            return {"status": "unknown"}
        return {
            "status": "degraded" if last.outcome in DEGRADED_OUTCOMES else "ok",
            "last_outcome": last.outcome,
            "last_endpoint": last.endpoint,
            "seconds_since_last_call": round(time.monotonic() - last.at, 1),
            "consecutive_failures": self._consecutive_failures,
        }
