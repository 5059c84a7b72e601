"""TavusClient's persona, replica, memory-store and key-check calls against httpx.MockTransport:
request shape, parsing, and error handling. (Retries of these calls are covered with the other
idempotent calls in test_tavus_client.py; the contract suite runs them against the simulator.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from facetoface.tavus import (
    CreateConversationRequest,
    MemoryStorePage,
    TavusAuthError,
    TavusInvalidRequest,
    TavusNotFound,
    TavusOutcomeUnknown,
    validate_id,
)


async def test_verify_api_key_is_one_cheap_read(
    make_client: Any, script: Any, api_key: str
) -> None:
    rec = script(httpx.Response(200, json={"data": [], "total_count": 0}))
    client = make_client(rec)

    await client.verify_api_key()

    (request,) = rec.requests
    assert (request.method, request.url.path, dict(request.url.params)) == (
        "GET",
        "/v2/pals",
        {"limit": "1"},
    )
    assert request.headers["x-api-key"] == api_key


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_key_is_an_auth_error_and_not_retried(
    make_client: Any, script: Any, status: int
) -> None:
    rec = script(httpx.Response(status, json={"message": "Invalid access token"}))
    client = make_client(rec, retry_attempts=5)

    with pytest.raises(TavusAuthError):
        await client.verify_api_key()
    assert rec.count == 1


async def test_get_persona_parses_and_reads_the_perception_model(
    make_client: Any, script: Any
) -> None:
    body = {
        "persona_id": "p1",
        "persona_name": "Mentor",
        "default_replica_id": "r1",
        "system_prompt": "PRIVATE PROMPT",
        "layers": {"perception": {"perception_model": "raven-1"}, "llm": {"model": "x"}},
        "unknown": True,
    }
    rec = script(httpx.Response(200, json=body))
    client = make_client(rec)

    persona = await client.get_persona("p1")

    assert rec.requests[0].url.path == "/v2/pals/p1"
    assert (persona.persona_id, persona.default_replica_id) == ("p1", "r1")
    assert (persona.perception_model, persona.analyses_perception) == ("raven-1", True)
    assert "PRIVATE PROMPT" not in repr(persona)


@pytest.mark.parametrize(
    "layers", [None, "raven", {}, {"perception": None}, {"perception": {"perception_model": ""}}]
)
async def test_a_persona_without_a_usable_perception_layer(
    make_client: Any, script: Any, layers: Any
) -> None:
    rec = script(httpx.Response(200, json={"persona_id": "p1", "layers": layers}))
    persona = await make_client(rec).get_persona("p1")

    assert (persona.perception_model, persona.analyses_perception) == (None, False)


@pytest.mark.parametrize(
    ("status", "ready"), [("completed", True), ("ready", True), ("started", False), (None, False)]
)
async def test_get_replica_reports_readiness(
    make_client: Any, script: Any, status: str | None, ready: bool
) -> None:
    rec = script(httpx.Response(200, json={"replica_id": "r1", "status": status}))
    replica = await make_client(rec).get_replica("r1")

    assert rec.requests[0].url.path == "/v2/faces/r1"
    assert replica.is_ready is ready


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(404, json={"message": "Persona not found"}), TavusNotFound),
        (httpx.Response(400, json={"message": "Invalid persona_id"}), TavusInvalidRequest),
        (httpx.Response(401, json={"message": "Invalid access token"}), TavusAuthError),
        (httpx.Response(200, json={"persona_name": "no id"}), TavusOutcomeUnknown),
    ],
)
async def test_get_persona_errors(
    make_client: Any, script: Any, answer: httpx.Response, expected: type[Exception]
) -> None:
    rec = script(answer)
    with pytest.raises(expected):
        await make_client(rec, retry_attempts=1).get_persona("p1")


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_persona("../conversations"),
        lambda c: c.get_replica("r 1"),
        lambda c: c.delete_memory_store(""),
        lambda c: c.list_memory_stores(participant_tag=""),
        lambda c: c.list_memory_stores(pal_id="p/1"),
    ],
)
async def test_unsafe_arguments_are_refused_before_sending(
    make_client: Any, script: Any, call: Any
) -> None:
    rec = script(httpx.Response(200, json={}))
    with pytest.raises(ValueError, match="invalid Tavus|must not be empty"):
        await call(make_client(rec))
    assert rec.count == 0


def test_validate_id_names_what_it_checks() -> None:
    assert validate_id("ms_12ab-C", "memory store id") == "ms_12ab-C"
    with pytest.raises(ValueError, match="invalid Tavus memory store id"):
        validate_id("ms?x", "memory store id")


async def test_list_memory_stores_by_participant_tag(make_client: Any, script: Any) -> None:
    rec = script(
        httpx.Response(
            200,
            json={
                "data": [
                    {"memory_store_id": "ms1", "pal_id": "p1", "participant_tag": "app:u1"},
                    {"pal_id": "p1"},  # no id: nothing can be done with it
                    "junk",
                ],
                "total_count": 3,
            },
        )
    )
    page = await make_client(rec).list_memory_stores(participant_tag="app:u1", pal_id="p1")

    request = rec.requests[0]
    assert (request.method, request.url.path) == ("GET", "/v2/memory-stores")
    assert dict(request.url.params) == {"participant_tag": "app:u1", "pal_id": "p1"}
    assert [s.memory_store_id for s in page.data] == ["ms1"]
    assert page.total_count == 3


@pytest.mark.parametrize(
    ("body", "ids"),
    [
        ([{"memory_store_id": "ms1"}, {"memory_store_id": "ms2"}], ["ms1", "ms2"]),
        ({"data": [{"memory_store_id": "ms1"}]}, ["ms1"]),
        ({"data": None, "total_count": "x"}, []),
    ],
)
def test_memory_store_page_accepts_either_envelope(body: Any, ids: list[str]) -> None:
    page = MemoryStorePage.model_validate(body)

    assert [s.memory_store_id for s in page.data] == ids
    assert page.total_count == len(ids)


async def test_list_memory_stores_without_filter_sends_no_query(
    make_client: Any, script: Any
) -> None:
    rec = script(httpx.Response(200, json={"data": [], "total_count": 0}))
    await make_client(rec).list_memory_stores()

    assert rec.requests[0].url.query == b""


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(404, json={"message": "Memory store not found"}), TavusNotFound),
        (httpx.Response(403, json={"message": "Forbidden"}), TavusAuthError),
    ],
)
async def test_delete_memory_store_rejections_are_not_retried(
    make_client: Any, script: Any, answer: httpx.Response, expected: type[Exception]
) -> None:
    rec = script(answer, httpx.Response(204))
    client = make_client(rec, retry_attempts=5)

    with pytest.raises(expected):
        await client.delete_memory_store("ms1")
    assert rec.count == 1
    assert (rec.requests[0].method, rec.requests[0].url.path) == (
        "DELETE",
        "/v2/memory-stores/ms1",
    )


# --- create: the new fields ----------------------------------------------------------------


def test_create_payload_carries_memory_private_room_and_test_mode() -> None:
    request = CreateConversationRequest(
        persona_id="p1",
        participant_tags=["facetoface:u1"],
        memory_stores=["legacy"],
        require_auth=True,
        test_mode=True,
    )

    assert request.to_payload() == {
        "pal_id": "p1",
        "participant_tags": ["facetoface:u1"],
        "memory_stores": ["legacy"],
        "require_auth": True,
        "test_mode": True,
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"participant_tags": ["a", "b"]},  # Tavus takes one tag per conversation
        {"participant_tags": []},
        {"participant_tags": [""]},
        {"memory_stores": []},
        {"memory_stores": [""]},
        {"require_auth": "maybe"},
    ],
)
def test_create_refuses_malformed_memory_and_auth_fields(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="validation error"):
        CreateConversationRequest(persona_id="p1", **fields)
