"""The tool registry (``/v2/tools``, ``/v2/pals/{id}/tools``) and the mentor calling tools in
the room, signed, against a real HTTP endpoint that checks the signature itself."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest

from tavus_sim import SimServer
from tavus_sim.responses import dumps
from tests.tavus_sim.tool_support import (
    CONTEXT,
    GOAL_MEDITATE,
    GOAL_RUN,
    PAL,
    SECRET,
    ToolReceiver,
    register,
    tool_spec,
)


def mentor_tools(api: httpx.Client, tools: ToolReceiver, pal_id: str | None = PAL) -> None:
    """The three in-call tools of the mentor, attached to ``pal_id``."""
    for name in ("update_goal_progress", "add_goal", "remember"):
        register(api, tool_spec(name, tools.url(name)), pal_id)


def room(api: httpx.Client, sim: SimServer, pal_id: str = PAL, **fields: Any) -> str:
    """A live conversation of ``pal_id`` with the goals context and someone in the room."""
    created = api.post(
        "/conversations",
        json={"persona_id": pal_id, "conversational_context": CONTEXT, **fields},
    )
    assert created.status_code == 200, created.text
    conversation_id: str = created.json()["conversation_id"]
    sim.join(conversation_id, "Ana")
    return conversation_id


# ---------------------------------------------------------------------- the registry


def test_a_tool_is_created_with_defaults_and_read_without_its_secret(
    api: httpx.Client, tools: ToolReceiver
) -> None:
    created = api.post("/tools", json=tool_spec("remember", tools.url("remember")))
    assert created.status_code == 200, created.text
    tool = created.json()
    assert tool["tool_id"].startswith("t")
    assert tool["trigger_type"] == "in_call"
    assert tool["origin"] == "llm"
    assert tool["delivery"]["api"]["auth"] == {"type": "hmac"}
    assert SECRET not in created.text

    fetched = api.get(f"/tools/{tool['tool_id']}")
    assert fetched.json() == tool
    assert SECRET not in api.get("/tools").text
    assert api.get("/tools", params={"name": "remember"}).json()["total_count"] == 1
    assert api.get("/tools", params={"name": "add_goal"}).json()["total_count"] == 0


def test_other_auth_types_and_unknown_fields_are_kept_without_their_secrets(
    api: httpx.Client, tools: ToolReceiver
) -> None:
    spec = tool_spec("remember", tools.url("remember"))
    spec["delivery"]["api"]["timeout_ms"] = 5000
    spec["delivery"]["api"]["auth"] = {"type": "api_key", "name": "X-Key", "value": "k-secret"}

    created = api.post("/tools", json=spec)

    assert created.status_code == 200, created.text
    delivery = created.json()["delivery"]["api"]
    assert delivery["timeout_ms"] == 5000
    assert delivery["auth"] == {"type": "api_key", "name": "X-Key"}
    assert "k-secret" not in created.text


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"name": "has space"}, "name"),
        ({"trigger_type": "later"}, "trigger_type"),
        ({"delivery": {"app_message": {}, "api": {"url": "https://x.test/t"}}}, "exactly one"),
        ({"delivery": {"api": {"url": "https://x.test/t", "auth": {"type": "hmac"}}}}, "secret"),
        ({"delivery": {"api": {"url": "not a url"}}}, "url"),
        ({"trigger_type": "post_call", "delivery": {"app_message": {}}}, "delivery.api"),
        ({"trigger_type": "post_call", "origin": "llm"}, "origin"),
        ({"parameters": {"type": "array"}}, "type object"),
    ],
)
def test_a_malformed_tool_is_a_400(
    api: httpx.Client, tools: ToolReceiver, change: dict[str, Any], why: str
) -> None:
    response = api.post("/tools", json={**tool_spec("t", tools.url("t")), **change})
    assert response.status_code == 400, response.text
    assert why in response.json()["message"]
    assert api.get("/tools").json()["total_count"] == 0


def test_a_tool_is_patched_with_json_patch_or_fields_and_deleted(
    api: httpx.Client, tools: ToolReceiver
) -> None:
    tool_id = register(api, tool_spec("remember", tools.url("remember")))

    patched = api.patch(
        f"/tools/{tool_id}",
        json=[
            {"op": "replace", "path": "/description", "value": "Pin a fact"},
            {"op": "replace", "path": "/delivery/api/auth/secret", "value": "rotated"},
        ],
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["description"] == "Pin a fact"
    assert "rotated" not in patched.text

    merged = api.patch(f"/tools/{tool_id}", json={"description": "Remember a fact"})
    assert merged.json()["description"] == "Remember a fact"

    broken = api.patch(f"/tools/{tool_id}", json=[{"op": "remove", "path": "/name"}])
    assert broken.status_code == 400
    bad_patch = api.patch(f"/tools/{tool_id}", json=[{"op": "replace", "path": "/nope"}])
    assert bad_patch.status_code == 400
    assert api.get(f"/tools/{tool_id}").json()["description"] == "Remember a fact"

    assert api.delete(f"/tools/{tool_id}").status_code == 204
    assert api.get(f"/tools/{tool_id}").status_code == 404
    assert api.get(f"/pals/{PAL}/tools").json()["data"] == []
    assert api.delete(f"/tools/{tool_id}").status_code == 404


def test_attaching_tools_to_a_pal_is_idempotent_and_bounded(
    api: httpx.Client, tools: ToolReceiver
) -> None:
    tool_id = register(api, tool_spec("remember", tools.url("remember")), pal_id=None)

    for _ in range(2):
        attached = api.post(f"/pals/{PAL}/tools", json={"tool_ids": [tool_id, tool_id]})
        assert attached.status_code == 200, attached.text
        assert [tool["tool_id"] for tool in attached.json()["data"]] == [tool_id]
    listed = api.get(f"/pals/{PAL}/tools").json()
    assert [tool["tool_id"] for tool in listed["data"]] == [tool_id]
    # The old name of the collection serves the same attachments.
    assert api.get(f"/personas/{PAL}/tools").json()["data"] == listed["data"]

    unknown = api.post(f"/pals/{PAL}/tools", json={"tool_ids": ["tnope"]})
    assert unknown.status_code == 400
    assert "tnope" in unknown.json()["message"]

    many = [register(api, tool_spec(f"t{n}", tools.url("x")), pal_id=None) for n in range(49)]
    assert api.post(f"/pals/{PAL}/tools", json={"tool_ids": many}).status_code == 200
    one_more = register(api, tool_spec("t50", tools.url("x")), pal_id=None)
    too_many = api.post(f"/pals/{PAL}/tools", json={"tool_ids": [one_more]})
    assert too_many.status_code == 400
    assert api.get(f"/pals/{PAL}/tools").json()["total_count"] == 50

    assert api.delete(f"/pals/{PAL}/tools/{tool_id}").status_code == 204
    assert api.delete(f"/pals/{PAL}/tools/{tool_id}").status_code == 404


# ---------------------------------------------------------------------- in-call


def _verify(raw_body: dict[str, Any], given: str | None) -> bool:
    expected = hmac.new(SECRET.encode(), dumps(raw_body), hashlib.sha256).hexdigest()
    return given == expected


def test_progress_said_in_the_room_calls_update_goal_progress_signed(
    api: httpx.Client, sim: SimServer, tools: ToolReceiver
) -> None:
    mentor_tools(api, tools)
    conversation_id = room(api, sim)

    reply = sim.say(conversation_id, "I'm at 60 % on meditating")

    [got] = tools.received()
    assert got.path == "/tools/update_goal_progress"
    assert got.signature_valid
    assert got.signature is not None
    assert got.signature == got.signature.lower()
    assert _verify(got.body, got.signature)
    assert set(got.body) == {"conversation_id", "tool_call_id", "arguments"}
    assert got.body["conversation_id"] == conversation_id
    assert got.body["arguments"] == {"goal_id": GOAL_MEDITATE, "progress_percentage": 60}
    # The mentor says what the tool answered.
    assert reply.startswith("update_goal_progress done with")

    [call] = sim.tool_calls(conversation_id)
    assert call["tool"] == "update_goal_progress"
    assert call["url"] == tools.url("update_goal_progress")
    assert call["body"] == got.body
    assert call["status"] == 200
    assert call["response"] == reply
    assert call["tool_call_id"] == got.body["tool_call_id"]


@pytest.mark.parametrize(
    ("said", "tool", "arguments"),
    [
        ("remember that my dog is called Rex", "remember", {"fact": "my dog is called Rex"}),
        ("add a goal: run 5 km by June", "add_goal", {"goal_text": "run 5 km by June"}),
        (
            "I've been running most days, call it 35 percent",
            "update_goal_progress",
            {"goal_id": GOAL_RUN, "progress_percentage": 35},
        ),
    ],
)
def test_each_request_calls_its_tool(
    api: httpx.Client,
    sim: SimServer,
    tools: ToolReceiver,
    said: str,
    tool: str,
    arguments: dict[str, Any],
) -> None:
    mentor_tools(api, tools)
    conversation_id = room(api, sim)

    sim.say(conversation_id, said)

    [got] = tools.received()
    assert got.path == f"/tools/{tool}"
    assert got.signature_valid
    assert got.body["arguments"] == arguments


def test_words_that_ask_for_nothing_or_name_no_known_goal_call_no_tool(
    api: httpx.Client, sim: SimServer, tools: ToolReceiver
) -> None:
    mentor_tools(api, tools)
    conversation_id = room(api, sim)

    sim.say(conversation_id, "Work has been busy")
    sim.say(conversation_id, "I'm at 50 % on cooking")

    assert tools.received() == []
    assert sim.tool_calls() == []


def test_only_tools_attached_to_the_conversations_pal_are_called(
    api: httpx.Client, sim: SimServer, tools: ToolReceiver
) -> None:
    # Registered but attached to another PAL, and one attached nowhere.
    mentor_tools(api, tools, pal_id="pcb7a34da5fe")
    register(api, tool_spec("remember", tools.url("remember")), pal_id=None)
    conversation_id = room(api, sim)

    sim.say(conversation_id, "remember that my dog is called Rex")

    assert tools.received() == []
    other = room(api, sim, pal_id="pcb7a34da5fe")
    sim.say(other, "remember that my dog is called Rex")
    assert [got.path for got in tools.received()] == ["/tools/remember"]


def test_an_app_message_tool_is_not_called_by_the_simulator(
    api: httpx.Client, sim: SimServer, tools: ToolReceiver
) -> None:
    register(api, {"name": "remember", "delivery": {"app_message": {}}})
    conversation_id = room(api, sim)

    sim.say(conversation_id, "remember that my dog is called Rex")

    assert sim.tool_calls() == []


def test_the_body_template_places_ids_and_arguments_and_the_url_is_templated(
    api: httpx.Client, sim: SimServer, tools: ToolReceiver
) -> None:
    spec = tool_spec("remember", tools.url("remember") + "?c={conversation_id}")
    spec["delivery"]["api"]["body"] = {
        "meta": {"conversation": "{conversation_id}", "call": "call {tool_call_id}"},
        "fact": "{fact}",
        "fixed": 7,
    }
    spec["delivery"]["api"]["query"] = {"call": "{tool_call_id}"}
    spec["parameters"] = {"type": "object", "properties": {"fact": {"type": "string"}}}
    register(api, spec)
    conversation_id = room(api, sim)

    sim.say(conversation_id, "remember that my dog is called Rex")

    [got] = tools.received()
    [call] = sim.tool_calls()
    assert got.signature_valid
    assert got.body == {
        "meta": {"conversation": conversation_id, "call": f"call {call['tool_call_id']}"},
        "fact": "my dog is called Rex",
        "fixed": 7,
    }
    assert call["url"].endswith(f"?c={conversation_id}&call={call['tool_call_id']}")


def test_a_failing_tool_is_recorded_and_the_mentor_says_so(
    api: httpx.Client, sim: SimServer, tools: ToolReceiver
) -> None:
    mentor_tools(api, tools)
    conversation_id = room(api, sim)
    tools.fail_with = 503

    reply = sim.say(conversation_id, "remember that my dog is called Rex")

    assert "did not work" in reply
    [call] = sim.tool_calls()
    assert call["status"] == 503
    assert call["response"] == {"detail": "broken"}


def test_an_unreachable_tool_is_recorded_with_the_error(
    api: httpx.Client, sim: SimServer, tools: ToolReceiver
) -> None:
    register(api, tool_spec("remember", "http://127.0.0.1:9/tools/remember"))
    conversation_id = room(api, sim)

    reply = sim.say(conversation_id, "remember that my dog is called Rex")

    assert "couldn't reach" in reply
    [call] = sim.tool_calls()
    assert call["status"] is None
    assert call["error"] == "ConnectError"


# ---------------------------------------------------------------------- faults


def test_wrong_signature_fault_signs_with_another_secret(
    api: httpx.Client, sim: SimServer, tools: ToolReceiver
) -> None:
    mentor_tools(api, tools)
    conversation_id = room(api, sim)
    sim.add_fault("wrong_signature")

    sim.say(conversation_id, "remember that my dog is called Rex")
    sim.say(conversation_id, "remember that my cat is called Tom")

    first, second = tools.received()
    assert not first.signature_valid
    assert second.signature_valid
    calls = sim.tool_calls()
    assert [call["fault"] for call in calls] == ["wrong_signature", None]
    assert [call["status"] for call in calls] == [404, 200]


def test_repeat_tool_call_fault_sends_the_same_call_twice(
    api: httpx.Client, sim: SimServer, tools: ToolReceiver
) -> None:
    mentor_tools(api, tools)
    conversation_id = room(api, sim)
    sim.add_fault("repeat_tool_call", endpoint="tool_call")

    sim.say(conversation_id, "I'm at 60 % on meditating")

    first, second = tools.received()
    assert first.body == second.body
    assert first.signature == second.signature
    assert first.signature_valid
    assert len({call["tool_call_id"] for call in sim.tool_calls()}) == 1


def test_a_tool_call_fault_never_consumes_an_api_request(api: httpx.Client, sim: SimServer) -> None:
    sim.add_fault("wrong_signature")
    assert api.get("/tools").status_code == 200
    assert [rule["kind"] for rule in sim.faults()] == ["wrong_signature"]
    invalid = httpx.post(
        f"{sim.base_url}/_sim/faults", json={"kind": "status", "endpoint": "tool_call"}
    )
    assert invalid.status_code == 422


def test_tool_calls_are_forgotten_on_reset(
    api: httpx.Client, sim: SimServer, tools: ToolReceiver
) -> None:
    mentor_tools(api, tools)
    sim.say(room(api, sim), "remember that my dog is called Rex")
    assert sim.tool_calls()

    sim.reset()

    assert sim.tool_calls() == []
    assert api.get("/tools").json()["total_count"] == 0
    assert json.loads(httpx.get(f"{sim.base_url}/_sim/tool-calls").text) == {"tool_calls": []}
