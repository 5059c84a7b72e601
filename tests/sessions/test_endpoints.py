"""Start, end and read sessions through the real HTTP path."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from facetoface.models import MentorConversation
from tests.conftest import RunningService
from tests.support.clock import Clock
from tests.support.eventually import eventually
from tests.support.factories import count_rows, create_persona, create_user, session_rows


async def start(service: RunningService, user_id: uuid.UUID, **body: object) -> dict:
    response = await service.client.post(
        "/v1/sessions", json=body or None, headers=service.auth(user_id)
    )
    assert response.status_code == 201, response.text
    return response.json()


class TestStart:
    async def test_start_creates_a_tavus_conversation_and_records_it(
        self, service: RunningService
    ) -> None:
        service.sim.set_config(callback_drop_probability=1.0)  # inspect the start alone
        user_id = await create_user(service.db)

        body = await start(service, user_id)

        assert body["status"] == "started"
        assert body["conversation_id"]
        assert body["conversation_url"].endswith(body["conversation_id"])
        conversations = service.sim.conversations()
        [created] = [c for c in conversations["conversations"]]
        assert created["conversation_id"] == body["conversation_id"]
        assert created["status"] == "active"
        rows = await session_rows(service.db, body["id"])
        assert rows["conversation"]["status"] == "active"
        assert rows["conversation"]["tavus_conversation_id"] == body["conversation_id"]
        assert rows["conversation"]["user_id"] == user_id
        assert rows["daily"]["session_status"] == "started"
        assert rows["daily"]["session_type"] == "face_to_face"
        assert rows["daily"]["started_at"] is not None

    async def test_create_request_carries_context_callback_and_timings(
        self, service: RunningService
    ) -> None:
        user_id = await create_user(service.db)

        body = await start(service, user_id)

        [created] = service.sim.conversations()["conversations"]
        context = created["conversational_context"]
        assert "Maria Silva" in context
        assert "Meditate 10 minutes every morning" in context
        assert "Archived goal" not in context
        assert created["properties"]["language"] == "portuguese"
        assert created["properties"]["max_call_duration"] == 900
        assert created["properties"]["participant_left_timeout"] == 30
        assert created["properties"]["participant_absent_timeout"] == 120
        assert created["callback_url"].startswith(
            f"{service.url}/v1/callbacks/tavus/{body['mentor_conversation_id']}/"
        )
        assert created["conversation_name"] == (
            f"{service.name_prefix}{body['mentor_conversation_id']}"
        )
        assert service.name_prefix.startswith(f"{service.settings.deployment_name}:")
        # Only a hash of the callback token is stored.
        token = created["callback_url"].rsplit("/", 1)[1]
        rows = await session_rows(service.db, body["id"])
        assert token.encode() not in rows["conversation"]["callback_token_hash"]
        assert len(rows["conversation"]["callback_token_hash"]) == 32

    async def test_identity_comes_from_the_token_only(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        other = await create_user(service.db, full_name="Other Person")

        response = await service.client.post(
            "/v1/sessions", json={"user_id": str(other)}, headers=service.auth(user_id)
        )

        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        assert await count_rows(service.db, MentorConversation) == 0

    async def test_a_client_cannot_set_the_callback_url(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        response = await service.client.post(
            "/v1/sessions",
            json={"callback_url": "http://169.254.169.254/"},
            headers=service.auth(user_id),
        )
        assert response.status_code == 422
        assert service.sim.conversations()["created_total"] == 0

    async def test_user_without_profile_gets_a_404_problem(self, service: RunningService) -> None:
        response = await service.client.post("/v1/sessions", headers=service.auth(uuid.uuid4()))
        assert response.status_code == 404
        problem = response.json()
        assert problem["code"] == "profile_not_found"
        assert problem["request_id"] == response.headers["x-request-id"]
        assert service.sim.conversations()["created_total"] == 0

    async def test_minimal_profile_still_starts(self, service: RunningService) -> None:
        user_id = await create_user(service.db, complete=False, language="fr")
        await start(service, user_id)
        [created] = service.sim.conversations()["conversations"]
        assert created["properties"]["language"] == "french"
        assert "None" not in created["conversational_context"]

    async def test_second_start_is_409_with_the_live_session(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        first = await start(service, user_id)

        response = await service.client.post("/v1/sessions", headers=service.auth(user_id))

        assert response.status_code == 409
        problem = response.json()
        assert problem["code"] == "session_already_active"
        assert problem["session"]["id"] == first["id"]
        assert problem["session"]["conversation_url"] == first["conversation_url"]
        assert service.sim.conversations()["created_total"] == 1

    async def test_concurrent_starts_create_one_conversation(self, service: RunningService) -> None:
        user_id = await create_user(service.db)

        responses = await asyncio.gather(
            *(service.client.post("/v1/sessions", headers=service.auth(user_id)) for _ in range(8))
        )

        statuses = sorted(r.status_code for r in responses)
        assert statuses.count(201) == 1, [r.text for r in responses]
        assert set(statuses) <= {201, 409}
        assert service.sim.conversations()["created_total"] == 1

    async def test_chosen_mentor_is_used(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        await create_persona(service.db, user_id, name="Active one")
        chosen = await create_persona(
            service.db, user_id, name="Chosen", is_active=False, tavus_persona_id="pchosen0001"
        )

        body = await start(service, user_id, mentor_id=str(chosen))

        assert body["mentor"]["name"] == "Chosen"
        [created] = service.sim.conversations()["conversations"]
        assert created["persona_id"] == "pchosen0001"
        assert created["replica_id"] == "ravatar00001"  # the avatar's replica fills the gap

    async def test_active_persona_is_the_default_mentor(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        await create_persona(service.db, user_id, name="Sage")

        body = await start(service, user_id)

        assert body["mentor"] == {"name": "Sage", "avatar_url": "https://example.com/a.png"}
        [created] = service.sim.conversations()["conversations"]
        assert created["persona_id"] == "pavatar00001"

    async def test_without_persona_the_configured_default_is_used(
        self, service: RunningService
    ) -> None:
        user_id = await create_user(service.db)
        await start(service, user_id)
        [created] = service.sim.conversations()["conversations"]
        assert (created["persona_id"], created["replica_id"]) == ("p0000default", "r0000default")

    async def test_someone_elses_mentor_is_404(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        other = await create_user(service.db)
        theirs = await create_persona(service.db, other)

        response = await service.client.post(
            "/v1/sessions", json={"mentor_id": str(theirs)}, headers=service.auth(user_id)
        )

        assert response.status_code == 404
        assert response.json()["code"] == "mentor_not_found"
        assert service.sim.conversations()["created_total"] == 0

    async def test_premium_mentor_needs_paid_tier(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        await create_persona(service.db, user_id, premium=True)
        response = await service.client.post("/v1/sessions", headers=service.auth(user_id))
        assert response.status_code == 403
        assert response.json()["code"] == "premium_mentor_required"

        paid = await create_user(service.db, subscription_tier="paid")
        await create_persona(service.db, paid, premium=True)
        await start(service, paid)

    async def test_session_date_is_the_users_local_date(self, service: RunningService) -> None:
        user_id = await create_user(service.db, timezone="Pacific/Kiritimati")  # UTC+14
        body = await start(service, user_id)
        rows = await session_rows(service.db, body["id"])
        from datetime import datetime
        from zoneinfo import ZoneInfo

        assert rows["daily"]["session_date"] == datetime.now(ZoneInfo("Pacific/Kiritimati")).date()


class TestAuthentication:
    @pytest.mark.parametrize(
        "header",
        [None, "Bearer", "Bearer not-a-jwt", "Basic abc", "Bearer eyJhbGciOiJub25lIn0.e30."],
    )
    async def test_bad_credentials_are_one_401_problem(
        self, service: RunningService, header: str | None
    ) -> None:
        headers = {"Authorization": header} if header else {}
        response = await service.client.post("/v1/sessions", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")

    async def test_expired_token_is_401(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        token = service.token(user_id, ttl_seconds=-120)
        response = await service.client.post(
            "/v1/sessions", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401


class TestEnd:
    async def test_end_closes_both_records_and_the_tavus_conversation(
        self, service: RunningService, clock: Clock
    ) -> None:
        service.sim.set_config(callback_drop_probability=1.0)  # inspect the end alone
        user_id = await create_user(service.db)
        body = await start(service, user_id)
        clock.advance(1.1)

        response = await service.client.post(
            f"/v1/sessions/{body['id']}/end", headers=service.auth(user_id)
        )

        assert response.status_code == 200, response.text
        ended = response.json()
        assert ended["status"] == "completed"
        assert ended["duration_seconds"] >= 1
        assert ended["ended_at"] is not None
        [conversation] = service.sim.conversations()["conversations"]
        assert conversation["status"] == "ended"
        assert conversation["shutdown_reason"] == "end_conversation_endpoint_hit"
        rows = await session_rows(service.db, body["id"])
        assert rows["conversation"]["status"] == "ended"
        assert rows["conversation"]["duration_seconds"] == ended["duration_seconds"]
        assert rows["conversation"]["end_time"] == rows["daily"]["completed_at"]
        assert rows["daily"]["session_status"] == "completed"

    async def test_end_is_idempotent(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        body = await start(service, user_id)
        url = f"/v1/sessions/{body['id']}/end"
        first = await service.client.post(url, headers=service.auth(user_id))
        second = await service.client.post(url, headers=service.auth(user_id))
        assert first.status_code == second.status_code == 200
        stable = ("id", "status", "conversation_id", "started_at")
        assert {k: first.json()[k] for k in stable} == {k: second.json()[k] for k in stable}

    async def test_concurrent_ends_agree(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        body = await start(service, user_id)
        url = f"/v1/sessions/{body['id']}/end"
        responses = await asyncio.gather(
            *(service.client.post(url, headers=service.auth(user_id)) for _ in range(5))
        )
        assert {r.status_code for r in responses} == {200}
        assert {r.json()["status"] for r in responses} == {"completed"}
        rows = await session_rows(service.db, body["id"])
        assert rows["conversation"]["status"] == "ended"

    async def test_another_users_end_is_404_and_changes_nothing(
        self, service: RunningService
    ) -> None:
        owner = await create_user(service.db)
        intruder = await create_user(service.db, full_name="Intruder")
        body = await start(service, owner)

        async def in_progress() -> dict | None:  # replica_joined arrives asynchronously
            rows = await session_rows(service.db, body["id"])
            return rows if rows["daily"]["session_status"] == "in_progress" else None

        before = await eventually(in_progress, what="the session is in progress")

        response = await service.client.post(
            f"/v1/sessions/{body['id']}/end", headers=service.auth(intruder)
        )

        assert response.status_code == 404
        assert response.json()["code"] == "session_not_found"
        assert await session_rows(service.db, body["id"]) == before
        [conversation] = service.sim.conversations()["conversations"]
        assert conversation["status"] == "active"

    async def test_unknown_session_is_404(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        response = await service.client.post(
            f"/v1/sessions/{uuid.uuid4()}/end", headers=service.auth(user_id)
        )
        assert response.status_code == 404

    async def test_malformed_session_id_is_422(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        response = await service.client.post(
            "/v1/sessions/not-a-uuid/end", headers=service.auth(user_id)
        )
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"

    async def test_after_end_a_new_session_can_start(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        first = await start(service, user_id)
        await service.client.post(f"/v1/sessions/{first['id']}/end", headers=service.auth(user_id))
        second = await start(service, user_id)
        assert second["id"] != first["id"]


class TestRead:
    async def test_owner_reads_session_others_get_404(self, service: RunningService) -> None:
        owner = await create_user(service.db)
        other = await create_user(service.db)
        body = await start(service, owner)

        mine = await service.client.get(f"/v1/sessions/{body['id']}", headers=service.auth(owner))
        theirs = await service.client.get(f"/v1/sessions/{body['id']}", headers=service.auth(other))

        assert mine.status_code == 200
        assert mine.json()["conversation_id"] == body["conversation_id"]
        assert theirs.status_code == 404
