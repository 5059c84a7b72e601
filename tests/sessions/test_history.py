"""Reading sessions back: the list, the detail after a real call, and the context preview.

Calls run through the Tavus simulator: a participant joins the room, speaks and leaves, and
the simulator sends its post-call callbacks to the service over HTTP. Simulator helpers that
make it call the service back run in a thread (`asyncio.to_thread`), because the service runs
in the test's own event loop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from facetoface.models import DailySession, MentorConversation
from tavus_sim.mentor import SYSTEM_PROMPT_TEMPLATE
from tests.conftest import RunningService
from tests.sessions.test_endpoints import start
from tests.support.eventually import eventually
from tests.support.factories import count_rows, create_persona, create_user

SYSTEM_PROMPT_OPENING = SYSTEM_PROMPT_TEMPLATE.split("{context}")[0].strip()
CONTEXT_TOPICS = (
    "Maria Silva",
    "stress management",
    "work-life balance",
    "Meditate 10 minutes every morning",
    "Set boundaries with my manager",
)
POST_CALL_EVENTS = [
    "system.replica_joined",
    "system.shutdown",
    "application.transcription_ready",
    "application.perception_analysis",
]


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    """Tavus shuts the room as soon as the last participant leaves (the default is 30 s)."""
    return {"session_participant_left_timeout_seconds": 0}


# --- helpers ------------------------------------------------------------------------------
def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict = response.json()
    assert problem["status"] == status
    if code is not None:
        assert problem["code"] == code, problem
    return problem


async def get_detail(service: RunningService, user_id: uuid.UUID, session_id: str) -> dict:
    response = await service.client.get(f"/v1/sessions/{session_id}", headers=service.auth(user_id))
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


async def detail_once(
    service: RunningService, user_id: uuid.UUID, session_id: str, ready: Callable[[dict], bool]
) -> dict:
    """The session's detail once `ready(detail)` holds (callbacks arrive asynchronously)."""

    async def check() -> dict | None:
        body = await get_detail(service, user_id, session_id)
        return body if ready(body) else None

    detail: dict = await eventually(check, what=f"the detail of session {session_id} is ready")
    return detail


def post_call_complete(body: dict) -> bool:
    types = {e["event_type"] for e in body["events"]}
    return body["status"] == "completed" and set(POST_CALL_EVENTS) <= types


async def call(service: RunningService, user_id: uuid.UUID, *said: str) -> tuple[dict, list[str]]:
    """Start a session, join its room once the replica is there, say things; stay in."""
    body = await start(service, user_id)

    async def in_progress() -> bool:
        return (await get_detail(service, user_id, body["id"]))["status"] == "in_progress"

    await eventually(in_progress, what="the replica joined")
    cid = body["conversation_id"]
    joined = await asyncio.to_thread(service.sim.join, cid, "Maria")
    replies = [joined["greeting"]]
    for text in said:
        replies.append(await asyncio.to_thread(service.sim.say, cid, text))
    return body, replies


async def end(service: RunningService, user_id: uuid.UUID, session_id: str) -> dict:
    response = await service.client.post(
        f"/v1/sessions/{session_id}/end", headers=service.auth(user_id)
    )
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


async def walk(service: RunningService, user_id: uuid.UUID, limit: int) -> list[list[dict]]:
    """Every page of the caller's sessions, following `next_cursor` to the end."""
    pages: list[list[dict]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = await service.client.get(
            "/v1/sessions", params=params, headers=service.auth(user_id)
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        pages.append(page["items"])
        if page["next_cursor"] is None:
            return pages
        assert len(page["items"]) == limit
        assert len(pages) <= 50, "the cursor does not advance"
        params = {"limit": limit, "cursor": page["next_cursor"]}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_of(data: Any) -> str:
    return _b64(json.dumps(data).encode())


SOME_ID = "7b1f4f5e-0c1d-4a53-9a57-4f3c8f0e2b61"
BAD_LIMITS = ("0", "101", "-1", "two")
BAD_CURSORS = (
    ("not base64", "garbage!!"),
    ("not utf-8", "abc"),
    ("not json", _b64(b"not json")),
    ("null", cursor_of(None)),
    ("list", cursor_of([1, 2])),
    ("no id", cursor_of({"c": "2026-01-01T00:00:00+00:00"})),
    ("naive time", cursor_of({"c": "2026-01-01T00:00:00", "i": SOME_ID})),
    ("bad time", cursor_of({"c": "yesterday", "i": SOME_ID})),
    ("int time", cursor_of({"c": 5, "i": SOME_ID})),
    ("bad id", cursor_of({"c": "2026-01-01T00:00:00+00:00", "i": "not-a-uuid"})),
    ("int id", cursor_of({"c": "2026-01-01T00:00:00+00:00", "i": 5})),
    ("list id", cursor_of({"c": "2026-01-01T00:00:00+00:00", "i": ["x"]})),
    ("object id", cursor_of({"c": "2026-01-01T00:00:00+00:00", "i": {"a": 1}})),
)


# --- listing ------------------------------------------------------------------------------
class TestList:
    async def test_pages_walk_all_own_sessions_newest_first(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        other = await create_user(service.db, full_name="Other Person")
        mine: list[str] = []
        theirs: list[str] = []
        for _ in range(5):
            body = await start(service, user_id)
            await end(service, user_id, body["id"])
            mine.append(body["id"])
        for _ in range(2):
            theirs.append((await start(service, other))["id"])
            await end(service, other, theirs[-1])
        mine.append((await start(service, user_id))["id"])  # a live one is listed too

        pages = await walk(service, user_id, limit=2)

        assert [len(p) for p in pages] == [2, 2, 2]
        ids = [item["id"] for page in pages for item in page]
        assert ids == list(reversed(mine))
        created = [datetime.fromisoformat(item["created_at"]) for page in pages for item in page]
        assert created == sorted(created, reverse=True)
        assert not set(ids) & set(theirs)
        statuses = [item["status"] for page in pages for item in page]
        assert statuses[0] in {"started", "in_progress"}
        assert set(statuses[1:]) == {"completed"}
        assert {p["id"] for p in (await walk(service, other, limit=100))[0]} == set(theirs)

    async def test_last_page_exactly_full_has_no_cursor(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        for _ in range(2):
            await end(service, user_id, (await start(service, user_id))["id"])

        response = await service.client.get(
            "/v1/sessions", params={"limit": 2}, headers=service.auth(user_id)
        )

        assert response.status_code == 200
        assert len(response.json()["items"]) == 2
        assert response.json()["next_cursor"] is None

    async def test_equal_creation_times_are_ordered_by_id(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        ids = []
        for _ in range(5):
            body = await start(service, user_id)
            await end(service, user_id, body["id"])
            ids.append(uuid.UUID(body["id"]))
        same = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
        # A tie no clock gives: the daily rows' creation time, which the list orders by (not a
        # session's state, and beyond what given_session sets).
        async with service.db.transaction() as session:
            await session.execute(
                update(DailySession).where(DailySession.user_id == user_id).values(created_at=same)
            )

        pages = await walk(service, user_id, limit=2)

        walked = [uuid.UUID(item["id"]) for page in pages for item in page]
        assert walked == sorted(ids, reverse=True)

    async def test_bad_requests_are_problems(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        empty = await service.client.get("/v1/sessions", headers=service.auth(user_id))
        assert empty.status_code == 200
        assert empty.json() == {"items": [], "next_cursor": None}

        cases: list[tuple[str, dict[str, str], int, str]] = [
            *((f"limit={v}", {"limit": v}, 422, "validation_error") for v in BAD_LIMITS),
            *((f"cursor {k}", {"cursor": v}, 400, "invalid_cursor") for k, v in BAD_CURSORS),
            ("overlong cursor", {"cursor": "a" * 201}, 422, "validation_error"),
        ]
        got, expected = {}, {}
        for name, params, status, code in cases:
            response = await service.client.get(
                "/v1/sessions", params=params, headers=service.auth(user_id)
            )
            is_problem = response.headers["content-type"].startswith("application/problem+json")
            got[name] = (response.status_code, response.json().get("code"), is_problem)
            expected[name] = (status, code, True)
        assert got == expected

        response = await service.client.get("/v1/sessions")
        assert_problem(response, 401, "unauthorized")


# --- detail after a call ------------------------------------------------------------------
class TestRoomFlow:
    async def test_a_call_through_the_room_ends_up_complete_in_the_detail(
        self, service: RunningService
    ) -> None:
        user_id = await create_user(service.db)
        body, replies = await call(
            service, user_id, "I slept badly last night", "My manager keeps emailing at midnight"
        )
        greeting, *answers = replies
        assert "Maria Silva" in greeting
        for answer in answers:
            assert any(topic in answer for topic in CONTEXT_TOPICS), answer

        await asyncio.to_thread(service.sim.leave, body["conversation_id"])
        detail = await detail_once(
            service,
            user_id,
            body["id"],
            lambda d: post_call_complete(d) and d["perception_analysis"] is not None,
        )

        assert detail["id"] == body["id"]
        assert detail["conversation_id"] == body["conversation_id"]
        assert detail["status"] == "completed"
        assert detail["shutdown_reason"] == "participant_left_timeout"
        assert detail["ended_at"] is not None
        assert detail["replica_joined_at"] is not None
        assert isinstance(detail["duration_seconds"], int)
        assert detail["duration_seconds"] >= 0
        started = datetime.fromisoformat(detail["started_at"])
        ended = datetime.fromisoformat(detail["ended_at"])
        assert ended >= started
        assert detail["duration_seconds"] == int((ended - started).total_seconds())

        transcript = detail["transcript"]
        assert transcript, detail
        assert all(entry["role"] != "system" for entry in transcript)
        user_lines = [e["content"] for e in transcript if e["role"] == "user"]
        assert user_lines == ["I slept badly last night", "My manager keeps emailing at midnight"]
        assert [e["content"] for e in transcript if e["role"] == "assistant"] == replies

        text = detail["transcript_text"]
        assert "User: I slept badly last night" in text
        assert "User: My manager keeps emailing at midnight" in text
        assert SYSTEM_PROMPT_OPENING not in text
        assert "Active goals" not in text  # the context itself is not part of the call

        assert detail["perception_analysis"]
        assert detail["recording"] is None

        events = detail["events"]
        assert [e["event_type"] for e in events] == POST_CALL_EVENTS
        assert {e["outcome"] for e in events} == {"applied"}
        occurred = [datetime.fromisoformat(e["occurred_at"]) for e in events]
        assert occurred == sorted(occurred)
        assert all(e["received_at"] for e in events)

        # The list shows the same session, finished.
        page = await service.client.get("/v1/sessions", headers=service.auth(user_id))
        [listed] = page.json()["items"]
        shared = ("status", "ended_at", "duration_seconds", "shutdown_reason", "started_at")
        assert {k: listed[k] for k in shared} == {k: detail[k] for k in shared}

    async def test_duplicated_shuffled_callbacks_give_one_ordered_timeline(
        self, service: RunningService
    ) -> None:
        service.sim.set_config(callback_duplicate=2, callback_shuffle=True, callback_seed=3)
        user_id = await create_user(service.db)
        body, _ = await call(service, user_id, "Hello there")

        await asyncio.to_thread(service.sim.leave, body["conversation_id"])
        assert await asyncio.to_thread(service.sim.drain)
        detail = await detail_once(
            service,
            user_id,
            body["id"],
            lambda d: post_call_complete(d) and d["perception_analysis"] is not None,
        )

        events = detail["events"]
        assert sorted(e["event_type"] for e in events) == sorted(POST_CALL_EVENTS)
        occurred = [datetime.fromisoformat(e["occurred_at"]) for e in events]
        assert occurred == sorted(occurred)
        assert events[0]["event_type"] == "system.replica_joined"
        assert {e["outcome"] for e in events} == {"applied"}
        assert detail["shutdown_reason"] == "participant_left_timeout"
        assert [e["content"] for e in detail["transcript"] if e["role"] == "user"] == [
            "Hello there"
        ]

    async def test_session_ended_by_the_user_gets_its_transcript(
        self, service: RunningService
    ) -> None:
        user_id = await create_user(service.db)
        body, _ = await call(service, user_id, "I have to go, sorry")

        ended = await end(service, user_id, body["id"])
        assert ended["status"] == "completed"
        detail = await detail_once(
            service,
            user_id,
            body["id"],
            lambda d: d["shutdown_reason"] is not None and d["transcript"] is not None,
        )

        assert detail["status"] == "completed"
        assert detail["shutdown_reason"] == "end_conversation_endpoint_hit"
        assert detail["ended_at"] is not None
        assert isinstance(detail["duration_seconds"], int)
        assert detail["duration_seconds"] >= 0
        assert [e["content"] for e in detail["transcript"] if e["role"] == "user"] == [
            "I have to go, sorry"
        ]
        assert "User: I have to go, sorry" in detail["transcript_text"]
        assert SYSTEM_PROMPT_OPENING not in detail["transcript_text"]
        shutdowns = [e for e in detail["events"] if e["event_type"] == "system.shutdown"]
        assert [e["outcome"] for e in shutdowns] == ["applied"]

    async def test_a_live_session_has_no_post_call_data_yet(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        body, _ = await call(service, user_id)

        detail = await get_detail(service, user_id, body["id"])

        assert detail["status"] == "in_progress"
        assert detail["ended_at"] is None
        assert detail["duration_seconds"] is None
        assert detail["shutdown_reason"] is None
        assert detail["transcript"] is None
        assert detail["transcript_text"] is None
        assert detail["recording"] is None
        assert detail["perception_analysis"] is None
        assert [e["event_type"] for e in detail["events"]] == ["system.replica_joined"]


class TestRecording:
    @pytest.fixture
    def service_overrides(self) -> dict[str, Any]:
        return {"session_enable_recording": True, "session_participant_left_timeout_seconds": 0}

    async def test_recording_is_in_the_detail(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        body, _ = await call(service, user_id, "Record this please")
        [created] = service.sim.conversations()["conversations"]
        assert created["properties"]["enable_recording"] is True

        await asyncio.to_thread(service.sim.leave, body["conversation_id"])
        detail = await detail_once(
            service, user_id, body["id"], lambda d: d["recording"] is not None
        )

        recording = detail["recording"]
        assert recording["status"] == "ready"
        assert recording["s3_key"].startswith(f"{body['conversation_id']}/")
        assert recording["storage_uri"].endswith(recording["s3_key"])
        recorded = [e for e in detail["events"] if e["event_type"].endswith("recording_ready")]
        assert [e["outcome"] for e in recorded] == ["applied"]


# --- detail: who may read -----------------------------------------------------------------
class TestDetailAccess:
    async def test_only_the_owner_reads_a_session(self, service: RunningService) -> None:
        owner = await create_user(service.db)
        intruder = await create_user(service.db, full_name="Intruder")
        body = await start(service, owner)

        theirs = await service.client.get(
            f"/v1/sessions/{body['id']}", headers=service.auth(intruder)
        )
        unknown = await service.client.get(
            f"/v1/sessions/{uuid.uuid4()}", headers=service.auth(owner)
        )
        malformed = await service.client.get("/v1/sessions/not-a-uuid", headers=service.auth(owner))
        anonymous = await service.client.get(f"/v1/sessions/{body['id']}")

        a = assert_problem(theirs, 404, "session_not_found")
        b = assert_problem(unknown, 404, "session_not_found")
        same = ("type", "title", "status", "code", "detail")
        assert {k: a.get(k) for k in same} == {k: b.get(k) for k in same}
        assert body["conversation_id"] not in theirs.text
        assert_problem(malformed, 422, "validation_error")
        assert_problem(anonymous, 401, "unauthorized")
        assert (await get_detail(service, owner, body["id"]))["id"] == body["id"]


class TestContextPreview:
    async def test_complete_user_with_the_default_mentor(self, service: RunningService) -> None:
        user_id = await create_user(service.db)

        response = await service.client.get("/v1/me/context", headers=service.auth(user_id))

        assert response.status_code == 200, response.text
        preview = response.json()
        assert "Maria Silva" in preview["text"]
        assert "Meditate 10 minutes every morning" in preview["text"]
        assert "Archived goal" not in preview["text"]
        names = [s["name"] for s in preview["sections"]]
        for name in ("profile", "personality", "preferences", "focus_areas", "goals"):
            assert name in names
        assert preview["text"] == "\n\n".join(s["text"] for s in preview["sections"])
        assert all(s["title"] for s in preview["sections"])
        assert preview["language"] == "portuguese"
        assert preview["truncated"] is False
        assert preview["mentor"] == {
            "name": None,
            "persona_id": "p0000default",
            "replica_id": "r0000default",
        }
        # Nothing written, nothing created at Tavus.
        assert await count_rows(service.db, DailySession) == 0
        assert await count_rows(service.db, MentorConversation) == 0
        assert service.sim.conversations()["created_total"] == 0

    async def test_preview_is_exactly_what_a_start_sends(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        await create_persona(service.db, user_id, name="Sage")
        preview = (await service.client.get("/v1/me/context", headers=service.auth(user_id))).json()

        await start(service, user_id)

        [created] = service.sim.conversations()["conversations"]
        assert created["conversational_context"] == preview["text"]
        assert created["properties"]["language"] == preview["language"]
        assert (created["persona_id"], created["replica_id"]) == (
            preview["mentor"]["persona_id"],
            preview["mentor"]["replica_id"],
        )

    async def test_active_or_chosen_persona_is_the_mentor(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        await create_persona(service.db, user_id, name="Sage")
        chosen = await create_persona(
            service.db, user_id, name="Chosen", is_active=False, tavus_persona_id="pchosen0001"
        )

        active = await service.client.get("/v1/me/context", headers=service.auth(user_id))
        picked = await service.client.get(
            "/v1/me/context", params={"mentor_id": str(chosen)}, headers=service.auth(user_id)
        )

        assert active.status_code == picked.status_code == 200, (active.text, picked.text)
        assert active.json()["mentor"] == {
            "name": "Sage",
            "persona_id": "pavatar00001",
            "replica_id": "ravatar00001",
        }
        assert picked.json()["mentor"] == {
            "name": "Chosen",
            "persona_id": "pchosen0001",
            "replica_id": "ravatar00001",
        }

    async def test_refusals(self, service: RunningService) -> None:
        user_id = await create_user(service.db)
        other = await create_user(service.db, full_name="Other Person")
        theirs = await create_persona(service.db, other)

        def get(params: dict[str, str] | None = None, user: uuid.UUID | None = user_id) -> Any:
            headers = service.auth(user) if user else {}
            return service.client.get("/v1/me/context", params=params, headers=headers)

        assert_problem(await get({"mentor_id": str(theirs)}), 404, "mentor_not_found")
        assert_problem(await get({"mentor_id": str(uuid.uuid4())}), 404, "mentor_not_found")
        assert_problem(await get({"mentor_id": "nope"}), 422, "validation_error")
        assert_problem(await get(user=uuid.uuid4()), 404, "profile_not_found")
        assert_problem(await get(user=None), 401, "unauthorized")
        assert await count_rows(service.db, DailySession) == 0
        assert service.sim.conversations()["created_total"] == 0

    async def test_minimal_profile_previews_without_gaps(self, service: RunningService) -> None:
        user_id = await create_user(service.db, complete=False, language="fr")
        response = await service.client.get("/v1/me/context", headers=service.auth(user_id))
        assert response.status_code == 200, response.text
        preview = response.json()
        assert preview["language"] == "french"
        assert "None" not in preview["text"]
        assert "goals" not in [s["name"] for s in preview["sections"]]
