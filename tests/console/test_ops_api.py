"""The operators' API, on PostgreSQL under row-level security (its two actions and the live list
through PgBouncer too): who may call it, what it shows, and its two actions."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from facetoface.auth.dev_issuer import DEV_OPERATOR_ID
from facetoface.models import ReconcileRun, utcnow
from facetoface.models.reconcile_run import RECONCILE_RUNS_KEPT
from facetoface.reconcile.repository import ReconcileRepository
from tests.conftest import THROUGH_PGBOUNCER, RunningService
from tests.support.eventually import eventually
from tests.support.factories import create_user, session_rows
from tests.support.sessions import given_session

OPS_ROUTES = (
    ("GET", "/v1/ops/sessions/live"),
    ("POST", "/v1/ops/sessions/{session_id}/end"),
    ("GET", "/v1/ops/stats"),
    ("GET", "/v1/ops/reconciler/passes"),
    ("POST", "/v1/ops/reconciler/passes"),
    ("GET", "/v1/ops/tavus"),
    ("GET", "/v1/ops/callbacks"),
    ("GET", "/v1/ops/webhooks"),
    ("POST", "/v1/ops/webhooks/{event_id}/send-again"),
)


def operator(service: RunningService) -> dict[str, str]:
    token = service.token(DEV_OPERATOR_ID, operator=True)
    return {"Authorization": f"Bearer {token}"}


async def start(service: RunningService, user_id: uuid.UUID) -> dict[str, Any]:
    response = await service.client.post("/v1/sessions", headers=service.auth(user_id))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_every_ops_route_is_listed_here(service: RunningService) -> None:
    """A new /v1/ops route must be added to OPS_ROUTES, so the refusal tests cover it."""
    routes = [
        (method.upper(), path)
        for path, operations in service.app.openapi()["paths"].items()
        if path.startswith("/v1/ops")
        for method in operations
    ]
    assert sorted(routes) == sorted(OPS_ROUTES)


async def test_a_user_token_gets_403_on_every_route_and_nothing_happens(
    service: RunningService,
) -> None:
    service.sim.set_config(callback_drop_probability=1.0)  # nothing else changes the rows
    victim = await create_user(service.db)
    live = await start(service, victim)
    attacker = await create_user(service.db, full_name="Eve")
    before = await session_rows(service.db, live["id"])
    passes_before = await _runs(service)

    for method, path in OPS_ROUTES:
        url = path.format(session_id=live["id"], event_id=uuid.uuid4())
        for headers, status, code in (
            (service.auth(attacker), 403, "operator_required"),
            ({}, 401, "unauthorized"),
            ({"Authorization": "Bearer not-a-token"}, 401, "unauthorized"),
        ):
            response = await service.client.request(method, url, headers=headers)
            assert response.status_code == status, (method, url, response.text)
            body = response.json()
            assert response.headers["content-type"].startswith("application/problem+json")
            assert body["code"] == code
            assert body["title"]
            assert body["detail"]
            assert body["request_id"]
            # The refusal says nothing about anyone's sessions.
            assert live["id"] not in response.text
            assert str(victim) not in response.text

    assert await session_rows(service.db, live["id"]) == before
    assert await _runs(service) == passes_before


@THROUGH_PGBOUNCER
async def test_live_sessions_show_every_users_session_with_its_age(
    service: RunningService,
) -> None:
    # The first one looks stuck: started two hours ago.
    stuck = await given_session(service, age=timedelta(hours=2))
    first = stuck.user_id
    old = {"id": str(stuck.session_id)}
    newcomer = await create_user(service.db, full_name="Noor Haddad")
    new = await start(service, newcomer)

    response = await service.client.get("/v1/ops/sessions/live", headers=operator(service))

    assert response.status_code == 200, response.text
    body = response.json()
    cap = service.settings.session_max_call_duration_seconds
    assert body["max_call_duration_seconds"] == cap
    assert body["reconciler_closes_after_seconds"] == (
        cap + service.settings.reconcile_overdue_grace_seconds
    )
    items = {item["id"]: item for item in body["items"]}
    assert list(items) == [old["id"], new["id"]]  # oldest first
    assert items[old["id"]]["user_id"] == str(first)
    assert items[old["id"]]["overdue"] is True
    assert 7190 <= items[old["id"]]["age_seconds"] <= 7300
    assert items[new["id"]]["overdue"] is False
    assert 0 <= items[new["id"]]["age_seconds"] < 60
    assert items[new["id"]]["conversation_id"] == new["conversation_id"]
    assert items[new["id"]]["conversation_status"] == "active"
    # Operators see who, not only a UUID: each user's name and email (their own profiles,
    # read under row-level security acting for each user).
    assert items[new["id"]]["user_name"] == "Noor Haddad"
    assert items[new["id"]]["user_email"] == f"{newcomer.hex[:8]}@example.com"
    assert items[old["id"]]["user_name"]
    assert items[old["id"]]["user_email"].endswith("@example.com")


@THROUGH_PGBOUNCER
async def test_an_operator_ends_a_stuck_session_through_the_normal_end(
    service: RunningService,
) -> None:
    user_id = await create_user(service.db)
    live = await start(service, user_id)

    ended = await service.client.post(
        f"/v1/ops/sessions/{live['id']}/end", headers=operator(service)
    )
    again = await service.client.post(
        f"/v1/ops/sessions/{live['id']}/end", headers=operator(service)
    )
    unknown = await service.client.post(
        f"/v1/ops/sessions/{uuid.uuid4()}/end", headers=operator(service)
    )

    assert ended.status_code == 200, ended.text
    assert ended.json()["status"] == "completed"
    assert ended.json()["ended_at"] is not None
    assert again.status_code == 200
    assert again.json()["id"] == live["id"]
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "session_not_found"
    # Ended at Tavus, and the owner sees it ended.
    assert service.sim.conversation(live["conversation_id"])["status"] == "ended"
    mine = await service.client.get(f"/v1/sessions/{live['id']}", headers=service.auth(user_id))
    assert mine.json()["status"] == "completed"
    listed = await service.client.get("/v1/ops/sessions/live", headers=operator(service))
    assert listed.json()["items"] == []


async def test_stats_count_sessions_per_day_durations_and_start_failures(
    service: RunningService,
) -> None:
    user_id = await create_user(service.db)
    done = await start(service, user_id)
    await service.client.post(f"/v1/sessions/{done['id']}/end", headers=service.auth(user_id))
    await start(service, user_id)  # live
    service.sim.add_fault(
        "status", endpoint="create", status=400, body={"message": "Invalid persona_id"}
    )
    other = await create_user(service.db)
    refused = await service.client.post("/v1/sessions", headers=service.auth(other))
    assert refused.status_code == 502

    response = await service.client.get("/v1/ops/stats?days=3", headers=operator(service))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["days"] == 3
    days = body["sessions_per_day"]
    assert [d["date"] for d in days][:3] == [
        (utcnow().date() - timedelta(days=n)).isoformat() for n in (2, 1, 0)
    ]
    assert sum(d["total"] for d in days) == 3
    statuses: dict[str, int] = {}
    for day in days:
        for status, count in day["by_status"].items():
            statuses[status] = statuses.get(status, 0) + count
    assert statuses["completed"] == 1
    assert statuses["failed"] == 1
    assert [b["label"] for b in body["durations"]] == [
        "< 1 min",
        "1–5 min",
        "5–10 min",
        "10–15 min",
        "15–30 min",
        "30 min+",
    ]
    assert [b["count"] for b in body["durations"]] == [1, 0, 0, 0, 0, 0]
    assert body["start_failures"] == [
        {"failure_code": "tavus_rejected", "conversation_status": "failed", "count": 1}
    ]


async def test_stats_validate_their_window(service: RunningService) -> None:
    for query in ("days=0", "days=91", "days=x"):
        response = await service.client.get(f"/v1/ops/stats?{query}", headers=operator(service))
        assert response.status_code == 422, query
        assert response.json()["code"] == "validation_error"


async def test_callback_outcomes_count_what_the_inbox_received(service: RunningService) -> None:
    user_id = await create_user(service.db)
    live = await start(service, user_id)
    await service.client.post(f"/v1/sessions/{live['id']}/end", headers=service.auth(user_id))

    async def counted() -> dict[str, Any] | None:
        response = await service.client.get("/v1/ops/callbacks", headers=operator(service))
        body: dict[str, Any] = response.json()
        types = {item["event_type"] for item in body["items"]}
        return body if "application.transcription_ready" in types else None

    body: dict[str, Any] = await eventually(counted, what="the transcript's callback was counted")

    assert body["hours"] == 24
    items = {(i["event_type"], i["outcome"]): i["count"] for i in body["items"]}
    assert items[("system.shutdown", "applied")] == 1
    assert items[("application.transcription_ready", "applied")] == 1
    assert body["totals"]["applied"] == sum(
        count for (_, outcome), count in items.items() if outcome == "applied"
    )


@THROUGH_PGBOUNCER
async def test_running_a_pass_records_it_for_every_replica_to_see(
    service: RunningService,
) -> None:
    ran = await service.client.post("/v1/ops/reconciler/passes", headers=operator(service))
    listed = await service.client.get("/v1/ops/reconciler/passes", headers=operator(service))

    assert ran.status_code == 200, ran.text
    assert ran.json()["errors"] == 0
    assert isinstance(ran.json()["actions"], dict)
    passes = listed.json()
    assert passes["kept"] == RECONCILE_RUNS_KEPT
    [run] = passes["items"]
    assert run["errors"] == 0
    assert ":" in run["replica"]
    assert run["finished_at"] >= run["started_at"]


async def test_the_pass_history_keeps_only_the_newest(service: RunningService) -> None:
    # One transaction for them all (each pass still prunes what it leaves behind).
    async with service.db.transaction(role="service") as session:
        for n in range(RECONCILE_RUNS_KEPT + 3):
            finished = utcnow()
            await ReconcileRepository(session).record_pass(
                started_at=finished,
                finished_at=finished,
                replica="test:1",
                actions={"adopted": n},
                errors=0,
                keep=RECONCILE_RUNS_KEPT,
            )

    assert await _runs(service) == RECONCILE_RUNS_KEPT
    listed = await service.client.get(
        "/v1/ops/reconciler/passes?limit=2", headers=operator(service)
    )
    assert [run["actions"]["adopted"] for run in listed.json()["items"]] == [
        RECONCILE_RUNS_KEPT + 2,
        RECONCILE_RUNS_KEPT + 1,
    ]


async def test_tavus_state_reports_this_replicas_breaker_and_bulkhead(
    service: RunningService,
) -> None:
    user_id = await create_user(service.db)
    await start(service, user_id)

    response = await service.client.get("/v1/ops/tavus", headers=operator(service))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["breaker"] == {
        "state": "closed",
        "consecutive_failures": 0,
        "threshold": service.settings.tavus_breaker_threshold,
        "cooldown_seconds": service.settings.tavus_breaker_cooldown_seconds,
        "retry_after_seconds": 0.0,
    }
    assert body["bulkhead"] == {
        "in_flight": 0,
        "limit": service.settings.tavus_max_concurrent_requests,
    }
    assert body["last_seen"]["status"] == "ok"
    assert body["last_seen"]["last_endpoint"] == "create_conversation"


async def _runs(service: RunningService) -> int:
    async with service.db.transaction() as session:
        return int(
            (await session.execute(select(func.count()).select_from(ReconcileRun))).scalar_one()
        )
