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
    callback_paths,
    conclude,
    converge,
    created_total,
    send,
    sim_state,
    wait_until,
)
from tests.support.checker import History, callback_body, check
from tests.support.factories import create_user, session_rows
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.parametrize("database_settings", ["postgresql"], indirect=True)

JSON = {"content-type": "application/json"}


@pytest.fixture
def service_overrides(proxy: TcpProxy, pg_database_url: str) -> dict[str, Any]:
    return {**CHAOS_SETTINGS, "database_url_through": proxy.url_for(pg_database_url)}


async def start_live(service: RunningService, history: History, count: int) -> list[dict[str, Any]]:
    """`count` users with a live session each (201s recorded); their session bodies."""
    bodies = []
    for _ in range(count):
        user = await create_user(service.db)
        response = await send(
            history, service.client.post("/v1/sessions", headers=service.auth(user)), start=True
        )
        assert response is not None and response.status_code == 201, response
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
    service.sim.add_fault(kind="timeout", endpoint="create", delay_s=0.5, apply_first=True)
    pending = asyncio.create_task(
        send(history, service.client.post("/v1/sessions", headers=service.auth(user)), start=True)
    )

    async def created() -> bool:
        return await created_total(service) > before

    await wait_until(created, within=5, what="Tavus to create the conversation")
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
        assert callback is not None and callback.status_code == 200, callback
        ended = await send(
            history,
            service.client.post(f"/v1/sessions/{body['id']}/end", headers=_auth(service, body)),
        )
        assert ended is not None and ended.status_code == 200, ended

    converge_s, report = await converge(service, lifted)
    verdict = await check(service.db, service.sim, history, service.name_prefix, verify_events=True)

    traced = await session_rows(service.db, traced_id)
    assert traced["conversation"]["status"] == "active", "resolved by name: adopted, owned"
    assert traced["conversation"]["conversation_url"], "the join URL was recorded"
    stopped = await session_rows(service.db, stopped_id)
    assert stopped["conversation"]["status"] == "ended"
    assert report.actions["adopted"] == 2
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
