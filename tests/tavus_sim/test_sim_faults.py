"""Fault injection on the simulated Tavus API."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tavus_sim import SimServer


def test_status_fault_answers_given_status_and_body_then_recovers(
    api: httpx.Client, sim: SimServer
) -> None:
    sim.add_fault("status", endpoint="create", status=503, body={"message": "busy"}, count=2)

    first = api.post("/conversations", json={"replica_id": "r1"})
    second = api.post("/conversations", json={"replica_id": "r1"})
    third = api.post("/conversations", json={"replica_id": "r1"})

    assert (first.status_code, first.json()) == (503, {"message": "busy"})
    assert second.status_code == 503
    assert third.status_code == 200
    overview = sim.conversations()
    assert (overview["created_total"], overview["create_requests"]) == (1, 3)
    assert [r["fault"] for r in overview["creates"]] == ["status", "status", None]


def test_status_fault_default_body(api: httpx.Client, sim: SimServer) -> None:
    sim.add_fault("status", endpoint="list")

    response = api.get("/conversations")

    assert (response.status_code, response.json()) == (500, {"message": "Internal Server Error"})


def test_faults_match_only_their_endpoint(api: httpx.Client, sim: SimServer, create: Any) -> None:
    sim.add_fault("status", endpoint="end", status=502)

    conversation_id = create()["conversation_id"]
    assert api.get(f"/conversations/{conversation_id}").status_code == 200
    assert api.post(f"/conversations/{conversation_id}/end").status_code == 502
    assert api.get(f"/conversations/{conversation_id}").json()["status"] == "active"
    assert sim.faults() == []


def test_any_endpoint_fault_and_clear(api: httpx.Client, sim: SimServer) -> None:
    sim.add_fault("status", endpoint="any", count=5)
    assert api.get("/conversations").status_code == 500

    sim.clear_faults()

    assert api.get("/conversations").status_code == 200


def test_apply_first_status_fault_on_end_still_ends(
    api: httpx.Client, sim: SimServer, create: Any
) -> None:
    conversation_id = create()["conversation_id"]
    sim.add_fault("status", endpoint="end", status=500, apply_first=True)

    assert api.post(f"/conversations/{conversation_id}/end").status_code == 500
    assert api.get(f"/conversations/{conversation_id}").json()["status"] == "ended"


def test_malformed_fault_answers_200_with_an_unusable_body(
    api: httpx.Client, sim: SimServer, create: Any
) -> None:
    conversation_id = create()["conversation_id"]
    sim.add_fault("malformed", endpoint="get")
    sim.add_fault("malformed", endpoint="get", body={"data": "not a conversation"})

    truncated = api.get(f"/conversations/{conversation_id}")
    shaped = api.get(f"/conversations/{conversation_id}")

    assert truncated.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        truncated.json()
    assert (shaped.status_code, shaped.json()) == (200, {"data": "not a conversation"})
    assert api.get(f"/conversations/{conversation_id}").json()["status"] == "active"


def test_fault_bound_to_a_conversation_spares_the_others(
    api: httpx.Client, sim: SimServer, create: Any
) -> None:
    target, other = create()["conversation_id"], create()["conversation_id"]
    sim.add_fault("status", endpoint="get", status=502, conversation_id=target, count=2)

    assert api.get(f"/conversations/{other}").status_code == 200
    assert api.get("/conversations").status_code == 200  # a listing names no conversation
    assert api.get(f"/conversations/{target}").status_code == 502
    assert api.get(f"/conversations/{other}?verbose=true").status_code == 200
    assert api.get(f"/conversations/{target}").status_code == 502
    assert api.get(f"/conversations/{target}").status_code == 200
    assert sim.faults() == []


def test_concurrency_limit_fault(api: httpx.Client, sim: SimServer) -> None:
    sim.add_fault("concurrency_limit", endpoint="create")

    response = api.post("/conversations", json={"replica_id": "r1"})

    assert response.status_code == 400
    assert response.json() == {"message": "User has reached maximum concurrent conversations"}
    assert sim.conversations()["created_total"] == 0


def test_out_of_credits_fault(api: httpx.Client, sim: SimServer) -> None:
    sim.add_fault("out_of_credits", endpoint="create")

    response = api.post("/conversations", json={"replica_id": "r1"})

    assert response.status_code == 402
    assert response.json() == {"message": "The user is out of conversational credits"}


@pytest.mark.parametrize(("apply_first", "created"), [(False, 0), (True, 1)])
def test_create_timeout_with_and_without_apply_first(
    http: httpx.Client, sim: SimServer, apply_first: bool, created: int
) -> None:
    sim.add_fault("timeout", endpoint="create", delay_s=5, apply_first=apply_first)

    with pytest.raises(httpx.ReadTimeout):
        http.post(
            f"{sim.api_url}/conversations",
            headers={"x-api-key": sim.api_key},
            json={"replica_id": "r1", "conversation_name": "outcome unknown"},
            timeout=0.2,
        )

    overview = sim.conversations()
    assert overview["create_requests"] == 1
    assert overview["creates"][0]["request"]["conversation_name"] == "outcome unknown"
    assert overview["created_total"] == created
    assert overview["active"] == created


def test_timeout_without_apply_first_answers_504_after_delay(
    api: httpx.Client, sim: SimServer
) -> None:
    sim.add_fault("timeout", endpoint="get", delay_s=0.2)

    started = time.monotonic()
    response = api.get("/conversations/cwhatever")

    assert time.monotonic() - started >= 0.2
    assert (response.status_code, response.json()) == (504, {"message": "Gateway Timeout"})


def test_timeout_with_apply_first_is_a_slow_success(api: httpx.Client, sim: SimServer) -> None:
    sim.add_fault("timeout", endpoint="create", delay_s=0.2, apply_first=True)

    response = api.post("/conversations", json={"replica_id": "r1"})

    assert response.status_code == 200
    assert response.json()["status"] == "active"


@pytest.mark.parametrize(("apply_first", "created"), [(False, 0), (True, 1)])
def test_drop_connection_on_create(
    api: httpx.Client, sim: SimServer, apply_first: bool, created: int
) -> None:
    sim.add_fault("drop_connection", endpoint="create", apply_first=apply_first)

    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/conversations", json={"replica_id": "r1"})

    overview = sim.conversations()
    assert overview["created_total"] == created
    assert overview["creates"][0]["status_code"] is None
    assert overview["creates"][0]["fault"] == "drop_connection"
    # The same client keeps working on a fresh connection.
    assert api.get("/conversations").status_code == 200


def test_fault_rule_validation(sim: SimServer) -> None:
    with pytest.raises(httpx.HTTPStatusError) as raised:
        sim.add_fault("explode")

    assert raised.value.response.status_code == 422


def test_reset_clears_faults_and_releases_sleeping_requests(
    http: httpx.Client, sim: SimServer
) -> None:
    sim.add_fault("timeout", endpoint="list", delay_s=30, count=3)
    assert sim.faults()[0]["remaining"] == 3

    with pytest.raises(httpx.ReadTimeout):
        http.get(f"{sim.api_url}/conversations", headers={"x-api-key": sim.api_key}, timeout=0.1)
    sim.reset()

    assert sim.faults() == []
