"""Chaos: the network to PostgreSQL breaks under the service — refused, reset mid-flight,
blackholed — during starts, ends, callbacks and reads (issue 10 §1, §2, §10).

The service under test reaches PostgreSQL through a controllable TCP proxy
(tests/support/tcp_proxy.py); the test inspects the database directly. Every answer must be
a documented one (never a 500; a 503 carries `Retry-After`), a start whose conversation Tavus
created but we could not record is ended at once (or, if Tavus cannot be told either,
resolved by the reconciler by its name) and its user told `session_outcome_unknown`; after
the network is restored, one reconciler pass leaves nothing unresolved (tests/support/
checker.py). Each scenario writes its row of test-artifacts/chaos-report.md.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import RunningService
from tests.support.chaos import (
    CHAOS_SETTINGS,
    answered,
    callback_paths,
    conclude,
    converge,
    created_total,
    send,
    sim_state,
)
from tests.support.checker import History, callback_body, check
from tests.support.eventually import eventually
from tests.support.factories import create_user, session_rows
from tests.support.tcp_proxy import TcpProxy

JSON = {"content-type": "application/json"}


#: Tavus's create answer is held back this long while the test breaks the database...
CREATE_HOLD_S = 1.0


@pytest.fixture
def service_overrides(proxy: TcpProxy, pg_database_url: str) -> dict[str, Any]:
    return {
        **CHAOS_SETTINGS,
        "database_url_through": proxy.url_for(pg_database_url),
        # ...well within the client's read timeout: the answer comes, the write after it fails.
        "tavus_read_timeout_seconds": CREATE_HOLD_S + 2.0,
        "tavus_total_timeout_seconds": CREATE_HOLD_S + 3.0,
    }


async def start_live(service: RunningService, history: History, count: int) -> list[dict[str, Any]]:
    """`count` users with a live session each (201s recorded); their session bodies."""
    users = [await create_user(service.db) for _ in range(count)]
    responses = await asyncio.gather(
        *(
            send(history, service.client.post("/v1/sessions", headers=service.auth(u)), start=True)
            for u in users
        )
    )
    bodies = []
    for user, response in zip(users, responses, strict=True):
        assert answered(response).status_code == 201, response
        bodies.append({**response.json(), "user_id": user})
    await asyncio.to_thread(service.sim.drain, 5.0)
    return bodies


async def start_while_tavus_creates(
    service: RunningService, history: History, proxy: TcpProxy, user: uuid.UUID
) -> httpx.Response:
    """A start whose conversation Tavus creates (its answer held back 0.5 s, within the
    client's read timeout) while the
    database connection breaks: open connections reset, new ones refused."""
    before = await created_total(service)
    service.sim.add_fault(
        kind="timeout", endpoint="create", delay_s=CREATE_HOLD_S, apply_first=True
    )
    pending = asyncio.create_task(
        send(history, service.client.post("/v1/sessions", headers=service.auth(user)), start=True)
    )

    async def created() -> bool:
        return await created_total(service) > before

    await eventually(created, what="Tavus to create the conversation")
    proxy.reset()
    proxy.refuse()
    response = await pending
    assert response is not None
    return response


async def test_database_refused_during_starts_ends_and_callbacks(
    service: RunningService, proxy: TcpProxy
) -> None:
    began = time.monotonic()
    history = History()
    live = await start_live(service, history, 3)
    waiting = [await create_user(service.db) for _ in range(3)]

    # A start whose database write fails after Tavus created the conversation: the
    # conversation is ended at once, the user is told the outcome is unknown.
    answer = await start_while_tavus_creates(service, history, proxy, waiting[0])
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "session_outcome_unknown"
    stopped_id = answer.json()["session_id"]
    stopped = await session_rows(service.db, stopped_id)
    stopped_at_tavus = await _conversation_named(service, stopped["conversation"])
    assert stopped_at_tavus["status"] == "ended", "the unrecorded conversation bills on"

    # While refused: every kind of request is a 503 database_unavailable with Retry-After.
    state = await sim_state(service)
    paths = callback_paths(state)
    outage: list[httpx.Response | None] = []
    for body in live:
        row = uuid.UUID(body["mentor_conversation_id"])
        raw = callback_body(body["conversation_id"], "application.perception_analysis", x=1)
        outage += await asyncio.gather(
            send(
                history,
                service.client.post(f"/v1/sessions/{body['id']}/end", headers=_auth(service, body)),
            ),
            send(
                history,
                service.client.post(paths[body["conversation_id"]], content=raw, headers=JSON),
                callback=(row, raw),
            ),
            send(history, service.client.get("/v1/sessions", headers=_auth(service, body))),
            send(
                history,
                service.client.post("/v1/sessions", headers=service.auth(waiting[1])),
                start=True,
            ),
        )
    for response in outage:
        assert response is not None
        assert (response.status_code, response.json()["code"]) == (503, "database_unavailable")
        assert response.json()["reason"] == "refused"
    assert len(history.callbacks) == 0, "nothing was acknowledged while refused"
    assert (await created_total(service)) == 4, "a refused start never reaches Tavus"

    # The same, but Tavus cannot be told to end it either: the `starting` row is the trace
    # the reconciler resolves by the conversation's name.
    proxy.restore()
    service.sim.add_fault(kind="status", endpoint="end", status=503, count=10)
    answer = await start_while_tavus_creates(service, history, proxy, waiting[2])
    service.sim.clear_faults()
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "session_outcome_unknown"
    traced_id = answer.json()["session_id"]

    proxy.restore()
    lifted = time.monotonic()
    # Restored: the same requests now succeed, with no restart.
    for body in live:
        row = uuid.UUID(body["mentor_conversation_id"])
        raw = callback_body(body["conversation_id"], "application.perception_analysis", x=2)
        callback = await send(
            history,
            service.client.post(paths[body["conversation_id"]], content=raw, headers=JSON),
            callback=(row, raw),
        )
        assert answered(callback).status_code == 200, callback
        ended = await send(
            history,
            service.client.post(f"/v1/sessions/{body['id']}/end", headers=_auth(service, body)),
        )
        assert answered(ended).status_code == 200, ended

    converge_s, _ = await converge(service, lifted)
    verdict = await check(service.db, service.sim, history, service.name_prefix, verify_events=True)

    traced = await session_rows(service.db, traced_id)
    assert traced["conversation"]["status"] == "active", "resolved by name: adopted, owned"
    assert traced["conversation"]["conversation_url"], "the join URL was recorded"
    stopped = await session_rows(service.db, stopped_id)
    assert stopped["conversation"]["status"] == "ended"
    conclude(
        "01 database refused",
        history,
        verdict,
        began=began,
        converge_s=converge_s,
        notes="2 starts lost their write after Tavus created: 1 ended at once, 1 adopted by name",
    )


async def _conversation_named(service: RunningService, row: dict[str, Any]) -> dict[str, Any]:
    name = row["conversation_name"]
    [conversation] = [
        c for c in (await sim_state(service))["conversations"] if c["conversation_name"] == name
    ]
    return conversation


def _auth(service: RunningService, body: dict[str, Any]) -> dict[str, str]:
    return service.auth(body["user_id"])


async def test_connections_reset_mid_flight(service: RunningService, proxy: TcpProxy) -> None:
    began = time.monotonic()
    history = History()
    # Creates and ends stay in flight a while; no Tavus concurrency limit in the way.
    service.sim.set_config(latency_ms=150, concurrency_limit=None)
    live = await start_live(service, history, 4)
    users = [await create_user(service.db) for _ in range(8)]
    keys = {user: str(uuid.uuid4()) for user in users}
    paths = callback_paths(await sim_state(service))

    def start(user: uuid.UUID) -> Any:
        headers = {**service.auth(user), "Idempotency-Key": keys[user]}
        return send(history, service.client.post("/v1/sessions", headers=headers), start=True)

    def callback(body: dict[str, Any], event_type: str, **properties: Any) -> Any:
        raw = callback_body(body["conversation_id"], event_type, **properties)
        row = uuid.UUID(body["mentor_conversation_id"])
        path = paths[body["conversation_id"]]
        return send(
            history,
            service.client.post(path, content=raw, headers=JSON),
            callback=(row, raw),
        )

    burst = asyncio.gather(
        *(start(user) for user in users),
        *(
            send(
                history,
                service.client.post(f"/v1/sessions/{b['id']}/end", headers=_auth(service, b)),
            )
            for b in live
        ),
        *(callback(b, "application.perception_analysis", analysis="calm") for b in live),
        *(callback(b, "application.post_call_action_executed", action="note") for b in live),
        *(
            send(history, service.client.get(f"/v1/sessions/{b['id']}", headers=_auth(service, b)))
            for b in live
        ),
    )

    async def creating() -> bool:
        return await created_total(service) > len(live)

    await eventually(creating, what="the burst's first create at Tavus")
    proxy.reset()  # every open connection is reset, and every new one, for half a second
    await asyncio.sleep(0.5)
    proxy.restore()
    lifted = time.monotonic()
    answers = await burst
    service.sim.set_config(latency_ms=0)  # the burst is over: Tavus answers at once again
    assert all(answer is not None for answer in answers)
    bitten = sum(count for label, count in history.answers.items() if label.startswith("503"))
    assert bitten > 0, f"the reset hit no request: {history.answers}"

    converge_s, _ = await converge(service, lifted)
    # Every start retried with its key now gets a session: the one its first attempt made
    # (replayed) or, when that attempt wrote nothing, a new one — never a second
    # conversation for one session (the checker counts duplicates).
    for retried in await asyncio.gather(*(start(user) for user in users)):
        assert answered(retried).status_code == 201, (retried, retried.text)
    await asyncio.to_thread(service.sim.drain, 5.0)

    verdict = await check(service.db, service.sim, history, service.name_prefix, verify_events=True)
    conclude(
        "02 connections reset mid-flight",
        history,
        verdict,
        began=began,
        converge_s=converge_s,
        notes=f"reset for 0.5 s under {len(answers)} concurrent requests; then every start "
        "retried with its key",
    )


#: How long a database call may take when the network hangs: the statement timeout (1.5 s,
#: CHAOS_SETTINGS) plus the watchdog's 2 s margin for the network (db.py), plus 1.5 s for a
#: busy 2-core machine. A new connection gives up sooner (connect timeout, 2 s).
HUNG_CALL_BOUND_S = 1.5 + 2.0 + 1.5


async def test_blackholed_database_answers_within_the_deadline(
    service: RunningService, proxy: TcpProxy
) -> None:
    began = time.monotonic()
    history = History()
    live = await start_live(service, history, 3)
    users = [await create_user(service.db) for _ in range(4)]
    paths = callback_paths(await sim_state(service))

    async def timed(request: Any, **kwargs: Any) -> tuple[float, httpx.Response | None]:
        started = time.monotonic()
        response = await send(history, request, **kwargs)
        return time.monotonic() - started, response

    # One start is at Tavus when the network hangs: its write after the create hangs until
    # the deadline, then the conversation is ended and the user told the outcome is unknown.
    before = await created_total(service)
    service.sim.add_fault(
        kind="timeout", endpoint="create", delay_s=CREATE_HOLD_S, apply_first=True
    )
    in_flight = asyncio.create_task(
        timed(service.client.post("/v1/sessions", headers=service.auth(users[0])), start=True)
    )

    async def created() -> bool:
        return await created_total(service) > before

    await eventually(created, what="Tavus to create the conversation")
    proxy.blackhole()
    hung_at = time.monotonic()
    outage = await asyncio.gather(
        *(
            timed(service.client.post("/v1/sessions", headers=service.auth(u)), start=True)
            for u in users[1:]
        ),
        *(
            timed(service.client.post(f"/v1/sessions/{b['id']}/end", headers=_auth(service, b)))
            for b in live
        ),
        *(timed(service.client.get("/v1/sessions", headers=_auth(service, b))) for b in live),
        *(
            timed(
                service.client.post(
                    paths[b["conversation_id"]],
                    content=(raw := callback_body(b["conversation_id"], "application.x", n=1)),
                    headers=JSON,
                ),
                callback=(uuid.UUID(b["mentor_conversation_id"]), raw),
            )
            for b in live
        ),
        _healthz_while_hung(service, proxy),
    )
    healthz_s = outage.pop()
    assert isinstance(healthz_s, float)
    assert healthz_s < 0.5, f"/healthz took {healthz_s} s"
    slowest = 0.0
    for elapsed, response in outage:
        assert isinstance(elapsed, float)
        assert isinstance(response, httpx.Response)
        assert (response.status_code, response.json()["code"]) == (503, "database_unavailable")
        assert response.json()["reason"] == "timeout"
        slowest = max(slowest, elapsed)
    assert slowest <= HUNG_CALL_BOUND_S, f"a request waited {slowest:.2f} s on a hung database"
    elapsed, answer = await in_flight
    assert answered(answer).status_code == 503, answer
    assert answer.json()["code"] == "session_outcome_unknown"
    assert elapsed <= CREATE_HOLD_S + HUNG_CALL_BOUND_S + 1.0, f"the start took {elapsed:.2f} s"
    stopped = await session_rows(service.db, answer.json()["session_id"])
    assert (await _conversation_named(service, stopped["conversation"]))["status"] == "ended"

    proxy.restore()
    lifted = time.monotonic()
    for body in live:
        ended = await send(
            history,
            service.client.post(f"/v1/sessions/{body['id']}/end", headers=_auth(service, body)),
        )
        assert answered(ended).status_code == 200, ended
    converge_s, _ = await converge(service, lifted)
    verdict = await check(service.db, service.sim, history, service.name_prefix, verify_events=True)
    conclude(
        "03 database blackholed",
        history,
        verdict,
        began=began,
        converge_s=converge_s,
        notes=f"slowest answer while hung {slowest:.2f} s (bound {HUNG_CALL_BOUND_S} s); "
        f"hung for {lifted - hung_at:.1f} s; /healthz {healthz_s * 1000:.0f} ms",
    )


async def _healthz_while_hung(service: RunningService, proxy: TcpProxy) -> float:
    """How long `/healthz` takes while database calls hang (it needs no database)."""
    await eventually(lambda: proxy.stats().bytes_held, what="database calls hanging")
    started = time.monotonic()
    response = await service.client.get("/healthz")
    assert response.status_code == 200
    return time.monotonic() - started
