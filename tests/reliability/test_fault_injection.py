"""Fault injection on PostgreSQL: Tavus failures of every kind, lost/duplicated/shuffled
callbacks, a killed `serve`, and connections terminated under load. After each scenario and
one reconciler pass, the checker's invariants must hold (tests/support/checker.py).

Each scenario's figures are appended to `bench/results/fault-report.jsonl`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from facetoface.auth.dev_issuer import mint_token
from facetoface.config import Settings
from tests.conftest import RunningService
from tests.support.checker import History, Verdict, callback_body, check
from tests.support.clock import Clock
from tests.support.eventually import eventually
from tests.support.factories import create_user
from tests.support.sessions import EAGER_RECONCILER
from tests.support.signing import TEST_CALLBACK_SIGNING_SECRET, TEST_JWT_SECRET
from tests.support.tavus_timing import no_backoff

pytestmark = pytest.mark.e2e

REPORT = Path(__file__).resolve().parents[2] / "bench" / "results" / "fault-report.jsonl"
ALLOWED = {200, 201, 409, 502, 503}


@pytest.fixture(autouse=True)
def _no_backoff() -> Iterator[None]:
    """Tavus retries at once: the invariants are the point here, not the backoff's timing."""
    with no_backoff():
        yield


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {
        **EAGER_RECONCILER,
        "tavus_breaker_threshold": 1000,  # faults here are deliberate; keep calling Tavus
        "session_participant_left_timeout_seconds": 0,
        # Below the injected timeouts (5 s), above what a loaded machine takes to answer a
        # dozen calls at once: a healthy call that times out would leave an orphan.
        "tavus_read_timeout_seconds": 2.0,
        "tavus_total_timeout_seconds": 2.5,
    }


async def run_users(
    service: RunningService, history: History, users: list[uuid.UUID], *, end: bool = True
) -> None:
    """Each user starts (twice, with one idempotency key) and ends."""

    async def one(user_id: uuid.UUID) -> None:
        headers = {**service.auth(user_id), "Idempotency-Key": str(uuid.uuid4())}
        responses = await asyncio.gather(
            service.client.post("/v1/sessions", headers=headers),
            service.client.post("/v1/sessions", headers=headers),
        )
        for response in responses:
            history.start_statuses[response.status_code] += 1
            assert response.status_code in ALLOWED | {409}, response.text
            if response.status_code == 201 and response.headers.get("idempotent-replayed") is None:
                history.starts.append(response.json())
        created = [r for r in responses if r.status_code == 201]
        if end and created:
            ended = await service.client.post(
                f"/v1/sessions/{created[0].json()['id']}/end", headers=service.auth(user_id)
            )
            history.other_statuses[ended.status_code] += 1
            assert ended.status_code in ALLOWED, ended.text

    await asyncio.gather(*(one(u) for u in users))


RECONCILE_MS: dict[int, float] = {}


async def settle(service: RunningService, clock: Clock | None = None) -> None:
    """Let callbacks land, then one reconciler pass (its duration goes to the report).
    `clock`: the pass comes once no create can still be running at Tavus, so a start Tavus
    never made is decided (conversations/unknown_starts.py)."""
    await asyncio.to_thread(service.sim.drain, 5.0)
    if clock is not None:
        tavus = service.reconciler.tavus
        clock.advance(tavus.longest_call_seconds + tavus.total_timeout_seconds)
    began = time.monotonic()
    await service.reconciler.run_once()
    RECONCILE_MS[id(service)] = round((time.monotonic() - began) * 1000, 1)
    await asyncio.to_thread(service.sim.drain, 5.0)


async def verdict(
    service: RunningService, scenario: str, history: History, started: float
) -> Verdict:
    result = await check(service.db, service.sim, history, service.name_prefix)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    with REPORT.open("a") as report:
        report.write(
            json.dumps(
                {
                    "scenario": scenario,
                    "operations": history.operations(),
                    "callbacks_acknowledged": len(history.callbacks),
                    "start_statuses": dict(history.start_statuses),
                    "seconds": round(time.monotonic() - started, 2),
                    "reconcile_pass_ms": RECONCILE_MS.get(id(service)),
                    **asdict(result),
                }
            )
            + "\n"
        )
    assert result.ok, result
    return result


FAULTS: dict[str, list[dict[str, Any]]] = {
    "tavus_5xx": [
        {"kind": "status", "status": 503, "endpoint": "create", "count": 4},
        {"kind": "status", "status": 500, "endpoint": "end", "count": 3},
    ],
    "timeout_before_send": [{"kind": "timeout", "endpoint": "create", "delay_s": 5, "count": 3}],
    "timeout_after_send": [
        {"kind": "timeout", "endpoint": "create", "delay_s": 5, "apply_first": True, "count": 3}
    ],
    "dropped_connection": [
        {"kind": "drop_connection", "endpoint": "create", "apply_first": True, "count": 2}
    ],
    "concurrency_limit": [{"kind": "concurrency_limit", "endpoint": "create", "count": 4}],
    "out_of_credits": [{"kind": "out_of_credits", "endpoint": "create", "count": 2}],
}


@pytest.mark.parametrize("scenario", sorted(FAULTS))
async def test_tavus_faults(service: RunningService, scenario: str, clock: Clock) -> None:
    started = time.monotonic()
    for fault in FAULTS[scenario]:
        service.sim.add_fault(**fault)
    users = [await create_user(service.db) for _ in range(8)]
    history = History()

    await run_users(service, history, users)
    await settle(service, clock)

    result = await verdict(service, scenario, history, started)
    assert result.acknowledged_starts >= 1


async def test_callbacks_dropped_duplicated_shuffled(service: RunningService) -> None:
    started = time.monotonic()
    service.sim.set_config(
        callback_duplicate=3, callback_shuffle=True, callback_drop_probability=0.4, callback_seed=7
    )
    users = [await create_user(service.db) for _ in range(6)]
    history = History()
    await run_users(service, history, users, end=False)
    for body in history.starts:  # every user talks, then leaves: Tavus shuts the rooms
        await asyncio.to_thread(service.sim.join, body["conversation_id"])
        await asyncio.to_thread(service.sim.say, body["conversation_id"], "hello")
        await asyncio.to_thread(service.sim.leave, body["conversation_id"])
    await settle(service)

    result = await verdict(service, "callbacks_dropped_duplicated_shuffled", history, started)
    # Every conversation Tavus has ended here too. (There can be one more than acknowledged
    # starts: a start whose create answer came too late is answered 503 outcome-unknown,
    # and the reconciler adopts its conversation — the checker verified it is no duplicate.)
    assert result.statuses.get("ended") == result.conversations_at_tavus >= len(history.starts)
    async with service.db.transaction() as session:
        missing = (
            await session.execute(
                text(
                    "SELECT count(*) FROM mentor_conversations "
                    "WHERE status = 'ended' AND transcript IS NULL"
                )
            )
        ).scalar_one()
    assert missing == 0, "the reconciler recovered every dropped transcript"


async def test_callback_storm_acknowledged_means_stored(service: RunningService) -> None:
    started = time.monotonic()
    service.sim.set_config(callback_drop_probability=1.0)
    users = [await create_user(service.db) for _ in range(5)]
    history = History()
    await run_users(service, history, users, end=False)
    paths = {
        c["conversation_id"]: c["callback_url"].removeprefix(service.url)
        for c in service.sim.conversations()["conversations"]
    }
    bodies = []
    for body in history.starts:
        cid = body["conversation_id"]
        for event_type, props in [
            ("system.replica_joined", {}),
            ("system.shutdown", {"shutdown_reason": "participant_left_timeout"}),
            ("application.transcription_ready", {"transcript": [{"role": "user", "content": "x"}]}),
            ("application.perception_analysis", {"analysis": "ok"}),
        ]:
            bodies.append(
                (
                    uuid.UUID(body["mentor_conversation_id"]),
                    paths[cid],
                    callback_body(cid, event_type, **props),
                )
            )

    async def deliver(row: uuid.UUID, path: str, raw: bytes) -> None:
        """One callback as Tavus sends it: a 5xx (`database_unavailable`: shed as
        `saturated`, or a call that overran its deadline on a loaded machine) is sent again,
        a little later."""
        for attempt in range(1, 20):
            response = await service.client.post(
                path, content=raw, headers={"content-type": "application/json"}
            )
            history.other_statuses[response.status_code] += 1
            if response.status_code == 200:
                history.callbacks.append((row, raw))
            if response.status_code < 500:
                return
            assert response.json()["code"] == "database_unavailable", response.text
            await asyncio.sleep(0.02 * attempt)  # Tavus's backoff, shortened
        raise AssertionError(f"{path} was shed again and again")

    # All at once, as an in-process client sends them: more than the service admits (its
    # pool and queue), so some are shed and sent again.
    await asyncio.gather(*(deliver(row, path, raw) for row, path, raw in bodies * 4))
    await settle(service)

    await verdict(service, "callback_storm", history, started)
    assert len(history.callbacks) == len(bodies) * 4
    assert set(history.other_statuses) <= {200, 503}, history.other_statuses


async def test_connections_terminated_under_load(
    service: RunningService, pg_database_url: str
) -> None:
    """`pg_terminate_backend` on the service's connections while users start and end."""
    started = time.monotonic()
    users = [await create_user(service.db) for _ in range(12)]
    history = History()
    stop = asyncio.Event()

    async def nemesis() -> int:
        import asyncpg

        conn = await asyncpg.connect(pg_database_url)  # the superuser's, to terminate others
        killed = 0
        try:
            while not stop.is_set():
                killed += len(
                    await conn.fetch(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                        "AND backend_type = 'client backend'"
                    )
                )
                await asyncio.sleep(0.4)  # the nemesis's rhythm
        finally:
            await conn.close()
        return killed

    chaos = asyncio.create_task(nemesis())
    await run_users(service, history, users)
    stop.set()
    killed = await chaos
    # The service recovers without a restart: a normal request succeeds now.
    again = await service.client.get("/readyz")
    assert again.status_code == 200
    await settle(service)

    assert killed > 0
    assert 500 not in history.start_statuses
    assert 500 not in history.other_statuses
    await verdict(service, "pg_terminate_backend", history, started)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_serve_killed_between_writing_the_session_and_recording_the_conversation(
    service: RunningService,
) -> None:
    """A real `serve` process is SIGKILLed while Tavus creates its conversation."""
    started = time.monotonic()
    user_id = await create_user(service.db)
    # Tavus creates the conversation, then its answer is slow: the process dies meanwhile.
    # (Long enough that no scheduling delay on a busy machine lets the answer arrive first.)
    service.sim.add_fault(kind="timeout", endpoint="create", delay_s=12, apply_first=True)
    port = _free_port()
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "SUPABASE_JWT_SECRET": TEST_JWT_SECRET,
        # The same deployment as `service`: callbacks for its sessions verify on either.
        "CALLBACK_SIGNING_SECRET": TEST_CALLBACK_SIGNING_SECRET,
        "DATABASE_URL": service.settings.database_url,
        "PORT": str(port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "TAVUS_API_KEY": service.sim.api_key,
        "TAVUS_BASE_URL": service.sim.api_url,
        "TAVUS_DEFAULT_REPLICA_ID": "r0000default",
        "TAVUS_READ_TIMEOUT_SECONDS": "30",
        "TAVUS_TOTAL_TIMEOUT_SECONDS": "30",
        "RECONCILE_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, killed below
        [sys.executable, "-m", "facetoface", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

            async def healthy() -> bool:
                assert process.poll() is None, "serve exited"
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(healthy, within=30, what="serve answers /healthz")
            child = Settings(  # type: ignore[call-arg]
                _env_file=None, environment="test", supabase_jwt_secret=TEST_JWT_SECRET
            )
            token = mint_token(child, user_id=user_id)
            request = asyncio.create_task(
                client.post("/v1/sessions", headers={"Authorization": f"Bearer {token}"})
            )
            # Phase 1 committed and Tavus created the conversation; its answer is pending.
            await eventually(
                lambda: asyncio.to_thread(lambda: service.sim.conversations()["created_total"]),
                what="the create reached Tavus",
            )
            process.send_signal(signal.SIGKILL)
            try:
                answered = await request
            except httpx.TransportError:
                answered = None
            assert answered is None, answered.text
    finally:
        process.kill()
        process.wait()

    history = History()
    await settle(service)
    result = await verdict(service, "serve_killed_mid_start", history, started)
    assert result.conversations_at_tavus == 1
    assert result.statuses == {"active": 1}, "the reconciler adopted the conversation"
