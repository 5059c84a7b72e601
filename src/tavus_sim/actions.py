"""The mentor acting through its PAL's tools: in-call tool calls and post-call actions.

- **In call**: each thing the participant says is read for tool requests (intents.py); for
  each, every ``in_call`` tool of that name attached to the conversation's PAL with
  ``delivery.api`` is called (tool_calls.py), one after the other, before the mentor answers,
  and the mentor says what the tool answered (its text, or the ``result``/``output``/
  ``message``/``text`` of its JSON) — Tavus's ``on_resolve`` can speak a result, and saying it
  lets a test see the outcome in the reply. A request no attached tool serves is not called;
  the mentor answers as usual. A ``remember`` call answered 2xx hands the turn to the app:
  memory does not also learn it (memory.py).
- **Post call**: once per conversation, after shutdown and only when the participant said
  something, every ``post_call`` tool of the PAL is called with arguments filled from the
  transcript (digest.report: ``summary``, ``next_steps``, ``goal_updates``, ``mood`` — those
  its parameters declare, all four when it declares none of them); then the conversation's
  callback gets ``application.post_call_action_executed`` ``{tool_id, tool_name, status:
  "success"|"failed", request_body, response: {status_code, body}}``.
"""

from __future__ import annotations

from typing import Any, Protocol

import structlog

from tavus_sim import digest, intents
from tavus_sim.callbacks import CallbackSender, envelope
from tavus_sim.state import Conversation
from tavus_sim.tool_calls import ToolCall, ToolCaller, spoken
from tavus_sim.tools import Tool, ToolRegistry

log = structlog.stdlib.get_logger(__name__)

POST_CALL_EVENT = "application.post_call_action_executed"
_REPORT_ARGUMENTS = ("summary", "next_steps", "goal_updates", "mood")


class ActionParts(Protocol):
    """What the actions use of the runtime."""

    tools: ToolRegistry
    caller: ToolCaller
    sender: CallbackSender


def _failure_text(call: ToolCall) -> str:
    if call.status is None:
        return f"I couldn't reach the {call.tool_name} tool just now."
    return f"The {call.tool_name} tool did not work (status {call.status})."


async def in_call(
    runtime: ActionParts, conversation: Conversation, text: str, turn_index: int
) -> list[str]:
    """Call the PAL's tools the utterance asks for; return what the mentor says of each."""
    said: list[str] = []
    for intent in intents.intents(text, conversation.conversational_context):
        tools = runtime.tools.callable_by(conversation.persona_id, intent.tool_name, "in_call")
        for tool in tools:
            call = await runtime.caller.call(conversation, tool, _declared(tool, intent.arguments))
            if call.succeeded and intent.tool_name == "remember":
                conversation.pinned_turns.add(turn_index)
            if call.succeeded:
                said.append(spoken(call.response) or f"Done ({tool.name}).")
            else:
                said.append(_failure_text(call))
    return said


def _declared(tool: Tool, arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments, without those a tool with declared parameters does not take."""
    declared = tool.declared_arguments
    if not declared:
        return dict(arguments)
    return {key: value for key, value in arguments.items() if key in declared}


def _report_arguments(tool: Tool, conversation: Conversation) -> dict[str, Any]:
    report = digest.report(conversation.conversational_context, conversation.user_turns())
    wanted = [name for name in _REPORT_ARGUMENTS if name in tool.declared_arguments]
    return {name: report[name] for name in wanted or _REPORT_ARGUMENTS}


def post_call(runtime: ActionParts, conversation: Conversation) -> None:
    """After shutdown: queue the PAL's post-call actions (not without dialogue)."""
    if conversation.test_mode or not conversation.user_turns():
        return
    for tool in runtime.tools.of_pal(conversation.persona_id):
        if tool.spec.trigger_type == "post_call" and tool.spec.delivery.api is not None:
            runtime.caller.in_background(
                _post_call_action(runtime, conversation, tool),
                f"tavus_sim.post_call:{tool.name}:{conversation.conversation_id}",
            )


async def _post_call_action(runtime: ActionParts, conversation: Conversation, tool: Tool) -> None:
    call = await runtime.caller.call(conversation, tool, _report_arguments(tool, conversation))
    event = envelope(
        conversation,
        POST_CALL_EVENT,
        {
            "tool_id": tool.tool_id,
            "tool_name": tool.name,
            "status": "success" if call.succeeded else "failed",
            "request_body": call.body,
            "response": {"status_code": call.status, "body": call.response},
        },
    )
    conversation.events.append(event)
    log.info(
        "tavus_sim.post_call.executed",
        conversation_id=conversation.conversation_id,
        tool=tool.name,
        status=call.status,
    )
    runtime.sender.send(conversation, [event], post_shutdown=False)
