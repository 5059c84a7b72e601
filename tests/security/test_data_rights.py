"""Data rights: delete a session (here and at Tavus), purge a user, transcript retention."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from facetoface.models import (
    DailySession,
    MentorConversation,
    Profile,
    TavusCallbackEvent,
    UserGoal,
    utcnow,
)
from tests.conftest import RunningService
from tests.support.factories import count_rows, create_user, session_rows


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"transcript_retention_days": 30}


async def finished_session(service: RunningService, user_id: uuid.UUID) -> dict[str, Any]:
    started = (await service.client.post("/v1/sessions", headers=service.auth(user_id))).json()
    await asyncio.to_thread(service.sim.join, started["conversation_id"])
    await asyncio.to_thread(service.sim.say, started["conversation_id"], "private words")
    await service.client.post(f"/v1/sessions/{started['id']}/end", headers=service.auth(user_id))
    for _ in range(200):
        rows = await session_rows(service.db, started["id"])
        if rows["conversation"]["transcript"] is not None:
            return started
        await asyncio.sleep(0.02)
    raise AssertionError("no transcript arrived")


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
    failed = await service.client.delete(
        f"/v1/sessions/{started['id']}", headers=service.auth(user_id)
    )
    assert failed.status_code == 503
    assert await count_rows(service.db, DailySession) == 1


async def test_retention_clears_old_transcripts(service: RunningService) -> None:
    user_id = await create_user(service.db)
    old = await finished_session(service, user_id)
    recent = await finished_session(service, user_id)
    async with service.db.transaction() as session:
        await session.execute(
            update(MentorConversation)
            .where(MentorConversation.daily_session_id == uuid.UUID(old["id"]))
            .values(end_time=utcnow() - timedelta(days=31))
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
    assert (await session_rows(service.db, recent["id"]))["conversation"]["transcript"]


@pytest.mark.parametrize("database_settings", ["postgresql"], indirect=True)
@pytest.mark.parametrize("service_overrides", [{"tavus_memory": "participant"}])
async def test_purge_user_cli(service: RunningService) -> None:
    user_id = await create_user(service.db)
    keep = await create_user(service.db)
    started = await finished_session(service, user_id)
    env = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": service.settings.database_url,
        "TAVUS_API_KEY": service.sim.api_key,
        "TAVUS_BASE_URL": service.sim.api_url,
        "PATH": "/usr/bin:/bin",
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "facetoface", "purge-user", "--user-id", str(user_id), "--yes"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
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
