"""Tavus timing for tests where it is not the point.

`no_backoff()`: Tavus calls still retry as configured, without sleeping between attempts — for
tests where Tavus fails on purpose (the client's own tests cover the backoff, tests/tavus).

`PATIENT_TAVUS`: service settings with long Tavus timeouts. The simulator runs in a thread of
the test process: a busy process (a fuzzer generating cases, a loaded machine) can stall its
answer past the suite's short default timeouts, and a start that times out is a 503 with its
user left blocked by an unresolved session. For tests about something else (fuzzing, the
browser flows).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import stamina

PATIENT_TAVUS: dict[str, float] = {
    "tavus_read_timeout_seconds": 10.0,
    "tavus_total_timeout_seconds": 15.0,
    "tavus_retry_timeout_seconds": 15.0,
}


@contextlib.contextmanager
def no_backoff() -> Iterator[None]:
    """Within the block, retries happen at once; each call's `retry_attempts` still applies."""
    with stamina.set_testing(True, attempts=100, cap=True):
        yield
