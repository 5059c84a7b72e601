"""The simulator against Tavus's documented shapes (tavus_contract.json), over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tavus_sim import SimServer
from tests.contract.shapes import (
    body_problems,
    contract,
    endpoint,
    error,
    fields,
    item_fields,
    response_fields,
)

ENDPOINTS = contract()["endpoints"]


def _key(sim: SimServer) -> dict[str, str]:
    return {contract()["base"]["auth_header"]: sim.api_key}


def _create(http: httpx.Client, sim: SimServer, **overrides: Any) -> dict[str, Any]:
    body = {**endpoint("create_conversation")["example_request"], **overrides}
    response = http.post("/conversations", json=body, headers=_key(sim))
    assert response.status_code == endpoint("create_conversation")["response"]["status"]
    created: dict[str, Any] = response.json()
    return created


def _path(template: str, **ids: str) -> str:
    return template.format(**ids)


# --- conversations ---------------------------------------------------------------------------


def test_the_documented_create_request_is_accepted_and_answered_in_shape(
    http: httpx.Client, sim: SimServer
) -> None:
    created = _create(http, sim)

    assert body_problems(created, response_fields("create_conversation"), closed=True) == []
    assert created["status"] == "active"
    assert isinstance(created["meeting_token"], str)  # require_auth was true


def test_every_documented_create_field_is_accepted(http: httpx.Client, sim: SimServer) -> None:
    request = endpoint("create_conversation")["request"]
    body = {
        **endpoint("create_conversation")["example_request"],
        "audio_only": False,
        "enable_dynamic_greeting": False,
        "memory_stores": ["legacy-tag"],
        "document_ids": [],
        "document_retrieval_strategy": "balanced",
        "document_tags": [],
        "test_mode": False,
        "max_participants": 2,
        "policy": "eu",
    }
    body["properties"] = {
        **body["properties"],
        "enable_recording": False,
        "apply_greenscreen": False,
        "recording_storage": {"provider": "s3", "bucket_name": "b"},
    }
    assert body_problems(body, fields(request["fields"]), closed=True) == []
    assert body_problems(body["properties"], fields(request["properties"]), closed=True) == []

    response = http.post("/conversations", json=body, headers=_key(sim))

    assert response.status_code == 200, response.text


def test_fields_clients_send_beyond_the_reference_are_accepted(
    http: httpx.Client, sim: SimServer
) -> None:
    extra = endpoint("create_conversation")["request"]["undocumented_but_sent_by_clients"]
    created = _create(
        http,
        sim,
        chat=True,
        meeting_url="https://meet.example.com/abc",
        properties={"enable_transcription": True},
    )

    assert set(extra["fields"]) == {"chat", "meeting_url"}
    assert created["status"] == "active"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("test_mode", "true"),
        ("require_auth", "yes"),
        ("participant_tags", "app:u1"),
        ("participant_tags", ["a", "b"]),
        ("memory_stores", [1]),
        ("max_participants", 1),
        ("document_retrieval_strategy", "fastest"),
        ("policy", "us"),
        ("properties", []),
    ],
)
def test_documented_fields_stay_validated(
    http: httpx.Client, sim: SimServer, field: str, value: Any
) -> None:
    body = {**endpoint("create_conversation")["example_request"], field: value}

    response = http.post("/conversations", json=body, headers=_key(sim))

    assert response.status_code == 400
    assert isinstance(response.json()["message"], str)


def test_callback_url_is_empty_text_when_not_set(http: httpx.Client, sim: SimServer) -> None:
    created = _create(http, sim, callback_url=None, require_auth=None)

    assert created["callback_url"] == ""
    assert "meeting_token" not in created


def test_test_mode_is_answered_ended_and_uses_no_slot(http: httpx.Client, sim: SimServer) -> None:
    sim.set_config(concurrency_limit=0)

    created = _create(http, sim, test_mode=True)

    assert created["status"] == "ended"
    assert body_problems(created, response_fields("create_conversation"), closed=True) == []
    refused = http.post(
        "/conversations", json=endpoint("create_conversation")["example_request"], headers=_key(sim)
    )
    assert (refused.status_code, refused.json()) == (
        error("concurrency_limit")["status"],
        error("concurrency_limit")["body"],
    )


@pytest.mark.parametrize("verbose", [False, True])
def test_get_conversation_shape(http: httpx.Client, sim: SimServer, verbose: bool) -> None:
    conversation_id = _create(http, sim)["conversation_id"]
    spec = endpoint("get_conversation")

    response = http.get(
        _path(spec["path"], conversation_id=conversation_id),
        params={"verbose": "true"} if verbose else None,
        headers=_key(sim),
    )

    assert response.status_code == spec["response"]["status"]
    documented = response_fields("get_conversation")
    if verbose:
        documented |= fields(spec["response"]["verbose_fields"])
    assert body_problems(response.json(), documented, closed=True) == []


def test_verbose_get_after_the_end_carries_events_reason_and_transcript(
    http: httpx.Client, sim: SimServer
) -> None:
    conversation_id = _create(http, sim, require_auth=None)["conversation_id"]
    sim.join(conversation_id)
    sim.say(conversation_id, "Hello")
    end = endpoint("end_conversation")
    ended = http.post(_path(end["path"], conversation_id=conversation_id), headers=_key(sim))
    assert ended.status_code == end["response"]["status"]

    body = http.get(
        f"/conversations/{conversation_id}", params={"verbose": "true"}, headers=_key(sim)
    ).json()

    documented = response_fields("get_conversation") | fields(
        endpoint("get_conversation")["response"]["verbose_fields"]
    )
    assert body_problems(body, documented, closed=True) == []
    assert body["shutdown_reason"] == "end_conversation_endpoint_hit"
    assert {event["event_type"] for event in body["events"]} >= {
        "system.shutdown",
        "application.transcription_ready",
    }
    assert [turn["role"] for turn in body["transcript"]][:1] == ["system"]


def test_list_conversations_shape_and_filters(http: httpx.Client, sim: SimServer) -> None:
    first = _create(http, sim)["conversation_id"]
    _create(http, sim, test_mode=True)
    spec = endpoint("list_conversations")

    everything = http.get(spec["path"], headers=_key(sim)).json()
    active = http.get(spec["path"], params={"status": "active"}, headers=_key(sim)).json()
    page = http.get(spec["path"], params={"limit": 1, "page": 2}, headers=_key(sim)).json()

    for body in (everything, active, page):
        assert body_problems(body, response_fields("list_conversations"), closed=True) == []
        for item in body["data"]:
            assert body_problems(item, item_fields("list_conversations"), closed=True) == []
    assert everything["total_count"] == 2
    assert [c["conversation_id"] for c in active["data"]] == [first]
    assert (len(page["data"]), page["total_count"]) == (1, 2)


def test_delete_conversation_answers_204(http: httpx.Client, sim: SimServer) -> None:
    conversation_id = _create(http, sim)["conversation_id"]
    spec = endpoint("delete_conversation")

    response = http.delete(
        _path(spec["path"], conversation_id=conversation_id),
        params={"hard": "true"},
        headers=_key(sim),
    )

    assert response.status_code == spec["response"]["status"]


@pytest.mark.parametrize("name", ["get_conversation", "end_conversation", "delete_conversation"])
def test_an_unknown_conversation_is_the_documented_400(
    http: httpx.Client, sim: SimServer, name: str
) -> None:
    spec = endpoint(name)
    documented = error("unknown_conversation")

    response = http.request(
        spec["method"], _path(spec["path"], conversation_id="cnothere"), headers=_key(sim)
    )

    assert (response.status_code, response.json()) == (documented["status"], documented["body"])


# --- every endpoint: 401 ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
@pytest.mark.parametrize("headers", [{}, {"x-api-key": "not-the-key"}])
def test_every_documented_endpoint_answers_the_documented_401(
    http: httpx.Client, sim: SimServer, name: str, headers: dict[str, str]
) -> None:
    spec = endpoint(name)
    path = _path(
        spec["path"],
        conversation_id="c1",
        persona_id="p1",
        replica_id="r1",
        memory_store_id="ms1",
    )
    unauthorised = error("unauthorised")

    response = http.request(spec["method"], path, headers=headers, json={})

    assert (response.status_code, response.json()) == (
        unauthorised["status"],
        unauthorised["body"],
    )


# --- personas and replicas --------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "alias"])
def test_persona_list_and_get_shapes(http: httpx.Client, sim: SimServer, prefix: str) -> None:
    listing = endpoint("list_personas")
    one = endpoint("get_persona")
    list_path = listing["aliases"][0] if prefix else listing["path"]
    get_path = one["aliases"][0] if prefix else one["path"]

    page = http.get(list_path, params={"persona_type": "user"}, headers=_key(sim)).json()
    assert body_problems(page, response_fields("list_personas"), closed=True) == []
    for item in page["data"]:
        assert body_problems(item, item_fields("list_personas"), closed=False) == []
        got = http.get(_path(get_path, persona_id=item["persona_id"]), headers=_key(sim))
        assert got.status_code == one["response"]["status"]
        assert body_problems(got.json(), response_fields("get_persona"), closed=False) == []
    missing = http.get(_path(get_path, persona_id="pnothere"), headers=_key(sim))
    assert (missing.status_code, missing.json()) == (
        one["not_found"]["status"],
        one["not_found"]["body"],
    )


@pytest.mark.parametrize("prefix", ["", "alias"])
def test_replica_list_and_get_shapes(http: httpx.Client, sim: SimServer, prefix: str) -> None:
    listing = endpoint("list_replicas")
    one = endpoint("get_replica")
    list_path = listing["aliases"][0] if prefix else listing["path"]
    get_path = one["aliases"][0] if prefix else one["path"]

    page = http.get(list_path, headers=_key(sim)).json()
    verbose = http.get(list_path, params={"verbose": "true"}, headers=_key(sim)).json()

    assert body_problems(page, response_fields("list_replicas"), closed=True) == []
    for item in page["data"]:
        assert body_problems(item, item_fields("list_replicas"), closed=True) == []
    assert all(item["replica_type"] in ("user", "system") for item in verbose["data"])
    got = http.get(_path(get_path, replica_id=page["data"][0]["replica_id"]), headers=_key(sim))
    assert body_problems(got.json(), response_fields("get_replica"), closed=True) == []
    missing = http.get(_path(get_path, replica_id="rnothere"), headers=_key(sim))
    assert (missing.status_code, missing.json()) == (
        one["not_found"]["status"],
        one["not_found"]["body"],
    )


# --- memory stores ------------------------------------------------------------------------


def test_memory_store_endpoints_shapes(http: httpx.Client, sim: SimServer) -> None:
    create = endpoint("create_memory_store")
    request = create["example_request"]
    assert body_problems(request, fields(create["request"]["fields"]), closed=True) == []

    created = http.post(create["path"], json=request, headers=_key(sim))
    assert created.status_code == create["response"]["status"]
    assert body_problems(created.json(), response_fields("create_memory_store"), closed=False) == []
    store_id = created.json()["memory_store_id"]

    listing = endpoint("list_memory_stores")
    page = http.get(
        listing["path"],
        params={"participant_tag": request["participant_tag"], "pal_id": request["pal_id"]},
        headers=_key(sim),
    ).json()
    assert body_problems(page, response_fields("list_memory_stores"), closed=True) == []
    assert [item["memory_store_id"] for item in page["data"]] == [store_id]
    for item in page["data"]:
        assert body_problems(item, item_fields("list_memory_stores"), closed=False) == []

    get = endpoint("get_memory_store")
    one = http.get(_path(get["path"], memory_store_id=store_id), headers=_key(sim))
    assert one.status_code == get["response"]["status"]
    assert body_problems(one.json(), response_fields("get_memory_store"), closed=False) == []

    delete = endpoint("delete_memory_store")
    gone = http.delete(_path(delete["path"], memory_store_id=store_id), headers=_key(sim))
    assert gone.status_code == delete["response"]["status"]
    again = http.delete(_path(delete["path"], memory_store_id=store_id), headers=_key(sim))
    assert again.status_code == delete["not_found"]["status"]
    missing = http.get(_path(get["path"], memory_store_id=store_id), headers=_key(sim))
    assert missing.status_code == get["not_found"]["status"]


def test_a_conversation_with_a_participant_tag_makes_a_listable_store(
    http: httpx.Client, sim: SimServer
) -> None:
    tag = endpoint("create_conversation")["example_request"]["participant_tags"][0]
    _create(http, sim)

    page = http.get(
        endpoint("list_memory_stores")["path"],
        params={"participant_tag": tag},
        headers=_key(sim),
    ).json()

    assert [item["participant_tag"] for item in page["data"]] == [tag]
