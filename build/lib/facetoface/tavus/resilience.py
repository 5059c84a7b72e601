"""Retry budget and circuit breaker for the Tavus client (process-local by nature).

- **Retry budget** (Google SRE, "Handling overload"): retries may use at most ~10 % of the
  traffic. Every first attempt earns `ratio` of a token, every retry spends one, the bucket
  holds at most `capacity`. When Tavus is down for everyone, retries stop multiplying load.
- **Circuit breaker**: after `threshold` consecutive calls that found Tavus down (no answer,
  5xx, outcome unknown), calls fail at once for `cooldown_seconds`; then one trial call is
  let through (half-open) and its outcome closes or re-opens the circuit. Starts check it
  before writing anything, so an outage costs a fast 503 and no rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Outcomes (see `facetoface.tavus.errors`) that mean "Tavus is not working right now".
DOWN_OUTCOMES = frozenset({"unavailable", "server_error", "outcome_unknown"})


class RetryBudget:
    def __init__(self, *, ratio: float = 0.1, capacity: float = 10.0) -> None:
        self._ratio = ratio
        self._capacity = capacity
        self._tokens = capacity

    def record_request(self) -> None:
        self._tokens = min(self._capacity, self._tokens + self._ratio)

    @property
    def tokens(self) -> float:
        """Retries left in the budget now."""
        return self._tokens

    def try_spend(self) -> bool:
        """Take one retry from the budget; False when it is exhausted."""
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class CircuitBreaker:
    def __init__(
        self,
        *,
        threshold: int = 5,
        cooldown_seconds: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = threshold
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_started: float | None = None

    @property
    def threshold(self) -> int:
        return self._threshold

    @property
    def cooldown_seconds(self) -> float:
        return self._cooldown

    @property
    def consecutive_failures(self) -> int:
        """Calls in a row that found Tavus down (0 after any call that reached it)."""
        return self._failures

    @property
    def state(self) -> str:
        """`closed` (calls go out), `open` (refused until the cooldown ends) or `half_open`
        (the cooldown ended: the next call is a trial)."""
        if self._opened_at is None:
            return "closed"
        return "open" if self.retry_after_seconds() > 0 else "half_open"

    def retry_after_seconds(self) -> float:
        """Seconds until a call may be tried again; 0 when the circuit is closed."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self._cooldown - self._clock())

    def allow(self) -> bool:
        """Whether a call may go out now (in half-open state, exactly one trial)."""
        if self._opened_at is None:
            return True
        now = self._clock()
        if self.retry_after_seconds() > 0:
            return False
        # One trial at a time; a trial that never reported back (cancelled) expires.
        if self._trial_started is not None and now - self._trial_started < self._cooldown:
            return False
        self._trial_started = now
        return True

    def record(self, outcome: str) -> None:
        if outcome == "busy":
            return  # our own bulkhead was full: says nothing about Tavus's health
        if outcome in DOWN_OUTCOMES:
            self._failures += 1
            if self._opened_at is not None or self._failures >= self._threshold:
                self._opened_at = self._clock()  # (re-)open: a failed trial restarts the wait
        else:
            self._failures = 0
            self._opened_at = None
        self._trial_started = None
