"""The event-loop lag sampler: a loop held by blocking work shows as lag, and the service
exports the samples on `/metrics` (`facetoface_event_loop_lag_seconds`)."""

from __future__ import annotations

import asyncio
import time

from facetoface.observability.loop_lag import sample_loop_lag
from tests.conftest import RunningService
from tests.observability.test_metrics_endpoint import scrape, value
from tests.support.eventually import eventually

#: How long the test holds the loop, and the sampler's interval: a sample taken across the
#: hold overslept by at least the hold minus one interval.
HOLD_S = 0.2
INTERVAL_S = 0.01


async def test_a_blocked_loop_is_recorded_as_lag() -> None:
    samples: list[float] = []
    sampler = asyncio.create_task(sample_loop_lag(INTERVAL_S, samples.append))
    try:
        await eventually(lambda: len(samples) >= 3, what="the sampler runs")
        time.sleep(HOLD_S)  # noqa: ASYNC251 - the point: a blocking call holds the loop
        await eventually(lambda: max(samples) >= HOLD_S - INTERVAL_S, what="the hold shows")
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
    # Every sample is a delay, never negative.
    assert min(samples) >= 0.0


async def test_the_service_exports_loop_lag(service: RunningService) -> None:
    name = "facetoface_event_loop_lag_seconds_count"
    before = value(await scrape(service), name)

    async def more_samples() -> bool:
        return value(await scrape(service), name) > before

    await eventually(more_samples, what="the service samples its loop")
