"""Chaos: processes die and deployments share a Tavus account (issue 10 §8, §9, §10).

- One `serve` replica is SIGKILLed while Tavus's callbacks for its sessions target it (each
  session's callback URL names the replica that started it). After it restarts and one
  reconciler pass runs on the other replica, every event Tavus has is stored —
  `replica_joined` included — and nothing acknowledged was lost.
- A twin deployment — another database, the same `DEPLOYMENT_NAME`, the same simulator; an
  instance of the service in the test's process — runs reconciler passes at the same time as
  this one: neither ends the other's live conversations (a user mid-session is never cut
  off), and nothing else on the account (an app's unnamed conversation, a conversation named
  like ours but unknown here) is touched.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from facetoface.config import Settings
from facetoface.conversations.names import name_prefix
from facetoface.db import Database, run_migrations
from facetoface.models import Installation
from tests.conftest import RunningService, ServiceHosts
from tests.support.chaos import CHAOS_SETTINGS, answered, conclude, send, sim_state
from tests.support.checker import History, Verdict, check
from tests.support.eventually import eventually
from tests.support.factories import create_user
from tests.support.hosts import Instance, instances
from tests.support.postgres import PostgresServer, create_app_role, fresh_database
from tests.support.replicas import ISSUER_BASE, SECRET, Replica, replica_auth, serve_replicas

pytestmark = pytest.mark.e2e

#: No Tavus timeouts are injected here: time enough for a busy machine's simulator to answer.
SETTINGS = {**CHAOS_SETTINGS, "tavus_read_timeout_seconds": 2.0, "tavus_total_timeout_seconds": 2.5}


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return dict(SETTINGS)


async def _start(history: History, replica: Replica | Instance, user: uuid.UUID) -> dict[str, Any]:
    response = answered(
        await send(
            history, replica.client.post("/v1/sessions", headers=replica_auth(user)), start=True
        )
    )
    assert response.status_code == 201, response.text
    return {**response.json(), "user_id": user}


async def _talk_and_leave(service: RunningService, conversation_id: str) -> None:
    await asyncio.to_thread(service.sim.join, conversation_id, "Ana")
    await asyncio.to_thread(service.sim.say, conversation_id, "I slept badly this week")
    await asyncio.to_thread(service.sim.leave, conversation_id)


async def test_replica_killed_while_callbacks_target_it(
    service: RunningService, tmp_path: Path
) -> None:
    began = time.monotonic()
    history = History()
    # Tavus's replica joins the room 0.6 s after the create: after the replica is killed.
    service.sim.set_config(replica_join_delay_ms=600, concurrency_limit=None)
    users = [await create_user(service.db) for _ in range(6)]
    async with serve_replicas(
        2,
        database_url=service.settings.database_url,
        sim=service.sim,
        log_dir=tmp_path,
        **SETTINGS,
    ) as (doomed, survivor):
        on_doomed = await asyncio.gather(*(_start(history, doomed, u) for u in users[:4]))
        on_survivor = await asyncio.gather(*(_start(history, survivor, u) for u in users[4:]))
        doomed.kill()
        ours = {b["conversation_id"] for b in on_doomed + on_survivor}

        async def all_joined() -> bool:
            state = await sim_state(service)
            return all(
                c["replica_joined_at"]
                for c in state["conversations"]
                if c["conversation_id"] in ours
            )

        await eventually(all_joined, what="Tavus's replicas to join every room")
        # Tavus goes on while the replica is dead: two users talk and leave, one session is
        # ended by its user through the other replica, one stays live.
        await asyncio.gather(
            *(_talk_and_leave(service, b["conversation_id"]) for b in on_doomed[:2])
        )
        ended = answered(
            await send(
                history,
                survivor.client.post(
                    f"/v1/sessions/{on_doomed[2]['id']}/end",
                    headers=replica_auth(on_doomed[2]["user_id"]),
                ),
            )
        )
        assert ended.status_code == 200, ended.text
        await asyncio.to_thread(service.sim.join, on_doomed[3]["conversation_id"], "Bo")
        # The control group: their callbacks target the replica that lives.
        await asyncio.gather(*(_talk_and_leave(service, b["conversation_id"]) for b in on_survivor))
        await asyncio.to_thread(service.sim.drain, 10.0)
        state = await sim_state(service)
        lost_to_the_kill = sum(
            d["outcome"] == "failed"
            for c in state["conversations"]
            if c["conversation_id"] in ours
            for d in c["deliveries"]
        )

        await doomed.restart()
        lifted = time.monotonic()
        result = await survivor.reconcile()
        assert result["errors"] == 0, result
        converge_s = round(time.monotonic() - lifted, 2)
        await asyncio.to_thread(service.sim.drain, 5.0)

    verdict = await check(service.db, service.sim, history, service.name_prefix, verify_events=True)
    async with service.db.transaction() as session:
        joined = {
            row.tavus_conversation_id
            for row in await session.execute(
                text(
                    "SELECT c.tavus_conversation_id FROM tavus_callback_events e "
                    "JOIN mentor_conversations c ON c.id = e.mentor_conversation_id "
                    "WHERE e.event_type = 'system.replica_joined'"
                )
            )
        }
    conclude(
        "07 replica killed (SIGKILL) mid-callbacks",
        history,
        verdict,
        began=began,
        converge_s=converge_s,
        notes=f"4 sessions' callbacks targeted the killed replica: {lost_to_the_kill} deliveries "
        "failed; recovered by one pass on the other replica (converge from the restart)",
        expect={
            "the kill lost deliveries": lost_to_the_kill > 0,
            "replica_joined stored for every session": joined >= ours,
            "the ended ones are ended here": verdict.statuses == {"ended": 5, "active": 1},
            "the pass recovered events": any(k.startswith("recovered:") for k in result["actions"]),
        },
    )


@pytest.fixture
def twin_database(pg_server: PostgresServer) -> Iterator[str]:
    """Another database — another installation — migrated, with the application role."""
    with fresh_database(pg_server, "twin") as name:
        url = pg_server.url(name)
        run_migrations(Settings(_env_file=None, environment="test", database_url=url))  # type: ignore[call-arg]
        create_app_role(pg_server, name)
        yield url


async def _create_at_tavus(service: RunningService, name: str | None) -> str:
    """A conversation some other party created on the shared account; its id."""
    body: dict[str, Any] = {"replica_id": "r0000default"}
    if name is not None:
        body["conversation_name"] = name
    async with httpx.AsyncClient(
        base_url=service.sim.api_url, headers={"x-api-key": service.sim.api_key}
    ) as tavus:
        response = await tavus.post("/conversations", json=body)
    response.raise_for_status()
    conversation_id: str = response.json()["conversation_id"]
    return conversation_id


async def test_twin_deployments_never_end_each_others_conversations(
    service: RunningService, service_hosts: ServiceHosts, twin_database: str
) -> None:
    """The twin is another instance of the service in this process (tests/support/hosts.py)
    on its own database: what is shared is the Tavus account, not a process."""
    began = time.monotonic()
    ours, theirs = History(), History()
    service.sim.set_config(concurrency_limit=None)
    twin_db = Database(Settings(_env_file=None, environment="test", database_url=twin_database))  # type: ignore[call-arg]
    try:
        async with twin_db.transaction() as session:
            twin_installation = (await session.execute(select(Installation.id))).scalar_one()
        twin_prefix = name_prefix(service.settings.deployment_name, twin_installation)
        assert twin_prefix != service.name_prefix
        assert twin_prefix.split(":")[0] == service.name_prefix.split(":")[0]  # same name
        users = [await create_user(service.db) for _ in range(3)]
        twin_users = [await create_user(twin_db) for _ in range(3)]
        # Its users' tokens come from the issuer `replica_auth` signs for.
        issuer = {"supabase_url": ISSUER_BASE, "supabase_jwt_secret": SECRET}
        async with instances(
            service_hosts, service.sim, twin_database, 1, **SETTINGS, **issuer
        ) as (twin,):
            ours_live = []
            for user in users:
                response = answered(
                    await send(
                        ours,
                        service.client.post("/v1/sessions", headers=service.auth(user)),
                        start=True,
                    )
                )
                assert response.status_code == 201, response.text
                ours_live.append({**response.json(), "user_id": user})
            theirs_live = await asyncio.gather(*(_start(theirs, twin, u) for u in twin_users))
            # Each side: one user is mid-session in the room, one session has ended.
            await asyncio.to_thread(service.sim.join, ours_live[0]["conversation_id"], "Ana")
            await asyncio.to_thread(service.sim.join, theirs_live[0]["conversation_id"], "Bo")
            for history, client, body, headers in (
                (ours, service.client, ours_live[2], service.auth(ours_live[2]["user_id"])),
                (theirs, twin.client, theirs_live[2], replica_auth(theirs_live[2]["user_id"])),
            ):
                done = answered(
                    await send(
                        history, client.post(f"/v1/sessions/{body['id']}/end", headers=headers)
                    )
                )
                assert done.status_code == 200, done.text
            # Others on the account: an app's unnamed conversation, one with the old default
            # name, one named with this installation's identity that no row here knows (a copied
            # database).
            strangers = [
                await _create_at_tavus(service, None),
                await _create_at_tavus(service, f"facetoface:{uuid.uuid4()}"),
                await _create_at_tavus(service, f"{service.name_prefix}{uuid.uuid4()}"),
            ]
            await asyncio.to_thread(service.sim.drain, 5.0)

            lifted = time.monotonic()
            for _ in range(2):  # both deployments sweep at once, twice
                ours_report, theirs_report = await asyncio.gather(
                    service.reconciler.run_once(), twin.state.reconciler.run_once()
                )
                assert ours_report.errors == 0, ours_report
                assert theirs_report.errors == 0, theirs_report
            converge_s = round(time.monotonic() - lifted, 2)
            await asyncio.to_thread(service.sim.drain, 5.0)
            state = {c["conversation_id"]: c for c in (await sim_state(service))["conversations"]}

        live_ids = [b["conversation_id"] for b in ours_live[:2] + list(theirs_live[:2])]
        mid_session = [ours_live[0]["conversation_id"], theirs_live[0]["conversation_id"]]
        verdicts = [
            await check(service.db, service.sim, ours, service.name_prefix, ignore=strangers),
            await check(twin_db, service.sim, theirs, twin_prefix),
        ]
    finally:
        await twin_db.dispose()
    history = _merged(ours, theirs)
    conclude(
        "08 twin deployment, one Tavus account",
        history,
        _combined(verdicts),
        began=began,
        converge_s=converge_s,
        notes="2 installations, same DEPLOYMENT_NAME, 2 concurrent passes each; 3 strangers "
        "on the account (unnamed, old default name, our prefix with an unknown row)",
        expect={
            "every live session still running at Tavus": all(
                state[c]["status"] == "active" for c in live_ids
            ),
            "the users mid-session still in their rooms": all(
                state[c]["status"] == "active" and state[c]["participants"] for c in mid_session
            ),
            "the strangers untouched": all(state[c]["status"] == "active" for c in strangers),
            "each side's ended session ended": all(
                state[b["conversation_id"]]["status"] == "ended"
                for b in (ours_live[2], theirs_live[2])
            ),
        },
    )


def _merged(*histories: History) -> History:
    """One history of several (for the report's counts)."""
    merged = History()
    for history in histories:
        merged.answers.update(history.answers)
        merged.unanswered.update(history.unanswered)
        merged.violations += history.violations
    return merged


def _combined(verdicts: list[Verdict]) -> Verdict:
    """Several installations' verdicts as one (counts summed)."""
    statuses: dict[str, int] = {}
    for verdict in verdicts:
        for status, count in verdict.statuses.items():
            statuses[status] = statuses.get(status, 0) + count
    return Verdict(
        acknowledged_starts=sum(v.acknowledged_starts for v in verdicts),
        conversations_at_tavus=sum(v.conversations_at_tavus for v in verdicts),
        duplicates=sum(v.duplicates for v in verdicts),
        orphans=sum(v.orphans for v in verdicts),
        lost_callbacks=sum(v.lost_callbacks for v in verdicts),
        unexplained_sessions=sum(v.unexplained_sessions for v in verdicts),
        statuses=statuses,
        violations=[x for v in verdicts for x in v.violations],
        unannounced=sum(v.unannounced for v in verdicts),
        unrecovered_events=sum(v.unrecovered_events for v in verdicts),
    )
