"""Data rights: delete a session (here and at Tavus), purge a user, transcript retention."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from facetoface.cli import app as cli
from facetoface.models import (
    DailySession,
    MentorConversation,
    Profile,
    TavusCallbackEvent,
    UserGoal,
)
from tests.conftest import RunningService
from tests.support.clock import Clock
from tests.support.eventually import eventually
from tests.support.factories import count_rows, create_user, session_rows
from tests.support.sessions import given_session
from tests.support.tavus_timing import no_backoff


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"transcript_retention_days": 30}


async def finished_session(service: RunningService, user_id: uuid.UUID) -> dict[str, Any]:
    response = await service.client.post("/v1/sessions", headers=service.auth(user_id))
    started: dict[str, Any] = response.json()
    await asyncio.to_thread(service.sim.join, started["conversation_id"])
    await asyncio.to_thread(service.sim.say, started["conversation_id"], "private words")
    await service.client.post(f"/v1/sessions/{started['id']}/end", headers=service.auth(user_id))

    async def transcript() -> Any:
        return (await session_rows(service.db, started["id"]))["conversation"]["transcript"]

    await eventually(transcript, what="the transcript arrived")
    return started


async def test_delete_session_here_and_at_tavus(service: RunningService) -> None:
    user_id = await create_user(service.db)
    started = await finished_session(service, user_id)

    response = await service.client.delete(
        f"/v1/sessions/{started['id']}", headers=service.auth(user_id)
    )

    assert response.status_code == 204
    assert await count_rows(service.db, DailySession) == 0
    assert await count_rows(service.db, MentorConversation) == 0
    assert await count_rows(service.db, TavusCallbackEvent) == 0
    remaining = {c["conversation_id"] for c in service.sim.conversations()["conversations"]}
    assert started["conversation_id"] not in remaining, "hard-deleted at Tavus"
    again = await service.client.delete(
        f"/v1/sessions/{started['id']}", headers=service.auth(user_id)
    )
    assert again.status_code == 404


async def test_a_deleted_session_is_not_replayed_for_its_idempotency_key(
    service: RunningService,
) -> None:
    user_id = await create_user(service.db)
    headers = {**service.auth(user_id), "Idempotency-Key": "delete-me"}
    first = await service.client.post("/v1/sessions", headers=headers)
    deleted = await service.client.delete(
        f"/v1/sessions/{first.json()['id']}", headers=service.auth(user_id)
    )
    assert deleted.status_code == 204

    again = await service.client.post("/v1/sessions", headers=headers)

    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]


async def test_delete_of_a_live_session_ends_it_first(service: RunningService) -> None:
    user_id = await create_user(service.db)
    started = (await service.client.post("/v1/sessions", headers=service.auth(user_id))).json()
    response = await service.client.delete(
        f"/v1/sessions/{started['id']}", headers=service.auth(user_id)
    )
    assert response.status_code == 204
    remaining = {c["conversation_id"] for c in service.sim.conversations()["conversations"]}
    assert started["conversation_id"] not in remaining


async def test_others_cannot_delete_and_tavus_failure_keeps_everything(
    service: RunningService,
) -> None:
    user_id = await create_user(service.db)
    intruder = await create_user(service.db)
    started = await finished_session(service, user_id)
    theirs = await service.client.delete(
        f"/v1/sessions/{started['id']}", headers=service.auth(intruder)
    )
    assert theirs.status_code == 404

    service.sim.add_fault(endpoint="delete", kind="status", status=503, count=10)
    with no_backoff():  # every retry fails: no need to wait between them
        failed = await service.client.delete(
            f"/v1/sessions/{started['id']}", headers=service.auth(user_id)
        )
    assert failed.status_code == 503
    assert await count_rows(service.db, DailySession) == 1


async def test_retention_clears_old_transcripts(service: RunningService, clock: Clock) -> None:
    user_id = await create_user(service.db)
    old = await finished_session(service, user_id)
    clock.advance(31 * 24 * 3600)  # a month later (the retention is 30 days)
    # Its end is Tavus's shutdown time, which the clock does not move: a recent session is
    # one that ended now, by the service's clock.
    recent = await given_session(
        service,
        user_id,
        status="ended",
        at_tavus=False,
        transcript=[{"role": "user", "content": "recent words"}],
    )

    report = await service.reconciler.run_once()

    assert report.actions["transcript_expired"] == 1
    old_rows = await session_rows(service.db, old["id"])
    assert old_rows["conversation"]["transcript"] is None
    assert old_rows["daily"]["conversation_transcript"] is None
    async with service.db.transaction() as session:
        payloads = (
            await session.execute(
                select(TavusCallbackEvent.payload).where(
                    TavusCallbackEvent.event_type == "application.transcription_ready"
                )
            )
        ).scalars()
        assert "private words" not in str(
            [p for p in payloads if p.get("conversation_id") == old["conversation_id"]]
        )
    assert (await session_rows(service.db, recent.session_id))["conversation"]["transcript"]


@pytest.mark.parametrize("service_overrides", [{"tavus_memory": "participant"}])
async def test_purge_user_cli(service: RunningService, monkeypatch: pytest.MonkeyPatch) -> None:
    """`facetoface purge-user`, run in-process (its own event loop, in a thread) with the
    environment an operator gives it."""
    user_id = await create_user(service.db)
    keep = await create_user(service.db)
    started = await finished_session(service, user_id)
    env = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": service.settings.database_url,
        "TAVUS_API_KEY": service.sim.api_key,
        "TAVUS_BASE_URL": service.sim.api_url,
        "LOG_LEVEL": "WARNING",
    }
    # The command configures logging for its process: here that is the test run's, kept.
    monkeypatch.setattr("facetoface.cli.common.configure_logging", lambda *_, **__: None)
    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["purge-user", "--user-id", str(user_id), "--yes"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "(1 conversation(s) and 1 memory store(s) deleted at Tavus)" in result.stdout
    tags = {store["participant_tag"] for store in service.sim.memory()["memory_stores"]}
    assert f"{service.settings.deployment_name}:{user_id}" not in tags
    async with service.db.transaction() as session:
        profiles = set((await session.execute(select(Profile.id))).scalars())
        goals = (await session.execute(select(UserGoal.user_id))).scalars().all()
    assert profiles == {keep}
    assert user_id not in goals
    remaining = {c["conversation_id"] for c in service.sim.conversations()["conversations"]}
    assert started["conversation_id"] not in remaining
