"""The webhook's token bucket and per-conversation fetch coalescing, on their own."""

from __future__ import annotations

import asyncio

import pytest

from facetoface.compat.throttle import FetchCoalescer, TokenBucket
from tests.support.eventually import eventually


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)

    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)  # one token every half second
    clock.now += 0.5
    assert bucket.take() == 0.0
    assert bucket.take() > 0
    clock.now += 60  # refills to the burst, never beyond
    assert [bucket.take() for _ in range(4)][:3] == [0.0, 0.0, 0.0]
    assert bucket.take() > 0


def test_bucket_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate=0, burst=1)


async def settle() -> None:
    """Let every task that is ready run until it blocks (no time passes)."""
    for _ in range(10):
        await asyncio.sleep(0)


class Fetches:
    """A fetch that records when it started and can be held open."""

    def __init__(self) -> None:
        self.started: list[float] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail: Exception | None = None

    async def __call__(self) -> int:
        self.started.append(asyncio.get_running_loop().time())
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return len(self.started)


async def test_callers_during_a_fetch_share_one_that_starts_after_it() -> None:
    coalescer: FetchCoalescer[int] = FetchCoalescer(0.05)
    fetch = Fetches()
    fetch.release.clear()
    first = asyncio.ensure_future(coalescer.run("c1", fetch))
    await eventually(lambda: fetch.started, what="the first fetch started")
    later = [asyncio.ensure_future(coalescer.run("c1", fetch)) for _ in range(5)]
    await settle()
    assert len(fetch.started) == 1  # the others wait: no second fetch while one runs
    fetch.release.set()

    assert await first == 1
    assert await asyncio.gather(*later) == [2] * 5
    assert len(fetch.started) == 2
    assert fetch.started[1] - fetch.started[0] >= 0.05  # the interval holds


async def test_keys_are_independent_and_forgotten_after_the_interval() -> None:
    # Long enough that a busy loop (the process runs other threads) cannot let it pass
    # between the fetches' end and the check that both keys are still remembered.
    interval = 0.25
    coalescer: FetchCoalescer[int] = FetchCoalescer(interval)
    fetch = Fetches()

    results = await asyncio.gather(coalescer.run("a", fetch), coalescer.run("b", fetch))

    assert sorted(results) == [1, 2]
    assert coalescer.keys == 2
    await eventually(lambda: coalescer.keys == 0, what="both keys forgotten after the interval")


async def test_a_failure_reaches_every_waiter_and_the_next_call_fetches_again() -> None:
    coalescer: FetchCoalescer[int] = FetchCoalescer(0.0)
    fetch = Fetches()
    fetch.fail = RuntimeError("tavus down")

    outcomes = await asyncio.gather(
        coalescer.run("c1", fetch), coalescer.run("c1", fetch), return_exceptions=True
    )

    assert all(isinstance(o, RuntimeError) for o in outcomes)
    fetch.fail = None
    assert await coalescer.run("c1", fetch) == len(fetch.started)


async def test_a_caller_going_away_does_not_cancel_the_shared_fetch() -> None:
    coalescer: FetchCoalescer[int] = FetchCoalescer(0.0)
    fetch = Fetches()
    fetch.release.clear()
    leaving = asyncio.ensure_future(coalescer.run("c1", fetch))
    staying = asyncio.ensure_future(coalescer.run("c1", fetch))
    await eventually(lambda: fetch.started, what="the shared fetch started")

    leaving.cancel()
    fetch.release.set()

    assert await staying == 1
    assert leaving.cancelled()
    await coalescer.aclose()
