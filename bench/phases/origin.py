"""Origin replay (sequential): the origin's database flow for a start beside ours (the public
`SessionService.start`), on the same database, at each `--db-rtt-ms` round-trip time — 0 is a
direct connection, any other value goes through the counting proxy, which delays every round
trip by that much (a remote database). See bench/origin_flow.py for what is compared."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import asyncpg

from bench import origin_flow
from bench.harness import START_LIMIT, Harness, asyncpg_dsn, with_host_port
from bench.payloads import PERSONA_ID, REPLICA_ID
from bench.pgwire import CountingProxy, classify
from facetoface.config import Settings
from facetoface.db import Database

#: Wall-clock cap of one RTT row (a start of ours at 20 ms costs 20 ms per round trip).
ROW_BUDGET_S = 30.0
WARM_UP = 5


def service_settings(h: Harness, database_url: str) -> Settings:
    """The service's settings for the in-process start path: the simulator as Tavus."""
    return h.db_settings(
        database_url,
        tavus_api_key="sim-key",
        tavus_base_url=f"{h.sim_url}/v2",
        public_base_url="http://bench.invalid",
        tavus_default_persona_id=PERSONA_ID,
        tavus_default_replica_id=REPLICA_ID,
        session_start_limit=START_LIMIT,
        db_pool_size=2,
    )


async def origin_phase(h: Harness) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    async with h.sim_latency(0):  # the Tavus call is not timed: no need to wait for it
        for rtt in h.args.db_rtt_ms:
            rows.append(await _at_rtt(h, rtt))
        round_trips = await _round_trips(h)
    result: dict[str, Any] = {"by_rtt": rows, "round_trips": round_trips}
    direct = next((r for r in rows if r["rtt_ms"] == 0), None)
    if direct is not None:
        result["origin"], result["ours"] = direct["origin"], direct["ours"]
        result["ratio_p50_origin_over_ours"] = direct["ratio_p50"]
        result["ratio_mean_origin_over_ours"] = direct["ratio_mean"]
    return result


async def _at_rtt(h: Harness, rtt_ms: float) -> dict[str, Any]:
    proxy: CountingProxy | None = None
    service_url, origin_dsn = h.database_url, asyncpg_dsn(h.database_url)
    ssl: Any = None
    if rtt_ms:
        pg = urlsplit(h.database_url)
        proxy = await CountingProxy("127.0.0.1", pg.port or 5432, delay_ms=rtt_ms).start()
        service_url = with_host_port(h.database_url, proxy.port, "ssl=disable")
        origin_dsn = asyncpg_dsn(with_host_port(h.database_url, proxy.port))
        ssl = False
    ours_db = Database(service_settings(h, service_url))
    ours = origin_flow.OurStart(ours_db.settings, ours_db)
    origin_conn = await asyncpg.connect(origin_dsn, timeout=10, ssl=ssl)
    cleanup = await asyncpg.connect(asyncpg_dsn(h.database_url), timeout=10)  # never delayed
    try:
        common: dict[str, Any] = {
            "origin_conn": origin_conn,
            "ours": ours,
            "cleanup_conn": cleanup,
            "users": h.replay_users,
        }
        await origin_flow.compare(**common, iterations=WARM_UP, time_budget_s=ROW_BUDGET_S)
        budget = h.args.duration if not rtt_ms else min(h.args.duration, ROW_BUDGET_S)
        result = await origin_flow.compare(
            **common, iterations=h.args.iterations, time_budget_s=budget, proxy=proxy
        )
    finally:
        await origin_conn.close()
        await cleanup.close()
        await ours.aclose()
        await ours_db.dispose()
        if proxy is not None:
            await proxy.close()
    origin, our = result["origin"], result["ours"]
    return {
        "rtt_ms": rtt_ms,
        "origin": origin,
        "ours": our,
        "ratio_p50": round(origin["p50_ms"] / our["p50_ms"], 2),
        "ratio_mean": round(origin["mean_ms"] / our["mean_ms"], 2),
    }


async def _round_trips(h: Harness) -> dict[str, Any]:
    """Wire round trips of one warm start of each flow, by kind, through the counting proxy."""
    pg = urlsplit(h.database_url)
    proxy = await CountingProxy("127.0.0.1", pg.port or 5432).start()
    ours_db = Database(
        service_settings(h, with_host_port(h.database_url, proxy.port, "ssl=disable"))
    )
    ours = origin_flow.OurStart(ours_db.settings, ours_db)
    conn = await asyncpg.connect(
        asyncpg_dsn(with_host_port(h.database_url, proxy.port)), timeout=10, ssl=False
    )
    cleanup = await asyncpg.connect(asyncpg_dsn(h.database_url), timeout=10)
    user = h.replay_users[0]
    out: dict[str, Any] = {}

    async def origin_once() -> origin_flow.Written:
        return await origin_flow.origin_start(conn, user)

    async def ours_once() -> origin_flow.Written:
        written, _ = await ours(user)
        await ours.end_at_tavus(written)
        return written

    try:
        for name, run in (("origin", origin_once), ("ours", ours_once)):
            for attempt in range(2):  # the first one prepares statements: not counted
                mark = proxy.log.mark()
                written = await run()
                trips = proxy.log.since(mark)
                await origin_flow.delete_written(cleanup, [written])
                if attempt == 1:
                    out[name] = classify(trips)
                    out[name + "_texts"] = [t.label() for t in trips]
    finally:
        await conn.close()
        await cleanup.close()
        await ours.aclose()
        await ours_db.dispose()
        await proxy.close()
    return out
