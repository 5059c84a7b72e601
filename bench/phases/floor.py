"""Floor: `GET /healthz` at the benchmark's concurrency — what the server, the network stack and
this client cost for a trivial endpoint, in the same run."""

from __future__ import annotations

import asyncio
import itertools
import time

from bench.harness import Harness, Phase
from bench.support import RawHttp


async def floor_phase(h: Harness, phase: Phase, total: int) -> None:
    """`total` requests over `--concurrency` keep-alive connections."""
    op = phase.op("healthz")
    deadline = time.monotonic() + h.args.duration
    counter = itertools.count()

    async def worker() -> None:
        conn = RawHttp(h.server_port)
        try:
            while next(counter) < total:
                if time.monotonic() > deadline:
                    phase.stopped_early = True
                    return
                if await h.timed(op, conn, "GET", "/healthz", 200) is not None:
                    phase.completed += 1
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(h.args.concurrency)))
