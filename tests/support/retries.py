"""`no_backoff()`: Tavus calls still retry as configured, without sleeping between attempts.

For tests where Tavus fails on purpose: the client's backoff (stamina's exponential waits, up
to its retry timeout) is real time that proves nothing there. The client's own tests cover the
backoff itself (tests/tavus).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import stamina


@contextlib.contextmanager
def no_backoff() -> Iterator[None]:
    """Within the block, retries happen at once; each call's `retry_attempts` still applies."""
    with stamina.set_testing(True, attempts=100, cap=True):
        yield
