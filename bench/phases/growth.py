"""Growth: the same operations measured as history grows (`--growth-sizes`, default 10⁴ and
10⁵ past sessions over `--growth-users` users, 2,000 by default).

At each size the history is filled in SQL (bench/growth_fill.py: sessions with their
conversations, transcripts and 4.6 inbox rows each, then `VACUUM ANALYZE`), then measured
through HTTP, one request at a time, `--growth-samples` of each (p50): start, the
`replica_joined` callback, end, a page of the user's sessions (`GET /v1/sessions`) and the
context preview (`GET /v1/me/context`), each sample a different user with that history; and
reconciler passes run in this process against the same database and simulator (`run_once`,
as `facetoface reconcile` does). The simulator answers at once during the phase (latency 0):
its time is not ours. One unkept round at the first size warms the server and the caches.
The first pass at a size also verifies the sessions the samples just
ended (work proportional to recent sessions, as it should be); the figure is the p50 of the
passes, the first one kept apart.

Targets (issue 20): each operation's p50 at the largest size within 1.25× of its figure at
the smallest.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import asyncpg

from bench import growth_fill
from bench.harness import Harness, Phase, asyncpg_dsn
from bench.payloads import JSON_HEADER, callback_event
from bench.seed import seed_users
from bench.support import OpStats, RawHttp

#: Operations measured at each size, in the order they run.
OPERATIONS = ("start", "callback", "end", "list", "context", "reconcile pass")
#: Passes per size (the first also does the samples' verification).
PASSES = 5


def _p50_ms(samples_s: list[float]) -> float | None:
    if not samples_s:
        return None
    ordered = sorted(samples_s)
    return round(1000 * ordered[len(ordered) // 2], 2)


async def _settle_reconciler(reconciler: Any, max_passes: int = 50) -> int:
    """Run passes until one finds nothing to verify (the load phases' sessions); how many."""
    for n in range(1, max_passes + 1):
        report = await reconciler.run_once()
        if not any(k.startswith(("verified", "recovered")) for k in report.actions):
            return n
    return max_passes


async def _measure_size(
    h: Harness, users: list[uuid.UUID], auth: dict[uuid.UUID, bytes], reconciler: Any
) -> dict[str, Any]:
    ops = {name: OpStats() for name in OPERATIONS}
    scratch = Phase("growth")
    conn, sim = RawHttp(h.server_port), RawHttp(h.sim_port)
    try:
        for user in users:
            header = auth[user]
            started = await h.timed(ops["start"], conn, "POST", "/v1/sessions", 201, b"", header)
            if started is None:
                continue
            session_id, conversation_id = started["id"], started["conversation_id"]
            path = await h.callback_path(sim, conversation_id, scratch)
            if path is not None:
                body = json.dumps(callback_event(conversation_id, "system.replica_joined"))
                await h.timed(ops["callback"], conn, "POST", path, 200, body.encode(), JSON_HEADER)
            await h.timed(
                ops["end"], conn, "POST", f"/v1/sessions/{session_id}/end", 200, b"", header
            )
            await h.timed(ops["list"], conn, "GET", "/v1/sessions?limit=20", 200, b"", header)
            await h.timed(ops["context"], conn, "GET", "/v1/me/context", 200, b"", header)
    finally:
        conn.close()
        sim.close()
    passes: list[float] = []
    first_actions: dict[str, int] = {}
    for n in range(PASSES):
        t0 = time.perf_counter()
        report = await reconciler.run_once()
        passes.append(time.perf_counter() - t0)
        if n == 0:
            first_actions = dict(report.actions)
    ops["reconcile pass"].latencies.extend(passes[1:])
    out: dict[str, Any] = {
        name: {"p50_ms": _p50_ms(op.latencies), "n": len(op.latencies), "errors": dict(op.errors)}
        for name, op in ops.items()
    }
    out["reconcile pass"]["first_ms"] = round(1000 * passes[0], 2)
    out["reconcile pass"]["first_actions"] = first_actions
    return out


async def growth_phase(h: Harness) -> dict[str, Any]:
    """Fill to each size and measure; the figures by size, and the ratios largest ÷ smallest."""
    from facetoface.app import build_state, build_tavus_client
    from facetoface.db import Database

    args = h.args
    sizes: list[int] = args.growth_sizes
    users = await seed_users(h.db_settings(), args.growth_users)
    samples = users[: args.growth_samples]
    auth = h.raw_tokens(samples)
    settings = h.db_settings(
        tavus_api_key="sim-key",
        tavus_base_url=f"{h.sim_url}/v2",
        public_base_url=h.server_url,
        reconcile_interval_seconds=0,
    )
    db = Database(settings)
    tavus = build_tavus_client(settings)
    conn = await asyncpg.connect(asyncpg_dsn(h.database_url), timeout=10)
    by_size: dict[str, Any] = {}
    try:
        state = await build_state(settings, db, tavus)
        try:
            async with h.sim_latency(0):
                settled = await _settle_reconciler(state.reconciler)
                for n, size in enumerate(sizes):
                    print(f"bench: growth: filling to {size:,} past sessions …", flush=True)
                    fill = await growth_fill.fill(conn, users, size)
                    if n == 0:
                        # Warm-up, not kept: the first round pays for cold caches and the
                        # server's first requests, which would flatter every later size.
                        await _measure_size(h, samples, auth, state.reconciler)
                    figures = await _measure_size(h, samples, auth, state.reconciler)
                    by_size[str(size)] = {
                        "fill": fill,
                        "tables": await growth_fill.table_sizes(conn),
                        "operations": figures,
                    }
        finally:
            await state.compat.aclose()
    finally:
        await conn.close()
        await tavus.aclose()
        await db.dispose()
    first, last = by_size[str(sizes[0])], by_size[str(sizes[-1])]
    ratios: dict[str, float | None] = {}
    for name in OPERATIONS:
        a = first["operations"][name]["p50_ms"]
        b = last["operations"][name]["p50_ms"]
        ratios[name] = round(b / a, 2) if a and b else None
    return {
        "users": args.growth_users,
        "samples": args.growth_samples,
        "sizes": sizes,
        "settle_passes": settled,
        "by_size": by_size,
        "ratio_largest_to_smallest": ratios,
    }
