"""Graceful drain (README "Shutdown"): one of two `serve` replicas gets SIGTERM while 50 starts
are inside Tavus's create (each create takes Tavus 3 s to answer) and Tavus's callbacks follow.

The drained replica says `draining` on `/readyz` (503) at once while it still serves, every
start it had accepted finishes and records its outcome (201: no start is cut), it exits 0
within `SHUTDOWN_GRACE_SECONDS`. The callbacks for its sessions that Tavus sends after it left
fail (each session's callback URL names the replica that started it), and one reconciler pass
on the other replica recovers them: 0 lost callbacks, no answer but a 2xx, 4xx or documented
503, no orphan at Tavus (tests/support/checker.py).

A second scenario: a start still inside Tavus's create as the grace runs out is cut off: it
answers `503 session_outcome_unknown` naming its session (a documented answer: the client
reads the session), the process exits within the grace, and the conversation Tavus did create
belongs to that session once one reconciler pass ran — nothing left billing, nothing lost.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningService
from tests.support.chaos import CHAOS_SETTINGS, answered, conclude, send, sim_state
from tests.support.checker import History, check
from tests.support.eventually import eventually
from tests.support.factories import create_user
from tests.support.replicas import Replica, replica_auth, serve_replicas

pytestmark = pytest.mark.e2e

#: Tavus answers each create after CREATE_S; the service waits for it. The grace covers it.
CREATE_S = 3.0
SETTINGS: dict[str, Any] = {
    **CHAOS_SETTINGS,
    "tavus_read_timeout_seconds": 10,
    "tavus_total_timeout_seconds": 12,
    "shutdown_grace_seconds": 20,
    "shutdown_readiness_delay_seconds": 1,
}
STARTS = 50


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return dict(SETTINGS)


async def _readiness(replica: Replica) -> tuple[int, str] | None:
    """`/readyz`'s status and body status, or None when nothing answers (the listener is
    closed: the drain went past its readiness window)."""
    try:
        response = await replica.client.get("/readyz", timeout=2)
    except httpx.TransportError:
        return None
    return response.status_code, response.json()["status"]


async def _exited(replica: Replica, within: float) -> int | None:
    assert replica.process is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if (code := replica.process.poll()) is not None:
            return code
        await asyncio.sleep(0.05)
    return None


async def _talk_and_leave(service: RunningService, conversation_id: str) -> None:
    await asyncio.to_thread(service.sim.join, conversation_id, "Ana")
    await asyncio.to_thread(service.sim.say, conversation_id, "The week was long")
    await asyncio.to_thread(service.sim.leave, conversation_id)


async def test_sigterm_during_starts_and_callbacks_loses_nothing(
    service: RunningService, tmp_path: Path
) -> None:
    began = time.monotonic()
    history = History()
    service.sim.set_config(concurrency_limit=None, replica_join_delay_ms=200)
    users = [await create_user(service.db) for _ in range(STARTS)]
    async with serve_replicas(
        2, database_url=service.settings.database_url, sim=service.sim, log_dir=tmp_path, **SETTINGS
    ) as (doomed, survivor):
        # Every create is carried out at once and answered CREATE_S later.
        service.sim.add_fault(
            endpoint="create", kind="timeout", delay_s=CREATE_S, apply_first=True, count=STARTS
        )
        on = [doomed if i % 2 == 0 else survivor for i in range(STARTS)]
        starts = [
            asyncio.ensure_future(
                send(
                    history, on[i].client.post("/v1/sessions", headers=replica_auth(u)), start=True
                )
            )
            for i, u in enumerate(users)
        ]

        async def creates_in_flight() -> bool:
            return len((await sim_state(service))["conversations"]) >= STARTS // 2

        await eventually(creates_in_flight, within=30, what="the starts to reach Tavus's create")
        assert not any(start.done() for start in starts)  # all inside Tavus's create
        assert doomed.process is not None
        doomed.process.send_signal(signal.SIGTERM)
        said = await eventually(
            lambda: _readiness(doomed), what="the drained replica's readiness to answer"
        )
        assert (await _readiness(survivor)) == (200, "ok")

        answers = [answered(response) for response in await asyncio.gather(*starts)]
        assert [r.status_code for r in answers] == [201] * STARTS, [r.text for r in answers]
        code = await _exited(doomed, within=SETTINGS["shutdown_grace_seconds"] + 10)
        bodies = [{**r.json(), "user_id": u} for r, u in zip(answers, users, strict=True)]
        drained = [b for b, replica in zip(bodies, on, strict=True) if replica is doomed]

        # Tavus goes on: users of both replicas talk and leave; some of the drained replica's
        # users end their session through the other one.
        await asyncio.gather(*(_talk_and_leave(service, b["conversation_id"]) for b in bodies[:10]))
        for body in drained[5:10]:
            ended = answered(
                await send(
                    history,
                    survivor.client.post(
                        f"/v1/sessions/{body['id']}/end", headers=replica_auth(body["user_id"])
                    ),
                )
            )
            assert ended.status_code == 200, ended.text
        await asyncio.to_thread(service.sim.drain, 15.0)
        state = await sim_state(service)
        ours = {b["conversation_id"] for b in drained}
        failed_deliveries = sum(
            d["outcome"] == "failed"
            for c in state["conversations"]
            if c["conversation_id"] in ours
            for d in c["deliveries"]
        )

        lifted = time.monotonic()
        result = await survivor.reconcile()
        assert result["errors"] == 0, result
        converge_s = round(time.monotonic() - lifted, 2)
        await asyncio.to_thread(service.sim.drain, 5.0)

    verdict = await check(service.db, service.sim, history, service.name_prefix, verify_events=True)
    conclude(
        "09 replica drained (SIGTERM) mid-starts and callbacks",
        history,
        verdict,
        began=began,
        converge_s=converge_s,
        notes=f"{STARTS} starts inside a {CREATE_S:.0f} s create, SIGTERM to one of two "
        f"replicas; {failed_deliveries} deliveries to it failed after it left, recovered by "
        "one pass on the other",
        expect={
            "readiness said draining (503) while it served": said == (503, "draining"),
            "every start answered 201": len(answers) == STARTS,
            "the drained replica exited 0 within the grace": code == 0,
            "no session without a conversation, none failed": set(verdict.statuses)
            <= {"active", "ended"},
        },
    )


async def test_a_start_past_the_grace_is_cut_and_adopted(
    service: RunningService, tmp_path: Path
) -> None:
    """Tavus holds one create far longer than the grace: the process does not wait for it,
    and the start still answers (never a 500, never a dropped connection)."""
    history = History()
    user = await create_user(service.db)
    grace = 4
    async with serve_replicas(
        1,
        database_url=service.settings.database_url,
        sim=service.sim,
        log_dir=tmp_path,
        **{
            **SETTINGS,
            "shutdown_grace_seconds": grace,
            "tavus_read_timeout_seconds": 120,
            "tavus_total_timeout_seconds": 120,
        },
    ) as (doomed,):
        service.sim.add_fault(endpoint="create", kind="timeout", delay_s=90, apply_first=True)
        start = asyncio.ensure_future(
            send(
                history,
                doomed.client.post("/v1/sessions", headers=replica_auth(user)),
                start=True,
            )
        )

        async def created() -> bool:
            return len((await sim_state(service))["conversations"]) == 1

        await eventually(created, what="the create to reach Tavus")
        assert doomed.process is not None
        doomed.process.send_signal(signal.SIGTERM)
        # Well before Tavus's answer (90 s) and the service's own Tavus timeout (120 s).
        code = await _exited(doomed, within=grace + 15)
        # Cut off before the grace's end, the start still answered, naming its session.
        cut = answered(await start)
        assert cut.status_code == 503, cut.text
        assert cut.json()["code"] == "session_outcome_unknown", cut.text
    # One pass (the test's own instance of the service, on the same database and Tavus).
    report = await service.reconciler.run_once()
    assert report.errors == 0, report

    verdict = await check(service.db, service.sim, history, service.name_prefix)
    assert code is not None, "the drained replica outlived its grace"
    # The conversation Tavus created belongs to a live session (its `replica_joined` bound it,
    # or the pass adopted it): not an orphan, not lost.
    assert verdict.ok, verdict
    assert verdict.statuses == {"active": 1}
