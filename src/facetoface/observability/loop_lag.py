"""Event-loop lag: how late the loop wakes a timer, sampled continuously.

One worker serves every request on one event loop, so anything that holds it (CPU-bound work,
a blocking call, a full garbage collection) delays every request in flight by the same
amount, whatever they were waiting for. The sampler sleeps `interval` seconds and records by
how much it overslept in `facetoface_event_loop_lag_seconds`: a timer's delay is what any
ready request waited too. Its own cost is one timer per interval (about 10 µs of CPU).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from facetoface.observability.metrics import EVENT_LOOP_LAG

#: How often the loop is sampled: often enough to see a 50-ms stall every time, rarely
#: enough to cost nothing measurable.
DEFAULT_INTERVAL_S = 0.1


async def sample_loop_lag(
    interval: float = DEFAULT_INTERVAL_S,
    record: Callable[[float], None] = EVENT_LOOP_LAG.observe,
) -> None:
    """Record the loop's lag every `interval` seconds until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval
        await asyncio.sleep(interval)
        record(max(0.0, loop.time() - due))
