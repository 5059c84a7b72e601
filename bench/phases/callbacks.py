"""Callbacks: the post-call callbacks of every session of the sessions phase
(`system.shutdown`, `application.transcription_ready`, `application.perception_analysis`, one
duplicate), fired at the benchmark's concurrency: callbacks ingested per second."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

from bench.harness import Harness, Phase, Target
from bench.payloads import JSON_HEADER, POST_CALL, callback_event
from bench.support import RawHttp


async def callbacks_phase(h: Harness, phase: Phase, targets: list[Target]) -> None:
    # Post-call callbacks of every finished session, event type by event type (so that
    # concurrent requests hit different sessions, as Tavus's would), then one duplicate
    # each; further rounds, if asked for, are duplicates too.
    kinds = [*POST_CALL, "duplicate"]
    plan = [(kind, t) for kind in kinds for t in targets]
    if not plan:
        return
    plan = list(itertools.islice(itertools.cycle(plan), h.args.callbacks))
    payloads = [
        (
            t.callback_path,
            json.dumps(
                callback_event(t.conversation_id, POST_CALL[0] if kind == "duplicate" else kind)
            ).encode(),
        )
        for kind, t in plan
    ]
    op = phase.op("callback")
    deadline = time.monotonic() + h.args.duration
    index = itertools.count()

    async def worker() -> None:
        conn = RawHttp(h.server_port)
        try:
            while (i := next(index)) < len(payloads):
                if time.monotonic() > deadline:
                    phase.stopped_early = True
                    return
                path, body = payloads[i]
                answer = await h.timed(op, conn, "POST", path, 200, body, JSON_HEADER)
                if answer is not None:
                    op.outcomes[answer.get("status", "?")] += 1
                    phase.completed += 1
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(h.args.concurrency)))
