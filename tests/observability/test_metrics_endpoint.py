"""`/metrics` scraped from the real service (the simulator calling back over HTTP, PostgreSQL).

Metrics are process-wide and other tests in this process move them too, so every assertion
is on the difference between two scrapes taken inside one test.
"""

from __future__ import annotations

import uuid
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from facetoface.health import PAST_MAX_GRACE_SECONDS
from facetoface.observability.metrics import sql_operation
from tests.conftest import RunningService
from tests.support.clock import Clock
from tests.support.factories import create_user
from tests.support.sessions import start_quiet as start

CALLBACK_ROUTE = "/v1/callbacks/tavus/{mentor_conversation_id}/{token}"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(service: RunningService) -> Samples:
    response = await service.client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def label_values(samples: Samples, label: str) -> set[str]:
    return {v for (_, labels) in samples for k, v in labels if k == label}


def event(conversation_id: str, event_type: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "event_type": event_type,
        "message_type": "system",
        "timestamp": "2026-11-25T10:00:05Z",
        "properties": properties,
    }


async def test_start_callbacks_and_end_move_the_counters(service: RunningService) -> None:
    before = await scrape(service)
    statements = service.count_statements()

    s = await start(service)
    joined = await service.client.post(
        s.callback_path, json=event(s.conversation_id, "system.replica_joined", {})
    )
    novel = await service.client.post(
        s.callback_path, json=event(s.conversation_id, "application.brand_new_event", {})
    )
    again = await service.client.post(
        s.callback_path, json=event(s.conversation_id, "system.replica_joined", {})
    )
    ended = await service.client.post(
        f"/v1/sessions/{s.session_id}/end", headers=service.auth(s.user_id)
    )
    assert [r.json()["status"] for r in (joined, novel, again)] == [
        "applied",
        "ignored",
        "duplicate",
    ]
    assert ended.status_code == 200, ended.text
    after = await scrape(service)
    statements.close()

    assert delta(before, after, "facetoface_sessions_started_total") == 1
    assert delta(before, after, "facetoface_sessions_ended_total", shutdown_reason="user_end") == 1
    callbacks = "facetoface_callbacks_total"
    replica_joined = {"event_type": "system.replica_joined"}
    assert delta(before, after, callbacks, **replica_joined, outcome="applied") == 1
    assert delta(before, after, callbacks, **replica_joined, outcome="duplicate") == 1
    assert delta(before, after, callbacks, event_type="other", outcome="ignored") == 1

    http = "facetoface_http_requests_total"
    assert delta(before, after, http, method="POST", route="/v1/sessions", status="201") == 1
    assert delta(before, after, http, method="POST", route=CALLBACK_ROUTE, status="200") == 3
    end_route = "/v1/sessions/{session_id}/end"
    assert delta(before, after, http, method="POST", route=end_route, status="200") == 1
    assert (
        delta(
            before,
            after,
            "facetoface_http_request_duration_seconds_count",
            method="POST",
            route="/v1/sessions",
        )
        == 1
    )

    # The callback path's secrets never become label values.
    row_id, token = s.callback_path.rsplit("/", 2)[1:]
    rendered = " ".join(f"{k}={v}" for (_, labels) in after for k, v in labels)
    assert token not in rendered
    assert row_id not in rendered
    assert s.session_id not in rendered
    assert all(
        not r.startswith("/v1/callbacks/tavus/") or r == CALLBACK_ROUTE
        for r in label_values(after, "route")
    )

    tavus = "facetoface_tavus_request_duration_seconds_count"
    assert delta(before, after, tavus, endpoint="create_conversation", outcome="ok") == 1
    assert delta(before, after, tavus, endpoint="end_conversation", outcome="ok") == 1
    assert (
        delta(
            before,
            after,
            "facetoface_tavus_requests_total",
            endpoint="create_conversation",
            outcome="ok",
        )
        == 1
    )

    db = "facetoface_db_query_duration_seconds_count"
    # One round trip each, labelled by what it does.
    for operation in (
        "start:daily_sessions",
        "apply:mentor_conversations",
        "update:mentor_conversations",
    ):
        assert delta(before, after, db, operation=operation) >= 1, operation
    # Every statement the lifecycle sent gets a precise label (a call of one of our functions
    # is labelled by its caller).
    assert statements.statements
    for statement in statements.statements:
        if statement.startswith("SELECT * FROM facetoface."):
            continue
        operation = sql_operation(statement)
        assert "other" not in operation, (operation, statement[:200])
        if statement.lstrip()[:6].upper() in {"INSERT", "UPDATE", "DELETE"}:
            assert ":" in operation, (operation, statement[:200])


async def test_shutdown_callback_counts_the_ended_session_by_reason(
    service: RunningService,
) -> None:
    s = await start(service)
    before = await scrape(service)
    response = await service.client.post(
        s.callback_path,
        json=event(
            s.conversation_id, "system.shutdown", {"shutdown_reason": "max_call_duration reached"}
        ),
    )
    assert response.json() == {"status": "applied"}
    # The user's end afterwards changes nothing and is not a second end.
    await service.client.post(f"/v1/sessions/{s.session_id}/end", headers=service.auth(s.user_id))
    after = await scrape(service)

    ended = "facetoface_sessions_ended_total"
    assert delta(before, after, ended, shutdown_reason="max_call_duration") == 1
    assert delta(before, after, ended, shutdown_reason="user_end") == 0
    assert (
        delta(
            before,
            after,
            "facetoface_callbacks_total",
            event_type="system.shutdown",
            outcome="applied",
        )
        == 1
    )


async def test_probes_and_scrapes_are_not_counted_and_unknown_paths_are_unmatched(
    service: RunningService,
) -> None:
    before = await scrape(service)
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await service.client.get(path)).status_code == 200
    secret = "s3cr3t-" + uuid.uuid4().hex
    assert (await service.client.get(f"/no/such/{secret}")).status_code == 404
    after = await scrape(service)

    routes = label_values(after, "route")
    assert not routes & {"/healthz", "/readyz", "/metrics"}
    http = "facetoface_http_requests_total"
    assert delta(before, after, http, method="GET", route="<unmatched>", status="404") == 1
    assert not any(secret in v for (_, labels) in after for _, v in labels)


async def test_session_gauges_are_counted_in_the_database(
    service: RunningService, clock: Clock
) -> None:
    empty = await scrape(service)
    assert value(empty, "facetoface_live_sessions") == 0
    assert value(empty, "facetoface_sessions_past_max_duration") == 0

    s = await start(service)
    live = await scrape(service)
    assert value(live, "facetoface_live_sessions") == 1
    assert value(live, "facetoface_sessions_past_max_duration") == 0

    # Time passes: Tavus should have ended it long ago, so its shutdown callback was lost.
    clock.advance(service.settings.session_max_call_duration_seconds + PAST_MAX_GRACE_SECONDS + 60)
    stuck = await scrape(service)
    assert value(stuck, "facetoface_live_sessions") == 1
    assert value(stuck, "facetoface_sessions_past_max_duration") == 1

    await service.client.post(f"/v1/sessions/{s.session_id}/end", headers=service.auth(s.user_id))
    done = await scrape(service)
    assert value(done, "facetoface_live_sessions") == 0
    assert value(done, "facetoface_sessions_past_max_duration") == 0


async def test_tavus_failure_counts_a_start_failure_and_degrades_readiness(
    service: RunningService,
) -> None:
    ready = (await service.client.get("/readyz")).json()
    assert ready["tavus"] == "unknown"
    before = await scrape(service)
    user_id = await create_user(service.db)
    service.sim.add_fault(endpoint="create", kind="status", status=503)

    response = await service.client.post("/v1/sessions", headers=service.auth(user_id))

    assert response.status_code == 503
    after = await scrape(service)
    failures = "facetoface_session_start_failures_total"
    assert delta(before, after, failures, reason="tavus_server_error") == 1
    assert delta(before, after, "facetoface_sessions_started_total") == 0
    requests = "facetoface_tavus_requests_total"
    assert (
        delta(before, after, requests, endpoint="create_conversation", outcome="server_error") == 1
    )
    http = "facetoface_http_requests_total"
    assert delta(before, after, http, method="POST", route="/v1/sessions", status="503") == 1

    readyz = await service.client.get("/readyz")
    assert readyz.status_code == 200
    assert readyz.json()["status"] == "degraded"
    assert readyz.json()["tavus"] == "degraded"
    assert readyz.json()["checks"]["tavus"]["last_outcome"] == "server_error"

    # The next successful call clears it. (Another user: Tavus may have created the first
    # one's conversation despite the 503, so that session is still being resolved.)
    other = await create_user(service.db)
    retry = await service.client.post("/v1/sessions", headers=service.auth(other))
    assert retry.status_code == 201, retry.text
    assert (await service.client.get("/readyz")).json()["tavus"] == "ok"
