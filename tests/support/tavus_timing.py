"""Tavus timing for tests where it is not the point.

`no_backoff()`: Tavus calls still retry as configured, without sleeping between attempts — for
tests where Tavus fails on purpose (the client's own tests cover the backoff, tests/tavus).
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
