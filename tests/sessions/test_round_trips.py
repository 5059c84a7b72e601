"""Database round trips of the hot paths, counted on the wire (never timed).

The service talks to PostgreSQL — directly, and through PgBouncer in transaction mode —
through a proxy that parses the client's side of the protocol (`bench/pgwire.py`): every
simple `Query` and every extended-protocol batch closed by `Sync` is one round trip. What the
driver and the pool add (BEGIN/COMMIT, pings, resets) shows up here; a statement counter
cannot see it. Budgets: start ≤ 2, end ≤ 2, each callback 1, each read 1.

Only the test's own requests reach the counted service: the simulator's callbacks go to
another instance on the same database (`callback_host`), so a late callback is never counted
as part of the request being measured.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from bench.pgwire import CountingProxy, RoundTrip
from tavus_sim import SimServer
from tests.conftest import (
    THROUGH_PGBOUNCER,
    RunningService,
    ServiceHost,
    ServiceHosts,
    app_role_url,
    service_settings,
)
from tests.support.eventually import eventually
from tests.support.factories import create_persona, create_user

pytestmark = THROUGH_PGBOUNCER


@pytest.fixture
async def wire(database_settings: dict[str, Any]) -> AsyncIterator[CountingProxy]:
    parts = urlsplit(database_settings["database_url"])
    proxy = await CountingProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    try:
        yield proxy
    finally:
        await proxy.close()


#: Every option that adds work to these paths is on: private rooms (the meeting token is
#: written with the adoption, read with the session) and Tavus memory.
OPTIONS = {"session_private_rooms": True, "tavus_memory": "participant"}


@pytest.fixture
async def callback_host(
    database_settings: dict[str, Any], sim: SimServer, service_hosts: ServiceHosts
) -> ServiceHost:
    """Another instance on the same database, not counted: where Tavus's callbacks go."""
    values = service_settings(sim, **database_settings, **OPTIONS)
    values["database_url"] = app_role_url(database_settings["database_url"])
    return await service_hosts.get(values, database_settings["database_url"], cache=True)


@pytest.fixture
def service_overrides(
    wire: CountingProxy, database_settings: dict[str, Any], callback_host: ServiceHost
) -> dict[str, Any]:
    # The service's connections go through the proxy; the tests' own (as the owner) do not.
    return {
        "database_url_through": wire_url(database_settings["database_url"], wire),
        "public_base_url": callback_host.url,
        **OPTIONS,
    }


def wire_url(url: str, wire: CountingProxy) -> str:
    """`url` reached through the counting proxy (same login, database and options)."""
    parts = urlsplit(url)
    credentials = parts.netloc.rsplit("@", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{credentials}@127.0.0.1:{wire.port}"))


def _shown(trips: list[RoundTrip]) -> list[str]:
    return [trip.label() for trip in trips]


async def _count(wire: CountingProxy, operation: Any) -> tuple[Any, list[RoundTrip]]:
    mark = wire.log.mark()
    result = await operation
    return result, wire.log.since(mark)


async def test_hot_paths_stay_within_their_round_trip_budgets(
    service: RunningService, wire: CountingProxy
) -> None:
    service.sim.set_config(callback_drop_probability=1.0)  # this test sends the callbacks
    user_id = await create_user(service.db)
    await create_persona(service.db, user_id)
    headers = service.auth(user_id)
    client = service.client
    # Warm the pool: connecting (and the driver's first-connection queries) is not counted.
    await client.get(f"/v1/sessions/{uuid.uuid4()}", headers=headers)
    connections = wire.log.connections
    warm = wire.log.mark()

    started, trips = await _count(wire, client.post("/v1/sessions", headers=headers))
    assert started.status_code == 201, started.text
    assert len(trips) <= 2, _shown(trips)
    session = started.json()
    path = urlsplit(service.sim.conversation(session["conversation_id"])["callback_url"]).path

    def event(event_type: str, properties: dict[str, Any]) -> dict[str, Any]:
        return {
            "conversation_id": session["conversation_id"],
            "event_type": event_type,
            "properties": properties,
        }

    callbacks = [
        event("system.replica_joined", {}),
        event(
            "application.transcription_ready",
            {"transcript": [{"role": "user", "content": "Hello"}]},
        ),
        event("application.perception_analysis", {"analysis": "calm"}),
        event("application.recording_ready", {"s3_key": "k"}),
        event("application.post_call_action_executed", {"tool_id": "t1"}),
        event("application.something_new", {}),
        event("system.replica_joined", {}),  # a duplicate
    ]
    for payload in callbacks:
        answered, trips = await _count(wire, client.post(path, json=payload))
        assert answered.status_code == 200, answered.text
        assert len(trips) == 1, (payload["event_type"], _shown(trips))

    for read in (
        f"/v1/sessions/{session['id']}",
        "/v1/sessions",
        "/v1/me/context",
    ):
        answered, trips = await _count(wire, client.get(read, headers=headers))
        assert answered.status_code == 200, answered.text
        assert len(trips) == 1, (read, _shown(trips))

    ended, trips = await _count(
        wire, client.post(f"/v1/sessions/{session['id']}/end", headers=headers)
    )
    assert ended.status_code == 200, ended.text
    assert len(trips) <= 2, _shown(trips)

    shutdown = event("system.shutdown", {"shutdown_reason": "end_conversation_endpoint_hit"})
    answered, trips = await _count(wire, client.post(path, json=shutdown))
    assert answered.json() == {"status": "applied"}
    assert len(trips) == 1, _shown(trips)
    # Nothing above needed a new connection, and nothing was pinged, begun or reset apart.
    assert wire.log.connections == connections
    for trip in wire.log.since(warm):
        text = " ".join(trip.text.split()).upper()
        assert text not in ("", ";"), "a pool ping"
        assert text not in ("BEGIN", "COMMIT", "ROLLBACK"), "a transaction-control round trip"


async def test_a_returning_users_start_and_reads_stay_within_budget(
    service: RunningService, wire: CountingProxy
) -> None:
    """ "Since last time" (previous sessions, the recap, goals moved since) is loaded by the
    start's first round trip; the preferences are one round trip each way."""
    user_id = await create_user(service.db)
    headers = service.auth(user_id)
    client = service.client
    first = (await client.post("/v1/sessions", headers=headers)).json()
    room = first["conversation_id"]
    await asyncio.to_thread(service.sim.join, room, None, token=first["meeting_token"])
    await asyncio.to_thread(service.sim.say, room, "Something to remember")
    await client.post(f"/v1/sessions/{first['id']}/end", headers=headers)

    async def remembered() -> bool:
        context = (await client.get("/v1/me/context", headers=headers)).json()
        return "Something to remember" in context["text"]

    await eventually(remembered, what="the first session's transcript in the context")

    answered, trips = await _count(wire, client.get("/v1/me/context", headers=headers))
    assert len(trips) == 1, _shown(trips)
    started, trips = await _count(wire, client.post("/v1/sessions", headers=headers))
    assert started.status_code == 201, started.text
    assert len(trips) <= 2, _shown(trips)
    sent = service.sim.conversation(started.json()["conversation_id"])["conversational_context"]
    assert "Something to remember" in sent
    for method, body in (("PUT", {"mentor_memory": False}), ("GET", None)):
        answered, trips = await _count(
            wire, client.request(method, "/v1/me/preferences", json=body, headers=headers)
        )
        assert answered.status_code == 200, answered.text
        assert len(trips) == 1, (method, _shown(trips))
