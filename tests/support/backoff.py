"""`no_backoff()`: the service's Tavus retries happen at once, not after their backoff waits.

The client (facetoface.tavus.client) retries with stamina: exponential backoff with up to a
second of jitter, so a test whose Tavus call keeps failing waits seconds for nothing it
asserts. Stamina's testing mode drops the waits and keeps each call's own number of attempts
(`TAVUS_RETRY_ATTEMPTS`), so the retries themselves still happen, as in production. It is
process-wide: the service runs in the test's process. Not for tests where the backoff's
timing is the point (the chaos suite's convergence times).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import stamina


@contextlib.contextmanager
def no_backoff() -> Iterator[None]:
    """Retries without waits, each call's configured attempts unchanged (`cap=True`)."""
    with stamina.set_testing(True, attempts=100, cap=True):
        yield
