"""Sequential: one request at a time, batch by batch (starts, callbacks of each type, reads,
ends, `GET /healthz`): the overhead without contention and the server's CPU per request."""

from __future__ import annotations

import json
import uuid
from typing import Any

from bench.harness import Harness, Phase
from bench.payloads import JSON_HEADER, POST_CALL, callback_event
from bench.support import OpStats, RawHttp, latency_summary, process_cpu_seconds

#: Requests per batch (at most one per user: each user has one live session at a time).
BATCH = 25

Request = tuple[str, str, int, bytes, bytes]  # method, path, expected status, body, headers


async def sequential_phase(h: Harness, auth: dict[uuid.UUID, bytes]) -> dict[str, Any]:
    """Unloaded latency and server CPU per request of each kind (the CPU clock ticks in
    10 ms, so it is read around a whole batch)."""
    assert h.server is not None
    server_pid = h.server.pid
    conn, sim = RawHttp(h.server_port), RawHttp(h.sim_port)
    users = h.users[: min(len(h.users), BATCH)]
    out: dict[str, Any] = {}
    scratch = Phase("sequential")

    async def batch(name: str, requests: list[Request]) -> list[Any]:
        op = OpStats()
        answers = []
        before = process_cpu_seconds(server_pid)
        for method, path, expect, body, headers in requests:
            answers.append(await h.timed(op, conn, method, path, expect, body, headers))
        after = process_cpu_seconds(server_pid)
        tavus = float(h.args.sim_latency_ms) if name in ("start", "end") else 0.0
        out[name] = {
            "overhead_ms": latency_summary(op.latencies, tavus),
            "server_cpu_ms": round(1000 * ((after or 0) - (before or 0)) / len(requests), 2),
            "errors": dict(op.errors),
            "first_error": op.first_error,
        }
        return answers

    try:
        await batch("healthz", [("GET", "/healthz", 200, b"", b"")] * len(users))
        started = await batch("start", [("POST", "/v1/sessions", 201, b"", auth[u]) for u in users])
        live = [(u, s) for u, s in zip(users, started, strict=True) if s is not None]
        paths = [await h.callback_path(sim, s["conversation_id"], scratch) for _, s in live]
        calls = [(p, s["conversation_id"]) for p, (_, s) in zip(paths, live, strict=True) if p]

        def events(kind: str) -> list[Request]:
            return [
                ("POST", p, 200, json.dumps(callback_event(c, kind)).encode(), JSON_HEADER)
                for p, c in calls
            ]

        await batch("callback (replica_joined)", events("system.replica_joined"))
        await batch(
            "read", [("GET", f"/v1/sessions/{s['id']}", 200, b"", auth[u]) for u, s in live]
        )
        await batch(
            "end", [("POST", f"/v1/sessions/{s['id']}/end", 200, b"", auth[u]) for u, s in live]
        )
        for kind in POST_CALL:
            await batch(f"callback ({kind.split('.', 1)[1]})", events(kind))
        await batch("callback (duplicate)", events(POST_CALL[0]))
    finally:
        conn.close()
        sim.close()
    return out
