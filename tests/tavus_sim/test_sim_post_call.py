"""Post-call actions: once per conversation after shutdown, arguments built deterministically
from the transcript, signed, reported by ``application.post_call_action_executed``."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tavus_sim import SimServer
from tests.tavus_sim.conftest import Receiver
from tests.tavus_sim.tool_support import (
    CONTEXT,
    GOAL_MEDITATE,
    PAL,
    ToolReceiver,
    register,
    tool_spec,
)

REPORT_PARAMETERS = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "next_steps": {"type": "array", "items": {"type": "string"}},
        "goal_updates": {"type": "array"},
        "mood": {"type": "string"},
    },
}


def report_tool(api: httpx.Client, tools: ToolReceiver, **overrides: Any) -> str:
    """The session_report post-call action, attached to the sample PAL."""
    spec = tool_spec(
        "session_report",
        tools.url("session_report", kind="post-call"),
        trigger_type="post_call",
        parameters=REPORT_PARAMETERS,
    )
    spec.update(overrides)
    return register(api, spec)


def talk(api: httpx.Client, sim: SimServer, receiver: Receiver, *lines: str, **fields: Any) -> str:
    """A conversation with callbacks to ``receiver``: join, say ``lines``, end, drain."""
    created = api.post(
        "/conversations",
        json={
            "persona_id": PAL,
            "conversational_context": CONTEXT,
            "callback_url": receiver.url(),
            **fields,
        },
    )
    assert created.status_code == 200, created.text
    conversation_id: str = created.json()["conversation_id"]
    sim.join(conversation_id, "Ana")
    for line in lines:
        sim.say(conversation_id, line)
    assert api.post(f"/conversations/{conversation_id}/end").status_code == 200
    assert sim.drain()
    return conversation_id


LINES = (
    "I feel tired but proud this week",
    "I'm at 60 % on meditating",
    "Tomorrow I will stretch for ten minutes",
    "I'm at 70 % on meditating",
)


def test_the_report_is_sent_once_after_the_call_with_arguments_from_the_transcript(
    api: httpx.Client, sim: SimServer, receiver: Receiver, tools: ToolReceiver
) -> None:
    tool_id = report_tool(api, tools)

    conversation_id = talk(api, sim, receiver, *LINES)
    # Ending again changes nothing: one action per conversation.
    assert api.post(f"/conversations/{conversation_id}/end").status_code == 200
    assert sim.drain()

    [got] = tools.received()
    assert got.path == "/post-call/session_report"
    assert got.signature_valid
    assert got.body["conversation_id"] == conversation_id
    assert got.body["tool_call_id"]
    assert got.body["arguments"] == {
        "summary": (
            "Ana Souza talked about «I feel tired but proud this week», «I'm at 60 % on "
            "meditating» and «Tomorrow I will stretch for ten minutes» (4 turns)."
        ),
        "next_steps": ["stretch for ten minutes"],
        "goal_updates": [{"goal_id": GOAL_MEDITATE, "progress_percentage": 70}],
        "mood": "mixed",
    }
    [event] = [
        payload
        for payload in receiver.payloads(conversation_id)
        if payload["event_type"] == "application.post_call_action_executed"
    ]
    assert event["properties"] == {
        "tool_id": tool_id,
        "tool_name": "session_report",
        "status": "success",
        "request_body": got.body,
        "response": {"status_code": 200, "body": f"session_report done with {_args(got.body)}"},
    }
    # The action comes after the conversation's own post-call callbacks.
    assert receiver.event_types(conversation_id)[-1] == "application.post_call_action_executed"


def _args(body: dict[str, Any]) -> str:
    return json.dumps(body["arguments"], sort_keys=True)


def test_the_same_transcript_gives_the_same_report(
    api: httpx.Client, sim: SimServer, receiver: Receiver, tools: ToolReceiver
) -> None:
    report_tool(api, tools)

    talk(api, sim, receiver, *LINES)
    talk(api, sim, receiver, *LINES)

    first, second = tools.received()
    assert first.body["arguments"] == second.body["arguments"]
    assert first.body["conversation_id"] != second.body["conversation_id"]


def test_no_report_for_a_conversation_without_dialogue(
    api: httpx.Client, sim: SimServer, receiver: Receiver, tools: ToolReceiver
) -> None:
    report_tool(api, tools)

    conversation_id = talk(api, sim, receiver)

    assert tools.received() == []
    assert "application.post_call_action_executed" not in receiver.event_types(conversation_id)


def test_a_report_tool_of_another_pal_is_not_sent(
    api: httpx.Client, sim: SimServer, receiver: Receiver, tools: ToolReceiver
) -> None:
    spec = tool_spec(
        "session_report",
        tools.url("session_report", kind="post-call"),
        trigger_type="post_call",
    )
    register(api, spec, pal_id="pcb7a34da5fe")

    talk(api, sim, receiver, "Hello")

    assert tools.received() == []


def test_only_declared_report_arguments_are_filled(
    api: httpx.Client, sim: SimServer, receiver: Receiver, tools: ToolReceiver
) -> None:
    report_tool(
        api,
        tools,
        parameters={"type": "object", "properties": {"summary": {"type": "string"}}},
    )

    talk(api, sim, receiver, "Hello there")

    [got] = tools.received()
    assert got.body["arguments"] == {"summary": "Ana Souza talked about «Hello there» (1 turn)."}


def test_a_failed_report_is_reported_as_failed(
    api: httpx.Client, sim: SimServer, receiver: Receiver, tools: ToolReceiver
) -> None:
    report_tool(api, tools)
    tools.fail_with = 500

    conversation_id = talk(api, sim, receiver, "Hello")

    [event] = [
        payload["properties"]
        for payload in receiver.payloads(conversation_id)
        if payload["event_type"] == "application.post_call_action_executed"
    ]
    assert event["status"] == "failed"
    assert event["response"] == {"status_code": 500, "body": {"detail": "broken"}}
    [call] = sim.tool_calls(conversation_id)
    assert call["trigger_type"] == "post_call"


def test_a_wrong_signature_fault_applies_to_the_report_too(
    api: httpx.Client, sim: SimServer, receiver: Receiver, tools: ToolReceiver
) -> None:
    report_tool(api, tools)
    sim.add_fault("wrong_signature")

    talk(api, sim, receiver, "Hello")

    [got] = tools.received()
    assert not got.signature_valid
