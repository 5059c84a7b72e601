"""Retry budget and circuit breaker."""

from __future__ import annotations

from facetoface.tavus.resilience import CircuitBreaker, RetryBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_budget_allows_a_burst_then_about_ten_percent() -> None:
    budget = RetryBudget(ratio=0.1, capacity=10)
    assert sum(budget.try_spend() for _ in range(50)) == 10  # the initial burst
    granted = 0
    for _ in range(1000):
        budget.record_request()
        granted += budget.try_spend()
    assert 95 <= granted <= 100


def test_breaker_opens_after_consecutive_failures_and_half_opens() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown_seconds=10, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record("unavailable")
    assert breaker.retry_after_seconds() == 0
    assert breaker.allow()
    breaker.record("server_error")
    assert breaker.retry_after_seconds() == 10
    assert not breaker.allow()

    clock.now += 10
    assert breaker.allow(), "one trial after the cooldown"
    assert not breaker.allow(), "only one trial at a time"
    breaker.record("outcome_unknown")
    assert breaker.retry_after_seconds() == 10, "a failed trial re-opens"

    clock.now += 10
    assert breaker.allow()
    breaker.record("ok")
    assert breaker.retry_after_seconds() == 0
    assert all(breaker.allow() for _ in range(5))


def test_definite_answers_do_not_open_the_breaker() -> None:
    breaker = CircuitBreaker(threshold=2, cooldown_seconds=10, clock=Clock())
    for outcome in ["unavailable", "invalid_request", "unavailable", "concurrency_limit"]:
        breaker.record(outcome)
    assert breaker.retry_after_seconds() == 0


def test_a_lost_trial_expires() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown_seconds=5, clock=clock)
    breaker.record("unavailable")
    clock.now += 5
    assert breaker.allow()  # this trial is cancelled and never reports back
    assert not breaker.allow()
    clock.now += 5
    assert breaker.allow()
