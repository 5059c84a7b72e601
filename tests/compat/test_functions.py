"""The origin's `/functions/v1/*` start and end, on PostgreSQL (the start, its concurrency and the
end through PgBouncer too): the origin's bodies and answers, the `/v1` engine's guarantees,
errors in the origin's shape."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from facetoface.models import DailySession
from tests.conftest import THROUGH_PGBOUNCER, RunningService
from tests.support.factories import count_rows, create_persona, create_user, session_rows
from tests.support.supabase import anon_key

START = "/functions/v1/start-tavus-session"
END = "/functions/v1/end-tavus-session"


async def invoke(
    service: RunningService,
    path: str,
    body: Any = None,
    *,
    user_id: uuid.UUID | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """What `supabase.functions.invoke` sends: JSON body, the user's bearer token, apikey."""
    sent = {"apikey": "an-anon-key", "x-client-info": "supabase-js/2.119.0"}
    if user_id is not None:
        sent.update(service.auth(user_id))
    sent.update(headers or {})
    return await service.client.post(path, json=body, headers=sent)


def assert_origin_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert isinstance(body["error"], str)
    assert body["error"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def sim_status(service: RunningService, conversation_id: str) -> str:
    status: str = service.sim.conversation(conversation_id)["status"]
    return status


class TestStart:
    @THROUGH_PGBOUNCER
    async def test_start_answers_the_origins_shape_for_the_tokens_user(
        self, service: RunningService
    ) -> None:
        user_id = await create_user(service.db)

        response = await invoke(service, START, {"user_id": str(user_id)}, user_id=user_id)

        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {
            "success",
            "conversation_url",
            "conversation_id",
            "mentor_conversation_id",
            "daily_session_id",
            "persona_name",
        }
        assert body["success"] is True
        assert body["conversation_url"].endswith(body["conversation_id"])
        rows = await session_rows(service.db, body["daily_session_id"])
        assert rows["daily"]["user_id"] == user_id
        assert str(rows["conversation"]["id"]) == body["mentor_conversation_id"]
        assert rows["conversation"]["tavus_conversation_id"] == body["conversation_id"]
        assert rows["conversation"]["status"] == "active"
        # The same session through /v1: one engine.
        v1 = await service.client.get(
            f"/v1/sessions/{body['daily_session_id']}", headers=service.auth(user_id)
        )
        assert v1.status_code == 200
        assert v1.json()["conversation_id"] == body["conversation_id"]

    async def test_no_body_and_persona_id_both_work(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        persona = await create_persona(service.db, user_id, name="Sage", replica_id="rpersona01")
        first = await invoke(service, START, user_id=user_id)
        assert first.status_code == 200, first.text
        assert first.json()["persona_name"] == "Sage"  # the active persona, as on /v1
        await invoke(
            service,
            END,
            {"tavus_conversation_id": first.json()["conversation_id"]},
            user_id=user_id,
        )

        second = await invoke(
            service, START, {"user_id": str(user_id), "persona_id": str(persona)}, user_id=user_id
        )

        assert second.status_code == 200, second.text
        created = service.sim.conversation(second.json()["conversation_id"])
        assert created["replica_id"] == "rpersona01"

    async def test_someone_elses_persona_is_404(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        other = await create_user(service.db)
        foreign = await create_persona(service.db, other)

        response = await invoke(service, START, {"persona_id": str(foreign)}, user_id=user_id)

        assert_origin_error(response, 404, "mentor_not_found")
        assert service.sim.conversations()["create_requests"] == 0

    async def test_a_foreign_user_id_is_403_and_creates_nothing(
        self, service: RunningService
    ) -> None:
        caller = await create_user(service.db)
        victim = await create_user(service.db)

        response = await invoke(service, START, {"user_id": str(victim)}, user_id=caller)

        assert_origin_error(response, 403, "user_mismatch")
        assert service.sim.conversations()["create_requests"] == 0
        assert await count_rows(service.db, DailySession) == 0

    async def test_no_user_token_is_401_in_the_origins_shape(self, service: RunningService) -> None:
        victim = await create_user(service.db)
        # The origin accepted the public anon key as the bearer and took the user from the body.
        anon = anon_key(service.settings)

        for headers in ({"apikey": anon}, {"apikey": anon, "Authorization": f"Bearer {anon}"}):
            response = await invoke(service, START, {"user_id": str(victim)}, headers=headers)
            body = assert_origin_error(response, 401, "unauthorized")
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert "token" in body["error"]
        assert service.sim.conversations()["create_requests"] == 0

    async def test_second_start_is_409_with_the_live_sessions_ids_to_rejoin(
        self, service: RunningService
    ) -> None:
        user_id = await create_user(service.db)
        first = (await invoke(service, START, {"user_id": str(user_id)}, user_id=user_id)).json()

        response = await invoke(service, START, {"user_id": str(user_id)}, user_id=user_id)

        body = assert_origin_error(response, 409, "session_already_active")
        for field in (
            "conversation_url",
            "conversation_id",
            "mentor_conversation_id",
            "daily_session_id",
        ):
            assert body[field] == first[field], field
        assert body["session"]["id"] == first["daily_session_id"]
        assert service.sim.conversations()["create_requests"] == 1

    @THROUGH_PGBOUNCER
    async def test_concurrent_starts_create_one_conversation(self, service: RunningService) -> None:
        user_id = await create_user(service.db)

        responses = await asyncio.gather(
            *(invoke(service, START, {"user_id": str(user_id)}, user_id=user_id) for _ in range(6))
        )

        assert sorted(r.status_code for r in responses) == [200] + [409] * 5
        assert service.sim.conversations()["create_requests"] == 1

    async def test_idempotency_key_replays_and_is_shared_with_v1(
        self, service: RunningService
    ) -> None:
        user_id = await create_user(service.db)
        key = {"Idempotency-Key": str(uuid.uuid4())}

        first = await invoke(
            service, START, {"user_id": str(user_id)}, user_id=user_id, headers=key
        )
        again = await invoke(service, START, None, user_id=user_id, headers=key)
        via_v1 = await service.client.post("/v1/sessions", headers={**service.auth(user_id), **key})

        assert first.status_code == again.status_code == 200
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert via_v1.status_code == 201
        assert via_v1.json()["id"] == first.json()["daily_session_id"]
        assert service.sim.conversations()["create_requests"] == 1
        bad = await invoke(service, START, None, user_id=user_id, headers={"Idempotency-Key": ""})
        assert_origin_error(bad, 400, "invalid_idempotency_key")

    @pytest.mark.parametrize(
        ("body", "content"),
        [
            (None, b"{not json"),
            (None, b"[1, 2]"),
            ({"user_id": "not-a-uuid"}, None),
            ({"persona_id": 7}, None),
            ({"userId": "x", "sessionType": "face_to_face"}, None),
        ],
    )
    async def test_malformed_bodies_are_400_validation_errors(
        self, service: RunningService, body: Any, content: bytes | None
    ) -> None:
        user_id = await create_user(service.db)
        headers = {**service.auth(user_id), "content-type": "application/json"}
        if content is not None:
            response = await service.client.post(START, content=content, headers=headers)
        else:
            response = await service.client.post(START, json=body, headers=headers)

        error = assert_origin_error(response, 400, "validation_error")
        assert error["errors"]
        assert all(set(e) == {"loc", "msg", "type"} for e in error["errors"])
        assert service.sim.conversations()["create_requests"] == 0

    async def test_user_without_profile_is_404(self, service: RunningService) -> None:
        response = await invoke(service, START, None, user_id=uuid.uuid4())
        assert_origin_error(response, 404, "profile_not_found")

    async def test_tavus_capacity_is_503_with_retry_after(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        service.sim.add_fault("concurrency_limit", endpoint="create")

        response = await invoke(service, START, None, user_id=user_id)

        assert_origin_error(response, 503, "tavus_capacity_reached")
        assert int(response.headers["retry-after"]) > 0

    @pytest.mark.parametrize("service_overrides", [{"session_start_limit": 1}])
    async def test_start_rate_limit_is_shared_with_v1(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        first = (await invoke(service, START, None, user_id=user_id)).json()
        await invoke(service, END, {"daily_session_id": first["daily_session_id"]}, user_id=user_id)

        response = await invoke(service, START, None, user_id=user_id)

        assert_origin_error(response, 429, "rate_limited")
        assert int(response.headers["retry-after"]) > 0


class TestEnd:
    @THROUGH_PGBOUNCER
    async def test_the_shipped_pages_call_with_only_the_tavus_id_ends_the_session(
        self, service: RunningService
    ) -> None:
        user_id = await create_user(service.db)
        started = (await invoke(service, START, {"user_id": str(user_id)}, user_id=user_id)).json()

        # `{tavus_conversation_id, mentor_conversation_id: undefined, ...}` serialises to this.
        response = await invoke(
            service, END, {"tavus_conversation_id": started["conversation_id"]}, user_id=user_id
        )

        assert response.status_code == 200, response.text
        body = response.json()
        assert body == {
            "success": True,
            "duration_seconds": body["duration_seconds"],
            "message": "Session ended successfully",
        }
        assert isinstance(body["duration_seconds"], int)
        assert sim_status(service, started["conversation_id"]) == "ended"
        rows = await session_rows(service.db, started["daily_session_id"])
        assert rows["conversation"]["status"] == "ended"
        assert rows["daily"]["session_status"] == "completed"
        assert rows["daily"]["duration_seconds"] == body["duration_seconds"]

    async def test_all_four_ids_end_it_and_ending_again_changes_nothing(
        self, service: RunningService
    ) -> None:
        service.sim.set_config(callback_drop_probability=1.0)  # nothing else changes the rows
        user_id = await create_user(service.db)
        started = (await invoke(service, START, {"user_id": str(user_id)}, user_id=user_id)).json()
        body = {
            "tavus_conversation_id": started["conversation_id"],
            "mentor_conversation_id": started["mentor_conversation_id"],
            "daily_session_id": started["daily_session_id"],
            "user_id": str(user_id),
        }

        first = await invoke(service, END, body, user_id=user_id)
        before = await session_rows(service.db, started["daily_session_id"])
        again = await invoke(service, END, body, user_id=user_id)
        after = await session_rows(service.db, started["daily_session_id"])

        assert first.status_code == again.status_code == 200
        assert again.json() == first.json()
        assert after == before

    async def test_ids_naming_different_sessions_are_404_and_tavus_is_not_called(
        self, service: RunningService
    ) -> None:
        user_id = await create_user(service.db)
        old = (await invoke(service, START, None, user_id=user_id)).json()
        await invoke(service, END, {"daily_session_id": old["daily_session_id"]}, user_id=user_id)
        live = (await invoke(service, START, None, user_id=user_id)).json()

        response = await invoke(
            service,
            END,
            {
                "tavus_conversation_id": live["conversation_id"],
                "daily_session_id": old["daily_session_id"],
            },
            user_id=user_id,
        )

        assert_origin_error(response, 404, "session_not_found")
        assert sim_status(service, live["conversation_id"]) == "active"
        rows = await session_rows(service.db, live["daily_session_id"])
        assert rows["conversation"]["status"] == "active"

    async def test_someone_elses_session_is_404_and_tavus_is_not_called(
        self, service: RunningService
    ) -> None:
        owner = await create_user(service.db)
        attacker = await create_user(service.db)
        started = (await invoke(service, START, None, user_id=owner)).json()

        for body in (
            {"tavus_conversation_id": started["conversation_id"]},
            {"mentor_conversation_id": started["mentor_conversation_id"]},
            {"daily_session_id": started["daily_session_id"]},
        ):
            response = await invoke(service, END, body, user_id=attacker)
            assert_origin_error(response, 404, "session_not_found")
        # The origin's way: the victim's id in the body, the attacker's token.
        forged = await invoke(
            service,
            END,
            {"tavus_conversation_id": started["conversation_id"], "user_id": str(owner)},
            user_id=attacker,
        )
        assert_origin_error(forged, 403, "user_mismatch")
        assert sim_status(service, started["conversation_id"]) == "active"

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"user_id": None},
            {"tavus_conversation_id": "../../v2/conversations"},
            {"tavus_conversation_id": ""},
            {"mentor_conversation_id": "nope"},
            {"daily_session_id": 12},
            {"tavus_conversation_id": "c123", "extra": 1},
        ],
    )
    async def test_malformed_bodies_are_400(self, service: RunningService, body: Any) -> None:
        user_id = await create_user(service.db)
        response = await invoke(service, END, body, user_id=user_id)
        assert_origin_error(response, 400, "validation_error")

    async def test_unknown_function_and_wrong_method(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        unknown = await invoke(service, "/functions/v1/elevenlabs-tts", {}, user_id=user_id)
        assert_origin_error(unknown, 404, "function_not_found")
        for path in (START, END, "/functions/v1/tavus-webhook"):
            get = await service.client.get(path, headers=service.auth(user_id))
            assert get.status_code == 405
            assert get.json()["code"] == "method_not_allowed"
            assert get.headers["allow"] == "POST"
