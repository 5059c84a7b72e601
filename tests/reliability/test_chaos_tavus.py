"""Chaos: Tavus misbehaves — creates the conversation and then answers 5xx (or drops the
connection, or answers too late), answers a verbose fetch with garbage (issue 10 §3, §4,
§10).

- A start whose create Tavus may have carried out is never sent again: the user is told
  `session_outcome_unknown` for that session; a retry asks Tavus for the conversation by its
  name and adopts it — with the same `Idempotency-Key` it is answered with the session (201,
  replayed), without one with the live session and its room (409). Never a second
  conversation.
- The reconciler isolates each row: a session whose verbose fetch returns something
  malformed is recorded (`reconcile_error`) and skipped; the pass goes on, and the orphan
  sweep still runs.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from facetoface.models import MentorConversation, ReconcileRun
from tests.conftest import RunningService
from tests.support.chaos import (
    CHAOS_SETTINGS,
    answered,
    conclude,
    converge,
    conversation_at_tavus,
    created_total,
    send,
)
from tests.support.checker import History, check
from tests.support.clock import Clock
from tests.support.factories import create_user, session_rows


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return dict(CHAOS_SETTINGS)


#: Ways Tavus can leave a create's outcome unknown: it created the conversation, then the
#: client saw a server error, a dropped connection, or no answer within its read timeout.
AFTER_CREATE: list[dict[str, Any]] = [
    {"kind": "status", "status": 500},
    {"kind": "status", "status": 502},
    {"kind": "status", "status": 503},
    {"kind": "status", "status": 504},
    {"kind": "drop_connection"},
    {"kind": "timeout", "delay_s": 1.5},  # past the 0.8 s read timeout (EAGER_RECONCILER)
]


async def test_tavus_5xx_after_create_never_makes_a_second_conversation(
    service: RunningService,
) -> None:
    began = time.monotonic()
    history = History()
    for fault in AFTER_CREATE:
        service.sim.add_fault(endpoint="create", apply_first=True, **fault)
    users = [await create_user(service.db) for _ in AFTER_CREATE]
    keys = {user: str(uuid.uuid4()) for user in users}

    def start(user: uuid.UUID, *, key: bool = True) -> Any:
        headers = service.auth(user) | ({"Idempotency-Key": keys[user]} if key else {})
        return send(history, service.client.post("/v1/sessions", headers=headers), start=True)

    first = [answered(r) for r in await asyncio.gather(*(start(u) for u in users))]
    told: dict[uuid.UUID, str] = {}
    for user, response in zip(users, first, strict=True):
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "session_outcome_unknown"
        told[user] = response.json()["session_id"]
    lifted = time.monotonic()
    assert service.sim.faults() == [], "every fault was used once"
    assert await created_total(service) == len(users), "Tavus created each one, once"

    # Retries — with the key, concurrently; without it — create nothing: each asks Tavus
    # for the unresolved session's conversation by its name and adopts it.
    retries = [
        answered(r)
        for r in await asyncio.gather(
            *(start(u) for u in users for _ in range(3)), *(start(u, key=False) for u in users)
        )
    ]
    keyed, unkeyed = retries[: 3 * len(users)], retries[3 * len(users) :]
    for index, response in enumerate(keyed):
        assert response.status_code == 201, response.text
        assert response.headers.get("idempotent-replayed") == "true"
        assert response.json()["id"] == told[users[index // 3]]
        assert response.json()["conversation_url"]
    for user, response in zip(users, unkeyed, strict=True):
        assert (response.status_code, response.json()["code"]) == (409, "session_already_active")
        assert response.json()["session"]["id"] == told[user]
        assert response.json()["session"]["conversation_url"], "a 409 always has a room"
    assert await created_total(service) == len(users), "no retry reached Tavus"

    # After a reconciler pass (nothing left for it to adopt), a retry still gets it.
    converge_s, _ = await converge(service, lifted)
    replays = [answered(r) for r in await asyncio.gather(*(start(u) for u in users))]
    for user, response in zip(users, replays, strict=True):
        assert response.status_code == 201, response.text
        assert response.headers.get("idempotent-replayed") == "true"
        body = response.json()
        assert body["id"] == told[user]
        rows = await session_rows(service.db, body["id"])
        at_tavus = await conversation_at_tavus(service, rows["conversation"]["conversation_name"])
        assert body["conversation_id"] == at_tavus["conversation_id"]
        assert body["conversation_url"] == at_tavus["conversation_url"]
        history.starts.append(body)  # acknowledged now: the checker matches it to Tavus
    verdict = await check(service.db, service.sim, history, service.name_prefix)
    conclude(
        "05 Tavus 5xx after create",
        history,
        verdict,
        began=began,
        converge_s=converge_s,
        notes="create done, then 500/502/503/504/dropped/late; 3 keyed + 1 unkeyed retry each "
        "(adopted by name) before the pass, 1 keyed after",
        expect={
            "one conversation per session": await created_total(service) == len(users),
            "every session adopted and replayed": verdict.statuses == {"active": len(users)},
        },
    )


async def test_reconciler_isolates_a_row_tavus_answers_with_garbage(
    service: RunningService, clock: Clock
) -> None:
    began = time.monotonic()
    history = History()
    sessions = []
    for _ in range(4):  # four sessions that ran and ended: the pass verifies each with Tavus
        user = await create_user(service.db)
        started = answered(
            await send(
                history,
                service.client.post("/v1/sessions", headers=service.auth(user)),
                start=True,
            )
        )
        assert started.status_code == 201, started.text
        ended = answered(
            await send(
                history,
                service.client.post(
                    f"/v1/sessions/{started.json()['id']}/end", headers=service.auth(user)
                ),
            )
        )
        assert ended.status_code == 200, ended.text
        sessions.append(started.json())
    # A start Tavus refused (nothing billed): its row is failed. Then a conversation with its
    # name appears at Tavus anyway (a late create): the orphan the sweep must end.
    loser = await create_user(service.db)
    service.sim.add_fault(kind="concurrency_limit", endpoint="create")
    refused = answered(
        await send(
            history, service.client.post("/v1/sessions", headers=service.auth(loser)), start=True
        )
    )
    assert (refused.status_code, refused.json()["code"]) == (503, "tavus_capacity_reached")
    async with service.db.transaction() as session:
        failed_row = (
            await session.execute(
                select(MentorConversation).where(MentorConversation.user_id == loser)
            )
        ).scalar_one()
    assert failed_row.status == "failed"
    orphan = await _create_at_tavus(service, failed_row.conversation_name)
    await asyncio.to_thread(service.sim.drain, 5.0)

    # Tavus answers two of the four verbose fetches with a 200 that is no conversation.
    garbage = {
        sessions[1]["conversation_id"]: None,  # truncated JSON
        sessions[2]["conversation_id"]: {"data": "not a conversation"},
    }
    for conversation_id, body in garbage.items():
        service.sim.add_fault(
            kind="malformed", endpoint="get", conversation_id=conversation_id, body=body, count=50
        )
    pass_began = time.monotonic()
    report = await service.reconciler.run_once()
    first_pass_s = time.monotonic() - pass_began
    assert report.errors == len(garbage), report
    assert report.actions["ended_orphan"] == 1, report
    assert (await _sim_conversation(service, orphan))["status"] == "ended"
    rows = await _rows(service)
    for body in sessions:
        row = rows[body["conversation_id"]]
        if body["conversation_id"] in garbage:
            assert row.reconcile_error, "the bad row's error is recorded"
            assert row.callbacks_verified_at is None
        else:
            assert row.reconcile_error is None
            assert row.callbacks_verified_at is not None, "the pass went on to the next row"
    async with service.db.transaction() as session:
        last = (
            (await session.execute(select(ReconcileRun).order_by(ReconcileRun.finished_at.desc())))
            .scalars()
            .first()
        )
    assert last is not None
    assert last.errors == len(garbage), "the pass finished and was recorded"

    # Tavus answers properly again; once the bad rows' leases run out (the pass leaves them
    # leased: a row that failed is not retried at once), the next pass verifies them.
    service.sim.clear_faults()
    recovered = time.monotonic()
    clock.advance(service.settings.reconcile_lease_seconds + 1)
    converge_s, _ = await converge(service, recovered)
    rows = await _rows(service)
    verdict = await check(
        service.db,
        service.sim,
        history,
        service.name_prefix,
        planted={orphan},
        verify_events=True,
    )
    conclude(
        "09 reconciler row isolation",
        history,
        verdict,
        began=began,
        converge_s=converge_s,
        notes=f"2 of 4 verbose fetches answered 200 with garbage: 2 row errors recorded, the "
        f"orphan ended in the same pass ({first_pass_s:.1f} s); converge = from Tavus "
        "recovering (and the bad rows' leases running out) to the next pass",
        expect={
            "every row verified once Tavus answers": all(
                rows[b["conversation_id"]].callbacks_verified_at is not None for b in sessions
            ),
            "row errors cleared once verified": all(
                rows[b["conversation_id"]].reconcile_error is None for b in sessions
            ),
        },
    )


async def _create_at_tavus(service: RunningService, name: str) -> str:
    """A conversation created at Tavus directly (not by the service); its id."""
    async with httpx.AsyncClient(
        base_url=service.sim.api_url, headers={"x-api-key": service.sim.api_key}
    ) as tavus:
        response = await tavus.post(
            "/conversations", json={"replica_id": "r0000default", "conversation_name": name}
        )
    response.raise_for_status()
    conversation_id: str = response.json()["conversation_id"]
    return conversation_id


async def _sim_conversation(service: RunningService, conversation_id: str) -> dict[str, Any]:
    return await asyncio.to_thread(service.sim.conversation, conversation_id)


async def _rows(service: RunningService) -> dict[str, Any]:
    async with service.db.transaction() as session:
        result = await session.execute(
            text(
                "SELECT tavus_conversation_id, reconcile_error, callbacks_verified_at "
                "FROM mentor_conversations WHERE tavus_conversation_id IS NOT NULL"
            )
        )
        return {row.tavus_conversation_id: row for row in result}
