"""Admission control: load shedding in front of the connection pool."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

from facetoface.db.failures import database_unavailable
from facetoface.observability import timing

#: Set while a request records what Tavus already did (see `recording_tavus_outcome`).
_RECORDING = contextvars.ContextVar("facetoface_db_recording", default=False)


@contextlib.contextmanager
def recording_tavus_outcome() -> Iterator[None]:
    """Database calls made inside record what Tavus already did (a conversation it created
    or ended). Load shedding must not drop them — the work is done and bills; shedding it
    would only throw it away — so they are never shed for a full queue and wait for a slot
    up to the call's deadline. Shedding applies to new work (a start's first call)."""
    token = _RECORDING.set(True)
    try:
        yield
    finally:
        _RECORDING.reset(token)


class Admission:
    """At most `capacity` database calls at once per process, a bounded wait for a slot, and a
    bounded queue. A request that cannot get a slot in time — or finds the queue full — is
    told to retry (503) instead of queueing behind the pool until its client gives up. The
    pool itself then never makes anyone wait. A call recording a Tavus outcome
    (`recording_tavus_outcome`) waits up to `recording_wait_seconds` instead and is never
    shed for the queue's length."""

    def __init__(
        self, capacity: int, wait_seconds: float, recording_wait_seconds: float | None = None
    ) -> None:
        self.capacity = capacity
        self.wait_seconds = wait_seconds
        self.recording_wait_seconds = max(wait_seconds, recording_wait_seconds or 0.0)
        #: Waiters beyond this are shed at once: at a few milliseconds per call, a queue this
        #: deep already takes longer than the wait allowed.
        self.max_waiting = max(16, 4 * capacity)
        self._slots = asyncio.Semaphore(capacity)
        self.waiting = 0

    @property
    def in_use(self) -> int:
        """Slots taken now."""
        return self.capacity - self._slots._value

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the duration of a database call (503 when none comes in time)."""
        if self._slots.locked():
            recording = _RECORDING.get()
            if self.waiting >= self.max_waiting and not recording:
                raise database_unavailable("saturated")
            self.waiting += 1
            waiting_since = time.perf_counter()
            try:
                async with asyncio.timeout(
                    self.recording_wait_seconds if recording else self.wait_seconds
                ):
                    await self._slots.acquire()
            except TimeoutError:
                raise database_unavailable("saturated") from None
            finally:
                self.waiting -= 1
                timing.add("db_wait", time.perf_counter() - waiting_since)
        else:
            await self._slots.acquire()
        try:
            yield
        finally:
            self._slots.release()
