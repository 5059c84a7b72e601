"""Chaos: more load than the database pool can take, over two real `serve` replicas, and a
request header far beyond any sane size, sent over TCP to the service's own HTTP server (issue
10 §2, §5, §10).

Load shedding: with a pool of 2 + 1 connections per replica and every database round trip
slowed by a proxy, a burst eight times the pool gets fast `503 database_unavailable`
(`reason: saturated`, counted in `/metrics`) with `Retry-After` — never a 500, never a
request waiting out a pool timeout — and every conversation Tavus created is owned by a
session that knows its join URL.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import RunningService, app_role_url
from tests.support.chaos import CHAOS_SETTINGS, conclude, converge, send
from tests.support.checker import History, check
from tests.support.eventually import eventually
from tests.support.factories import create_user
from tests.support.replicas import Replica, replica_auth, serve_replicas
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e

POOL = {"db_pool_size": 2, "db_max_overflow": 1}
#: Longer than any answer may take: a request that waited for the pool would show here.
POOL_TIMEOUT_S = 30


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return dict(CHAOS_SETTINGS)


def saturated_count(metrics: str) -> float:
    """`facetoface_db_unavailable_total{reason="saturated"}` in a /metrics text."""
    pattern = r'^facetoface_db_unavailable_total\{reason="saturated"\} (\S+)$'
    found = re.search(pattern, metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_burst_beyond_the_pool_is_shed_with_503(
    service: RunningService, proxy: TcpProxy, pg_database_url: str, tmp_path: Path
) -> None:
    began = time.monotonic()
    history = History()
    service.sim.set_config(concurrency_limit=None)
    users = [await create_user(service.db) for _ in range(24)]
    proxy.delay(60)  # every round trip holds its connection 60 ms longer
    async with serve_replicas(
        2,
        database_url=app_role_url(proxy.url_for(pg_database_url)),
        sim=service.sim,
        log_dir=tmp_path,
        db_admission_wait_seconds=0.3,
        db_pool_timeout_seconds=POOL_TIMEOUT_S,
        **POOL,
    ) as replicas:

        async def timed(replica: Replica, headers: dict[str, str]) -> float:
            started = time.monotonic()
            await send(history, replica.client.post("/v1/sessions", headers=headers), start=True)
            return time.monotonic() - started

        # Each user: two starts with one Idempotency-Key (one per replica) and one without.
        attempts = []
        for index, user in enumerate(users):
            key = str(uuid.uuid4())
            attempts += [
                timed(replicas[0], replica_auth(user, key)),
                timed(replicas[1], replica_auth(user, key)),
                timed(replicas[index % 2], replica_auth(user)),
            ]
        elapsed = await asyncio.gather(*attempts)
        proxy.restore()
        lifted = time.monotonic()
        metrics = [(await r.client.get("/metrics")).text for r in replicas]

    shed = sum(saturated_count(text) for text in metrics)
    capacity = 2 * (POOL["db_pool_size"] + POOL["db_max_overflow"])
    assert len(attempts) >= 8 * capacity
    converge_s, _ = await converge(service, lifted)
    verdict = await check(service.db, service.sim, history, service.name_prefix)
    async with service.db.transaction() as session:
        without_url = (
            await session.execute(
                text(
                    "SELECT count(*) FROM mentor_conversations WHERE status IN "
                    "('active', 'ending') AND conversation_url IS NULL"
                )
            )
        ).scalar_one()
    conclude(
        "04 pool exhausted (2 replicas)",
        history,
        verdict,
        began=began,
        converge_s=converge_s,
        notes=f"{len(attempts)} starts at once on 2 × {capacity // 2} connections, +60 ms per "
        f"round trip; shed (saturated) {shed:.0f}; slowest answer {max(elapsed):.2f} s",
        expect={
            "load was shed": history.answers["503 database_unavailable"] > 0,
            "every shed call counted as saturated in /metrics": (
                shed >= history.answers["503 database_unavailable"]
            ),
            "answers are 201, 409 or 503": set(history.start_statuses) <= {201, 409, 503},
            # Regression: a start's write after Tavus created its conversation was shed like
            # new work (the conversation ended at once, the user told the outcome is unknown).
            "no start lost to shedding after Tavus created it": (
                history.answers["503 session_outcome_unknown"] == 0
            ),
            "no answer waited for the pool (< 5 s)": max(elapsed) < 5,
            "every live session knows its join URL": without_url == 0,
        },
    )


#: The header bomb: a 1 MB `Authorization` header.
BOMB = {"Authorization": "Bearer " + "a" * (1 << 20)}


async def test_header_bomb_is_refused_fast_with_431_without_stalling_others(
    service: RunningService,
) -> None:
    """The HTTP server itself (serve's uvicorn protocol, `bounded_http_protocol`, which
    the test service runs on its socket too) refuses the head with a 431 before the app sees
    it, at once, and goes on answering others meanwhile."""
    began = time.monotonic()
    history = History()
    user = await create_user(service.db)
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:  # over TCP
        stop = asyncio.Event()
        latencies: list[float] = []

        async def healthz_latencies() -> None:
            while not stop.is_set():
                started = time.monotonic()
                response = await client.get("/healthz")
                assert response.status_code == 200
                latencies.append(time.monotonic() - started)
                await asyncio.sleep(0.02)  # the probe's rhythm

        async def bomb() -> float:
            started = time.monotonic()
            await send(history, client.get("/v1/sessions", headers=BOMB))
            return time.monotonic() - started

        prober = asyncio.create_task(healthz_latencies())
        await eventually(lambda: latencies, what="the first /healthz probe")
        bombs = await asyncio.gather(*(bomb() for _ in range(4)))
        stop.set()
        await prober
        after = await send(history, client.get("/v1/sessions", headers=service.auth(user)))

    verdict = await check(service.db, service.sim, history, service.name_prefix)
    refused = sum(count for label, count in history.answers.items() if label[:1] == "4")
    conclude(
        "10 header bomb (1 MB Authorization)",
        history,
        verdict,
        began=began,
        converge_s=None,
        notes=f"4 bombs at once: slowest answer {max(bombs):.2f} s; /healthz meanwhile "
        f"{len(latencies)} × ≤ {max(latencies) * 1000:.0f} ms",
        expect={
            "every bomb refused with a 4xx": refused == len(bombs),
            "all of them 431": sum(
                count for label, count in history.answers.items() if label.startswith("431")
            )
            == len(bombs),
            "refused within 1 s": max(bombs) < 1.0,
            # (a busy 2-core machine's scheduling included)
            "/healthz never stalled (< 1 s)": max(latencies) < 1.0,
            "the server still serves": after is not None and after.status_code == 200,
        },
    )
