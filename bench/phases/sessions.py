"""Sessions (closed loop): every worker drives its own users through `POST /v1/sessions` →
`system.replica_joined` callback → `POST /v1/sessions/{id}/end`, `--sessions-per-user` times."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from bench.harness import Harness, Phase, Target
from bench.payloads import JSON_HEADER, callback_event
from bench.support import RawHttp


async def one_session(
    h: Harness, conn: RawHttp, sim: RawHttp, auth: bytes, phase: Phase
) -> Target | None:
    """Start, the replica-joined callback, end; where its later callbacks go (or None)."""
    started = await h.timed(phase.op("start"), conn, "POST", "/v1/sessions", 201, b"", auth)
    if started is None:
        return None
    session_id, conversation_id = started["id"], started["conversation_id"]
    path = await h.callback_path(sim, conversation_id, phase)
    if path is not None:
        event = json.dumps(callback_event(conversation_id, "system.replica_joined")).encode()
        callback = phase.op("callback")
        answer = await h.timed(callback, conn, "POST", path, 200, event, JSON_HEADER)
        if answer is not None:
            callback.outcomes[answer.get("status", "?")] += 1
    # Ended in any case: a session left live would refuse every later start (409).
    end = phase.op("end")
    ended = await h.timed(end, conn, "POST", f"/v1/sessions/{session_id}/end", 200, b"", auth)
    if ended is None:
        return None
    end.outcomes[ended.get("status", "?")] += 1
    return Target(session_id, conversation_id, path) if path is not None else None


async def sessions_phase(
    h: Harness,
    phase: Phase,
    auth: dict[uuid.UUID, bytes],
    rounds: int,
    targets: list[Target],
) -> None:
    """`rounds` sessions per user; each worker owns every `concurrency`-th user."""
    concurrency = h.args.concurrency
    deadline = time.monotonic() + h.args.duration

    async def worker(w: int) -> None:
        conn, sim = RawHttp(h.server_port), RawHttp(h.sim_port)
        try:
            for _ in range(rounds):
                for user in h.users[w::concurrency]:
                    if time.monotonic() > deadline:
                        phase.stopped_early = True
                        return
                    target = await one_session(h, conn, sim, auth[user], phase)
                    if target is not None:
                        targets.append(target)
                        phase.completed += 1
        finally:
            conn.close()
            sim.close()

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
