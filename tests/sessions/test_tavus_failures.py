"""Tavus failures of each kind leave the session in the right state with the right response.

Faults come from the simulator's fault injection; the service talks to it over real HTTP.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from facetoface.models import DailySession
from tests.conftest import RunningService
from tests.support.eventually import eventually
from tests.support.factories import count_rows, create_user, session_rows
from tests.support.tavus_timing import no_backoff


async def post_start(service: RunningService, user_id: uuid.UUID) -> Any:
    return await service.client.post("/v1/sessions", headers=service.auth(user_id))


async def stored_for(service: RunningService, user_id: uuid.UUID) -> dict[str, Any]:
    async with service.db.transaction() as session:
        [daily_id] = (
            await session.execute(select(DailySession.id).where(DailySession.user_id == user_id))
        ).scalars()
    return await session_rows(service.db, daily_id)


@pytest.mark.parametrize(
    ("fault", "status", "code", "failure_code"),
    [
        ({"kind": "concurrency_limit"}, 503, "tavus_capacity_reached", "tavus_concurrency_limit"),
        ({"kind": "out_of_credits"}, 502, "tavus_out_of_credits", "tavus_out_of_credits"),
        (
            {"kind": "status", "status": 401, "body": {"message": "Invalid access token"}},
            502,
            "tavus_configuration_error",
            "tavus_auth_failed",
        ),
        (
            {"kind": "status", "status": 400, "body": {"message": "Invalid persona_id"}},
            502,
            "tavus_configuration_error",
            "tavus_rejected",
        ),
    ],
)
async def test_definite_create_failure_marks_the_session_failed(
    service: RunningService,
    fault: dict[str, Any],
    status: int,
    code: str,
    failure_code: str,
) -> None:
    user_id = await create_user(service.db)
    service.sim.add_fault(endpoint="create", **fault)

    response = await post_start(service, user_id)

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == code
    assert "tavus" not in problem["detail"].lower() or "support@" not in problem["detail"]
    if status == 503:
        assert int(response.headers["retry-after"]) > 0
    stored = await stored_for(service, user_id)
    assert stored["conversation"]["status"] == "failed"
    assert stored["conversation"]["failure_code"] == failure_code
    assert stored["conversation"]["tavus_conversation_id"] is None
    assert stored["daily"]["session_status"] == "failed"
    sim = service.sim.conversations()
    assert sim["create_requests"] == 1, "create must never be retried after it was sent"
    assert sim["created_total"] == 0
    # A failed session is not live: the user can try again.
    retry = await post_start(service, user_id)
    assert retry.status_code == 201


async def test_concurrency_limit_answers_retry_after_from_settings(
    service: RunningService,
) -> None:
    user_id = await create_user(service.db)
    service.sim.add_fault(endpoint="create", kind="concurrency_limit")
    response = await post_start(service, user_id)
    assert response.headers["retry-after"] == str(
        service.settings.tavus_concurrency_retry_after_seconds
    )


@pytest.mark.parametrize(
    ("fault", "failure_code", "then"),
    [
        # Tavus made it: the next start finds it by name and adopts it (a 409 with its room).
        (
            {"kind": "timeout", "delay_s": 10, "apply_first": True},
            "tavus_outcome_unknown",
            "adopted",
        ),
        # No answer and nothing at Tavus yet: the create may still be running there.
        (
            {"kind": "timeout", "delay_s": 10, "apply_first": False},
            "tavus_outcome_unknown",
            "unknown",
        ),
        ({"kind": "drop_connection", "apply_first": True}, "tavus_outcome_unknown", "adopted"),
        # A 5xx once the create was sent: Tavus may have created it (and billed) anyway; it
        # answered, so what it holds now decides: nothing, so the next start goes on.
        ({"kind": "status", "status": 503}, "tavus_server_error", "started"),
        ({"kind": "status", "status": 500}, "tavus_server_error", "started"),
    ],
)
async def test_unknown_outcome_marks_indeterminate_and_never_creates_twice(
    service: RunningService, fault: dict[str, Any], failure_code: str, then: str
) -> None:
    user_id = await create_user(service.db)
    # No callbacks: they would tell us the conversation exists (tested below).
    service.sim.set_config(callback_drop_probability=1.0)
    service.sim.add_fault(endpoint="create", **fault)

    response = await post_start(service, user_id)

    assert response.status_code == 503, response.text
    problem = response.json()
    assert problem["code"] == "session_outcome_unknown"
    stored = await stored_for(service, user_id)
    assert problem["session_id"] == str(stored["daily"]["id"])
    assert stored["conversation"]["status"] == "indeterminate"
    assert stored["conversation"]["failure_code"] == failure_code
    assert stored["daily"]["session_status"] == "started"
    assert service.sim.conversations()["create_requests"] == 1
    # The next start asks Tavus about it by name before anything else.
    again = await post_start(service, user_id)
    created = service.sim.conversations()
    if then == "adopted":
        assert again.status_code == 409, again.text
        session = again.json()["session"]
        assert session["id"] == str(stored["daily"]["id"])
        [conversation] = created["conversations"]
        assert session["conversation_url"] == conversation["conversation_url"]
        assert created["create_requests"] == 1
    elif then == "unknown":
        assert again.status_code == 503, again.text
        assert again.json()["code"] == "session_outcome_unknown"
        assert int(again.headers["retry-after"]) > 0
        assert created["create_requests"] == 1
    else:
        assert again.status_code == 201, again.text
        assert again.json()["id"] != str(stored["daily"]["id"])
        assert created["create_requests"] == 2
        assert created["created_total"] == 1
        first = await session_rows(service.db, stored["daily"]["id"])
        assert first["conversation"]["status"] == "failed"
        assert first["conversation"]["failure_code"] == "not_created_at_tavus"


async def test_replica_joined_resolves_an_indeterminate_start(service: RunningService) -> None:
    """Tavus created the conversation but its answer was lost: its first callback (which the
    token in the callback URL authenticates) adopts it, so the user can join."""
    user_id = await create_user(service.db)
    service.sim.add_fault(endpoint="create", kind="drop_connection", apply_first=True)

    response = await post_start(service, user_id)
    assert response.json()["code"] == "session_outcome_unknown"

    [conversation] = service.sim.conversations()["conversations"]

    async def joined() -> dict[str, Any] | None:
        # The daily row is read first (and each read sees what was committed before it): once
        # it is in progress, the conversation read after it shows the callback too.
        stored = await stored_for(service, user_id)
        return stored if stored["daily"]["session_status"] == "in_progress" else None

    stored = await eventually(joined, what="Tavus's replica_joined was applied")
    assert stored["conversation"]["tavus_conversation_id"] == conversation["conversation_id"]
    assert stored["daily"]["session_status"] == "in_progress"
    again = await post_start(service, user_id)
    assert again.status_code == 409
    assert again.json()["session"]["conversation_id"] == conversation["conversation_id"]


async def test_tavus_unreachable_fails_fast_without_creating(
    service_with_dead_tavus: RunningService,
) -> None:
    service = service_with_dead_tavus
    user_id = await create_user(service.db)

    response = await post_start(service, user_id)

    assert response.status_code == 503
    assert response.json()["code"] == "tavus_unavailable"
    stored = await stored_for(service, user_id)
    assert stored["conversation"]["status"] == "failed"
    assert stored["conversation"]["failure_code"] == "tavus_unavailable"


async def test_when_tavus_is_down_starts_fail_fast_and_write_nothing(
    service_with_dead_tavus: RunningService,
) -> None:
    service = service_with_dead_tavus
    user_id = await create_user(service.db)
    first = await post_start(service, user_id)  # finds Tavus down; opens the circuit
    assert first.status_code == 503

    started = asyncio.get_running_loop().time()
    second = await post_start(service, user_id)
    elapsed = asyncio.get_running_loop().time() - started

    assert second.status_code == 503
    assert second.json()["code"] == "tavus_unavailable"
    assert 0 < int(second.headers["retry-after"]) <= 15
    assert elapsed < 0.5, "an open circuit answers without calling Tavus"
    assert await count_rows(service.db, DailySession) == 1, "the second start wrote nothing"


@pytest.fixture(autouse=True)
def _no_backoff() -> Iterator[None]:
    """Tavus calls that keep failing fail after their retries at once (no backoff waits)."""
    with no_backoff():
        yield


@pytest.fixture
def service_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    # Short client timeouts keep the timeout scenarios quick; the simulator's latency in
    # the end-during-start test stays below them.
    overrides: dict[str, Any] = {
        "tavus_read_timeout_seconds": 1.0,
        "tavus_total_timeout_seconds": 1.2,
    }
    fault = getattr(request.node, "callspec", None) and request.node.callspec.params.get("fault")
    if fault and fault["kind"] == "timeout":  # where the timeout is the point: a short one
        overrides.update(tavus_read_timeout_seconds=0.25, tavus_total_timeout_seconds=0.3)
    if "service_with_dead_tavus" in request.fixturenames:
        overrides.update(
            tavus_base_url="http://127.0.0.1:9/v2",
            tavus_retry_attempts=2,
            tavus_breaker_threshold=2,
        )
    return overrides


@pytest.fixture
def service_with_dead_tavus(service: RunningService) -> RunningService:
    return service


class TestEndWhenTavusFails:
    async def test_end_closes_records_even_when_tavus_end_keeps_failing(
        self, service: RunningService
    ) -> None:
        user_id = await create_user(service.db)
        started = (await post_start(service, user_id)).json()
        service.sim.add_fault(endpoint="end", kind="status", status=503, count=10)

        response = await service.client.post(
            f"/v1/sessions/{started['id']}/end", headers=service.auth(user_id)
        )

        assert response.status_code == 200
        assert response.json()["status"] == "completed"
        stored = await session_rows(service.db, started["id"])
        assert stored["conversation"]["status"] == "ended"
        assert stored["conversation"]["failure_code"] == "tavus_end_failed"
        assert stored["daily"]["session_status"] == "completed"

    async def test_end_retries_a_transient_tavus_failure(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        started = (await post_start(service, user_id)).json()
        service.sim.add_fault(endpoint="end", kind="status", status=502, count=1)

        response = await service.client.post(
            f"/v1/sessions/{started['id']}/end", headers=service.auth(user_id)
        )

        assert response.status_code == 200
        stored = await session_rows(service.db, started["id"])
        assert stored["conversation"]["failure_code"] is None
        [conversation] = service.sim.conversations()["conversations"]
        assert conversation["status"] == "ended"

    async def test_conversation_unknown_at_tavus_counts_as_ended(
        self, service: RunningService
    ) -> None:
        user_id = await create_user(service.db)
        started = (await post_start(service, user_id)).json()
        service.sim.add_fault(
            endpoint="end", kind="status", status=400, body={"error": "Invalid conversation_id"}
        )

        response = await service.client.post(
            f"/v1/sessions/{started['id']}/end", headers=service.auth(user_id)
        )

        assert response.status_code == 200
        stored = await session_rows(service.db, started["id"])
        assert stored["conversation"]["failure_code"] is None

    async def test_ending_an_indeterminate_session_closes_it_as_interrupted(
        self, service: RunningService
    ) -> None:
        user_id = await create_user(service.db)
        service.sim.add_fault(endpoint="create", kind="drop_connection")
        session_id = (await post_start(service, user_id)).json()["session_id"]

        response = await service.client.post(
            f"/v1/sessions/{session_id}/end", headers=service.auth(user_id)
        )

        assert response.status_code == 200
        assert response.json()["status"] == "interrupted"
        assert response.json()["duration_seconds"] is None

    async def test_end_during_start_ends_the_new_conversation(
        self, service: RunningService
    ) -> None:
        user_id = await create_user(service.db)
        service.sim.set_config(latency_ms=500)  # the create stays in flight meanwhile
        start_task = asyncio.create_task(post_start(service, user_id))

        async def written() -> uuid.UUID | None:
            async with service.db.transaction() as session:
                found: uuid.UUID | None = (
                    await session.execute(
                        select(DailySession.id).where(DailySession.user_id == user_id)
                    )
                ).scalar_one_or_none()
            return found

        session_id = await eventually(written, what="phase 1 wrote the row")

        ended = await service.client.post(
            f"/v1/sessions/{session_id}/end", headers=service.auth(user_id)
        )
        started = await start_task

        assert ended.status_code == 200
        assert ended.json()["status"] == "interrupted"
        assert started.status_code == 201
        assert started.json()["status"] == "interrupted"
        [conversation] = service.sim.conversations()["conversations"]
        assert conversation["status"] == "ended", "the conversation created late was ended"
        stored = await session_rows(service.db, session_id)
        assert stored["conversation"]["tavus_conversation_id"] == conversation["conversation_id"]
