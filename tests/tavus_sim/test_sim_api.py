"""The simulated Tavus conversation API: shapes, status codes and error bodies."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from tavus_sim import SimServer

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
GET_FIELDS = {
    "conversation_id",
    "conversation_name",
    "conversation_url",
    "callback_url",
    "status",
    "replica_id",
    "persona_id",
    "created_at",
    "updated_at",
}
INVALID_ID = {"error": "Invalid conversation_id"}


def test_create_answers_tavus_shape(sim: SimServer, create: Any) -> None:
    body = create(conversation_name="Session with Ana", callback_url="https://example.test/cb")

    assert set(body) == {
        "conversation_id",
        "conversation_name",
        "conversation_url",
        "status",
        "callback_url",
        "created_at",
    }
    assert re.fullmatch(r"c[0-9a-f]{12}", body["conversation_id"])
    assert body["conversation_name"] == "Session with Ana"
    assert body["conversation_url"] == f"{sim.base_url}/rooms/{body['conversation_id']}"
    assert body["status"] == "active"
    assert body["callback_url"] == "https://example.test/cb"
    assert ISO_Z.match(body["created_at"])


def test_create_defaults_name_and_empty_callback_url(create: Any) -> None:
    body = create()

    assert body["conversation_name"].startswith("New Conversation ")
    assert body["callback_url"] == ""


def test_create_accepts_pal_and_face_aliases(api: httpx.Client, create: Any) -> None:
    body = create(replica_id=None, face_id="rface", pal_id="ppal")

    got = api.get(f"/conversations/{body['conversation_id']}").json()
    assert (got["replica_id"], got["persona_id"]) == ("rface", "ppal")


def test_create_with_persona_only_uses_default_replica(api: httpx.Client, sim: SimServer) -> None:
    response = api.post("/conversations", json={"persona_id": "p123"})

    got = api.get(f"/conversations/{response.json()['conversation_id']}").json()
    assert got["persona_id"] == "p123"
    assert got["replica_id"] == sim.config.default_replica_id


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "replica_id"),
        ({"persona_id": ""}, "persona_id"),
        ({"replica_id": "r1", "properties": {"max_call_duration": "60"}}, "max_call_duration"),
        ({"replica_id": "r1", "callback_url": "ftp://x/y"}, "callback_url"),
        ({"replica_id": "r1", "face_id": "r2"}, "replica_id and face_id"),
        ({"replica_id": "r1", "test_mode": "yes"}, "test_mode"),
        ({"replica_id": "r1", "require_auth": 1}, "require_auth"),
        ({"replica_id": "r1", "participant_tags": ["a", "b"]}, "participant_tags"),
        ({"replica_id": "r1", "participant_tags": [""]}, "participant_tags"),
        ({"replica_id": "r1", "participant_tags": "a"}, "participant_tags"),
        ({"replica_id": "r1", "memory_stores": "tag"}, "memory_stores"),
        (
            {"replica_id": "r1", "properties": {"enable_transcription": "yes"}},
            "enable_transcription",
        ),
        ({"replica_id": "r1", "chat": "true"}, "chat"),
        ({"replica_id": "r1", "meeting_url": "meet.example"}, "meeting_url"),
        ({"replica_id": "r1", "max_participants": 1}, "max_participants"),
    ],
)
def test_create_rejects_invalid_bodies_with_400_message(
    api: httpx.Client, body: dict[str, Any], fragment: str
) -> None:
    response = api.post("/conversations", json=body)

    assert response.status_code == 400
    assert fragment in response.json()["message"]


def test_create_accepts_and_keeps_fields_it_does_not_model(create: Any, sim: SimServer) -> None:
    # What Tavus's CLI and integrations send beyond the API reference: accepted, not refused.
    body = create(
        chat=True,
        meeting_url="https://meet.example.com/abc-defg",
        some_future_field={"nested": [1, 2]},
        max_call_duration=60,  # a common mistake: belongs in `properties`, ignored here
        properties={"enable_transcription": True, "future_property": "x"},
    )

    state = sim.conversation(body["conversation_id"])
    assert state["extra_fields"] == {
        "some_future_field": {"nested": [1, 2]},
        "max_call_duration": 60,
    }
    assert state["properties"] == {"enable_transcription": True, "future_property": "x"}
    assert state["timings"]["max_call_duration"] == sim.config.default_max_call_duration


def test_create_stores_participant_and_legacy_memory_tags(create: Any, sim: SimServer) -> None:
    body = create(participant_tags=["app:user-1"], memory_stores=["legacy-1", "legacy-2"])

    state = sim.conversation(body["conversation_id"])
    assert state["participant_tags"] == ["app:user-1"]
    assert state["memory_stores"] == ["legacy-1", "legacy-2"]
    assert state["memory_store_id"] is not None


def test_create_rejects_malformed_json(api: httpx.Client) -> None:
    response = api.post(
        "/conversations", content=b"{not json", headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert "message" in response.json()


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/conversations"),
        ("GET", "/conversations"),
        ("GET", "/conversations/c123"),
        ("POST", "/conversations/c123/end"),
        ("DELETE", "/conversations/c123"),
    ],
)
def test_bad_or_missing_api_key_is_401(
    http: httpx.Client, sim: SimServer, headers: dict[str, str], method: str, path: str
) -> None:
    response = http.request(method, sim.api_url + path, headers=headers, json={"replica_id": "r"})

    assert response.status_code == 401
    assert response.json() == {"message": "Invalid access token"}
    assert sim.conversations()["create_requests"] == 0


def test_get_returns_documented_fields(api: httpx.Client, create: Any) -> None:
    created = create(persona_id="p1", callback_url="https://example.test/cb")

    got = api.get(f"/conversations/{created['conversation_id']}")

    assert got.status_code == 200
    data = got.json()
    assert set(data) == GET_FIELDS
    assert data["status"] == "active"
    assert (data["replica_id"], data["persona_id"]) == ("r1", "p1")
    assert data["created_at"] == created["created_at"]
    assert ISO_Z.match(data["updated_at"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/conversations/cdoesnotexist"),
        ("POST", "/conversations/cdoesnotexist/end"),
        ("DELETE", "/conversations/cdoesnotexist"),
    ],
)
def test_unknown_conversation_is_400_invalid_conversation_id(
    api: httpx.Client, method: str, path: str
) -> None:
    response = api.request(method, path)

    assert response.status_code == 400
    assert response.json() == INVALID_ID


def test_list_is_newest_first_paginated_and_filtered(api: httpx.Client, create: Any) -> None:
    ids = [create(conversation_name=f"n{i}")["conversation_id"] for i in range(5)]
    api.post(f"/conversations/{ids[0]}/end")

    page1 = api.get("/conversations", params={"limit": 2, "page": 1}).json()
    page3 = api.get("/conversations", params={"limit": 2, "page": 3}).json()
    ended = api.get("/conversations", params={"status": "ended"}).json()
    active = api.get("/conversations", params={"status": "active"}).json()
    default = api.get("/conversations").json()

    assert [c["conversation_id"] for c in page1["data"]] == [ids[4], ids[3]]
    assert page1["total_count"] == 5
    assert [c["conversation_id"] for c in page3["data"]] == [ids[0]]
    assert [c["conversation_id"] for c in ended["data"]] == [ids[0]]
    assert active["total_count"] == 4
    assert len(default["data"]) == 5
    assert set(default["data"][0]) == GET_FIELDS


@pytest.mark.parametrize("params", [{"status": "deleted"}, {"limit": "x"}, {"page": "0"}])
def test_list_rejects_bad_parameters(api: httpx.Client, params: dict[str, str]) -> None:
    response = api.get("/conversations", params=params)

    assert response.status_code == 400
    assert "message" in response.json()


def test_end_is_ok_and_idempotent(api: httpx.Client, create: Any, sim: SimServer) -> None:
    conversation_id = create()["conversation_id"]

    first = api.post(f"/conversations/{conversation_id}/end")
    second = api.post(f"/conversations/{conversation_id}/end")

    assert (first.status_code, first.text) == (200, "OK")
    assert (second.status_code, second.text) == (200, "OK")
    got = api.get(f"/conversations/{conversation_id}").json()
    assert got["status"] == "ended"
    state = sim.conversation(conversation_id)
    assert state["shutdown_reason"] == "end_conversation_endpoint_hit"
    shutdowns = [e for e in state["events"] if e["event_type"] == "system.shutdown"]
    assert len(shutdowns) == 1


def test_soft_delete_hides_and_ends_the_conversation(
    api: httpx.Client, create: Any, sim: SimServer
) -> None:
    conversation_id = create()["conversation_id"]

    response = api.delete(f"/conversations/{conversation_id}")

    assert response.status_code == 204
    assert api.get(f"/conversations/{conversation_id}").json() == INVALID_ID
    assert api.get("/conversations").json()["total_count"] == 0
    assert api.delete(f"/conversations/{conversation_id}").status_code == 400
    state = sim.conversation(conversation_id)
    assert state["status"] == "deleted"
    assert state["shutdown_reason"] == "daily_room_has_been_deleted"
    assert sim.conversations()["active"] == 0


def test_hard_delete_removes_the_conversation(
    api: httpx.Client, create: Any, sim: SimServer
) -> None:
    conversation_id = create()["conversation_id"]
    api.post(f"/conversations/{conversation_id}/end")

    response = api.delete(f"/conversations/{conversation_id}", params={"hard": "true"})

    assert response.status_code == 204
    overview = sim.conversations()
    assert overview["conversations"] == []
    assert overview["created_total"] == 1


def test_concurrency_limit_error_and_end_frees_a_slot(
    api: httpx.Client, create: Any, sim: SimServer
) -> None:
    sim.set_config(concurrency_limit=2)
    first = create()["conversation_id"]
    create()

    refused = api.post("/conversations", json={"replica_id": "r1"})
    assert refused.status_code == 400
    assert refused.json() == {"message": "User has reached maximum concurrent conversations"}
    assert create(test_mode=True)["status"] == "ended"  # test mode uses no slot

    api.post(f"/conversations/{first}/end")
    assert api.post("/conversations", json={"replica_id": "r1"}).status_code == 200
    overview = sim.conversations()
    assert (overview["active"], overview["created_total"], overview["create_requests"]) == (
        2,
        4,
        5,
    )


def test_unlimited_concurrency(api: httpx.Client, create: Any, sim: SimServer) -> None:
    sim.set_config(concurrency_limit=None)
    for _ in range(12):
        create()

    assert sim.conversations()["active"] == 12


def test_test_mode_conversation_is_ended_and_never_joined(
    api: httpx.Client, create: Any, sim: SimServer, receiver: Any
) -> None:
    body = create(test_mode=True, callback_url=receiver.url())

    assert body["status"] == "ended"
    time.sleep(0.1)  # longer than the replica join delay
    state = sim.conversation(body["conversation_id"])
    assert state["events"] == []
    assert state["test_mode"] is True
    assert receiver.payloads() == []


def test_require_auth_returns_meeting_token(create: Any) -> None:
    body = create(require_auth=True)

    assert body["meeting_token"].count(".") == 2


def test_max_call_duration_is_silently_capped(create: Any, sim: SimServer) -> None:
    conversation_id = create(properties={"max_call_duration": 7200})["conversation_id"]

    assert sim.conversation(conversation_id)["timings"]["max_call_duration"] == 3600


def test_properties_are_recorded(create: Any, sim: SimServer, mentor_context: str) -> None:
    properties = {
        "max_call_duration": 600,
        "participant_left_timeout": 30,
        "participant_absent_timeout": 120,
        "enable_closed_captions": True,
        "language": "english",
    }
    conversation_id = create(properties=properties, conversational_context=mentor_context)[
        "conversation_id"
    ]

    state = sim.conversation(conversation_id)
    assert state["properties"] == properties
    assert state["conversational_context"] == mentor_context
    assert sim.conversations()["creates"][0]["request"]["properties"] == properties


def test_latency_is_applied_to_api_calls(api: httpx.Client, sim: SimServer) -> None:
    sim.set_config(latency_ms=150)

    started = time.monotonic()
    api.get("/conversations")

    assert time.monotonic() - started >= 0.15
