"""What keeps the unsigned webhook cheap: token buckets per conversation, and per-conversation
fetch coalescing.

Both live in process memory on purpose: they bound the work one process does for posts anyone
can send; they coordinate nothing between replicas (N replicas accept N times the rate).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")

Clock = Callable[[], float]


class TokenBucket:
    """`rate` events per second on average, up to `burst` at once."""

    def __init__(self, rate: float, burst: int, *, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = self.burst
        self._updated = clock()

    def take(self) -> float:
        """Take one token: 0.0 when one was available, else the seconds until one will be."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate


class KeyedBuckets:
    """A `TokenBucket` per key (`rate`/`burst` each), so one key's traffic never uses up
    another's. At most `max_keys` are kept: the least recently used is forgotten first (a
    forgotten key starts again with a full bucket, which only ever errs towards admitting)."""

    def __init__(
        self, rate: float, burst: int, *, max_keys: int = 10_000, clock: Clock = time.monotonic
    ) -> None:
        TokenBucket(rate, burst)  # the same argument checks
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str) -> float:
        """Take one of `key`'s tokens: 0.0 when one was available, else the seconds until."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, clock=self._clock)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take()


@dataclass(eq=False)
class _Slot(Generic[T]):
    """One key's fetches: the one running, the next one (shared by everyone waiting)."""

    running: asyncio.Task[T] | None = None
    pending: asyncio.Task[T] | None = None
    last_started: float = field(default=-float("inf"))


class FetchCoalescer(Generic[T]):
    """At most one fetch per key at a time, and at most one per `interval` seconds.

    A caller always gets the result of a fetch that *started after it asked* (what it was told
    about may be news): if none is queued, one is queued behind the running one and after the
    interval; every caller that arrives before it starts shares it. So any number of posts about
    one conversation cost at most one fetch per interval, and none is left unanswered.
    """

    def __init__(self, interval: float, *, clock: Clock = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._slots: dict[str, _Slot[T]] = {}

    async def run(self, key: str, fetch: Callable[[], Awaitable[T]]) -> T:
        """The result (or the exception) of the next fetch for `key`."""
        slot = self._slots.setdefault(key, _Slot())
        if slot.pending is None:
            task = asyncio.ensure_future(self._next(key, slot, fetch))
            # A caller that gave up (client gone) must not leave the error unretrieved.
            task.add_done_callback(_retrieve)
            slot.pending = task
        # Shielded: one caller going away does not cancel the fetch the others wait for.
        return await asyncio.shield(slot.pending)

    @property
    def keys(self) -> int:
        """Keys with a fetch running, queued or within its interval (for tests)."""
        return len(self._slots)

    async def _next(self, key: str, slot: _Slot[T], fetch: Callable[[], Awaitable[T]]) -> T:
        previous = slot.running
        if previous is not None:
            await asyncio.wait([previous])
        delay = slot.last_started + self.interval - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)
        me = asyncio.current_task()
        assert me is slot.pending
        # From here on, new callers need a fetch that starts after this one.
        slot.pending = None
        slot.running = me
        slot.last_started = self._clock()
        try:
            return await fetch()
        finally:
            slot.running = None
            asyncio.get_running_loop().call_later(self.interval, self._forget, key, slot)

    def _forget(self, key: str, slot: _Slot[T]) -> None:
        idle = slot.running is None and slot.pending is None
        if idle and self._slots.get(key) is slot:
            del self._slots[key]

    async def aclose(self) -> None:
        """Cancel what is running or queued (the app is shutting down)."""
        tasks = [t for s in self._slots.values() for t in (s.running, s.pending) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._slots.clear()


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
