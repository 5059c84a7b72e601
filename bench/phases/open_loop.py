"""Open loop: starts arrive at a fixed rate (`--open-loop-rate` per second for
`--open-loop-seconds`), each a distinct user doing start → end, whether or not earlier ones have
finished. A closed loop (the sessions phase) slows its arrivals down when the service slows
down, which hides queueing; here the schedule is kept, so the latency is the latency at that
load.

Each arrival is sent at its slot on a keep-alive connection from a pool (opened beforehand; a
new one only when every pooled connection is busy). An arrival sent more than `LATE_MS` after
its slot is *late* (this client fell behind: it shares the machine with the server); one that
could not be sent within `DROP_AFTER_S` of its slot, or while `MAX_IN_FLIGHT` arrivals were
still open, is *dropped* and not sent. Latency is measured from the send.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid

from bench.harness import Harness, Phase
from bench.support import RawHttp, latency_summary

LATE_MS = 10.0
DROP_AFTER_S = 1.0
MAX_IN_FLIGHT = 1000


async def open_loop_phase(
    h: Harness, phase: Phase, users: list[uuid.UUID], auth: dict[uuid.UUID, bytes]
) -> None:
    rate = h.args.open_loop_rate
    arrivals = users[: math.floor(rate * h.args.open_loop_seconds)]
    loop = asyncio.get_running_loop()
    idle: list[RawHttp] = []
    in_flight: set[asyncio.Task[None]] = set()
    lags_ms: list[float] = []
    late = dropped = 0
    start_op, end_op = phase.op("start"), phase.op("end")

    async def arrival(user: uuid.UUID) -> None:
        conn = idle.pop() if idle else RawHttp(h.server_port)
        try:
            started = await h.timed(start_op, conn, "POST", "/v1/sessions", 201, b"", auth[user])
            if started is None:
                return
            path = f"/v1/sessions/{started['id']}/end"
            if await h.timed(end_op, conn, "POST", path, 200, b"", auth[user]) is not None:
                phase.completed += 1
        finally:
            idle.append(conn)

    # Enough warm connections for the expected concurrency: rate x (start + end) latency.
    expected = rate * 2 * (h.args.sim_latency_ms / 1000 + 0.05)
    warm = [RawHttp(h.server_port) for _ in range(min(len(arrivals), math.ceil(expected * 1.5)))]
    for conn in warm:
        await conn.request("GET", "/healthz")
    idle.extend(warm)

    deadline = time.monotonic() + h.args.duration
    t0 = loop.time() + 0.05
    for i, user in enumerate(arrivals):
        slot = t0 + i / rate
        if (wait := slot - loop.time()) > 0:
            await asyncio.sleep(wait)
        lag_s = loop.time() - slot
        if lag_s > DROP_AFTER_S or len(in_flight) >= MAX_IN_FLIGHT:
            dropped += 1
            continue
        lags_ms.append(lag_s * 1000)
        if lag_s * 1000 > LATE_MS:
            late += 1
        task = asyncio.create_task(arrival(user))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        if time.monotonic() > deadline:
            phase.stopped_early = True
            break
    scheduled_s = loop.time() - t0
    if in_flight:
        _, pending = await asyncio.wait(
            set(in_flight), timeout=max(1.0, deadline - time.monotonic())
        )
        for task in pending:
            task.cancel()
            phase.stopped_early = True
        await asyncio.gather(*pending, return_exceptions=True)
    for conn in idle:
        conn.close()
    phase.extra = {
        "rate_per_s": rate,
        "arrivals_planned": len(arrivals),
        "arrivals_sent": len(lags_ms),
        "late": late,
        "dropped": dropped,
        "late_after_ms": LATE_MS,
        "schedule_lag_ms": latency_summary([lag / 1000 for lag in lags_ms]),
        "achieved_rate_per_s": round(len(lags_ms) / scheduled_s, 1) if scheduled_s > 0 else None,
    }
