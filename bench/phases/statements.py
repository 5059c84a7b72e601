"""Statements (sequential, in-process): the app from `create_app` under its lifespan, driven with
`httpx.ASGITransport`, connected to PostgreSQL through the counting proxy (bench/pgwire.py),
with `StatementCounter` on its engine. For one start, one read, one end and each callback type,
in isolation: the statements the service sends and the round trips PostgreSQL sees."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.harness import START_LIMIT, Harness, with_host_port
from bench.payloads import PERSONA_ID, POST_CALL, REPLICA_ID, callback_event
from bench.pgwire import CountingProxy, classify
from tests.support.statements import StatementCounter

#: The public base URL of the in-process app (never resolved: ASGITransport).
BASE_URL = "http://bench.invalid"


async def statements_phase(h: Harness) -> dict[str, Any]:
    from facetoface.app import create_app

    pg = urlsplit(h.database_url)
    proxy = await CountingProxy("127.0.0.1", pg.port or 5432).start()
    settings = h.db_settings(
        with_host_port(h.database_url, proxy.port, "ssl=disable"),
        tavus_api_key="sim-key",
        tavus_base_url=f"{h.sim_url}/v2",
        public_base_url=BASE_URL,
        tavus_default_persona_id=PERSONA_ID,
        tavus_default_replica_id=REPLICA_ID,
        db_pool_size=2,
        session_start_limit=START_LIMIT,
    )
    app = create_app(settings)
    samples: dict[str, list[dict[str, Any]]] = {}
    iterations = min(h.args.iterations, 10)
    user = h.count_users[0]
    headers = h.tokens([user], BASE_URL)[user]
    try:
        # No Tavus latency needed to count (restored afterwards).
        async with (
            h.sim_latency(0) as sim,
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client,
        ):
            counter = StatementCounter(app.state.services.db.engine)
            try:
                for i in range(iterations + 1):  # the first cycle warms caches
                    cycle = await _count_cycle(client, sim, headers, counter, proxy)
                    if i > 0:
                        for op, sample in cycle.items():
                            samples.setdefault(op, []).append(sample)
            finally:
                counter.close()
    finally:
        await proxy.close()
    return {op: _count_summary(values) for op, values in samples.items()}


async def _count_cycle(
    client: httpx.AsyncClient,
    sim: httpx.AsyncClient,
    headers: dict[str, str],
    counter: StatementCounter,
    proxy: CountingProxy,
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}

    async def count(op: str, request: Awaitable[httpx.Response], expect: int) -> httpx.Response:
        counter.reset()
        identity_before = getattr(counter, "identity_count", 0)
        mark = proxy.log.mark()
        response = await request
        if response.status_code != expect:
            raise RuntimeError(f"{op}: HTTP {response.status_code}: {response.text[:300]}")
        trips = proxy.log.since(mark)
        out[op] = {
            "statements": counter.count,
            # The per-transaction identity statement of row-level security, when the
            # service has one: StatementCounter counts it apart.
            "identity_statements": getattr(counter, "identity_count", 0) - identity_before,
            "statement_texts": [" ".join(s.split())[:200] for s in counter.statements],
            "round_trips": classify(trips),
            "round_trip_texts": [t.label() for t in trips],
        }
        return response

    started = await count("start", client.post("/v1/sessions", headers=headers), 201)
    body = started.json()
    conversation = (await sim.get(f"/_sim/conversations/{body['conversation_id']}")).json()
    path = conversation["callback_url"].removeprefix(BASE_URL)
    cid = body["conversation_id"]
    await count(
        "callback (replica_joined)",
        client.post(path, json=callback_event(cid, "system.replica_joined")),
        200,
    )
    await count("read", client.get(f"/v1/sessions/{body['id']}", headers=headers), 200)
    await count("end", client.post(f"/v1/sessions/{body['id']}/end", headers=headers), 200)
    for kind in POST_CALL:
        short = kind.split(".", 1)[1]
        await count(f"callback ({short})", client.post(path, json=callback_event(cid, kind)), 200)
    await count(
        "callback (duplicate)", client.post(path, json=callback_event(cid, POST_CALL[0])), 200
    )
    return out


def _count_summary(values: list[dict[str, Any]]) -> dict[str, Any]:
    counts = [v["statements"] for v in values]
    trips = [v["round_trips"]["total"] for v in values]
    typical = Counter(counts).most_common(1)[0][0]
    sample = next(v for v in values if v["statements"] == typical)
    return {
        "samples": len(values),
        "statements": typical,
        "identity_statements": sample["identity_statements"],
        "statements_min": min(counts),
        "statements_max": max(counts),
        "round_trips": Counter(trips).most_common(1)[0][0],
        "round_trips_max": max(trips),
        "round_trip_breakdown": sample["round_trips"],
        "statement_texts": sample["statement_texts"],
        "round_trip_texts": sample["round_trip_texts"],
    }
