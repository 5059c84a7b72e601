"""The mentor's tools as registered at Tavus, and their provisioning (`facetoface tavus setup`).

Four tools, each delivered server-to-server (`delivery.api`) to this service and signed with
`TAVUS_TOOL_SECRET` (`hmac`: Tavus sends `X-Tavus-Signature`):

- in the call: `update_goal_progress(goal_id, progress_percentage, note?)`,
  `add_goal(goal_text, goal_type?, target_date?)`, `remember(fact)` →
  `{PUBLIC_BASE_URL}/v1/tavus/tools/{name}`;
- after the call (a post-call action): `session_report(summary, next_steps[], goal_updates[],
  mood?)` → `{PUBLIC_BASE_URL}/v1/tavus/post-call/session_report`.

The body Tavus sends is templated here: `{"conversation_id", "tool_call_id", "arguments"}`.

Provisioning is idempotent: a tool is found by name; one whose definition (URL, trigger,
parameters) differs from ours is replaced; missing ones are created; each PAL gets the tools
it lacks attached. Running it twice changes nothing the second time. Tavus never shows a
tool's secret back, so a changed `TAVUS_TOOL_SECRET` is applied with `replace=True`
(`facetoface tavus setup --replace`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from facetoface.models.user_goal import GOAL_TYPES
from facetoface.tavus.client import TavusClient
from facetoface.tavus.registry import Tool

#: Where Tavus delivers in-call tool calls (`/{tool_name}` follows) and post-call actions.
TOOLS_PATH: Final = "/v1/tavus/tools"
POST_CALL_PATH: Final = "/v1/tavus/post-call"

IN_CALL: Final = "in_call"
POST_CALL: Final = "post_call"

UPDATE_GOAL_PROGRESS: Final = "update_goal_progress"
ADD_GOAL: Final = "add_goal"
REMEMBER: Final = "remember"
SESSION_REPORT: Final = "session_report"

#: Bounds the service enforces on the arguments (the schemas below tell the model the same).
NOTE_MAX_CHARS: Final = 500
GOAL_TEXT_MAX_CHARS: Final = 300
FACT_MAX_CHARS: Final = 500
SUMMARY_MAX_CHARS: Final = 4000
NEXT_STEP_MAX_CHARS: Final = 500
MAX_NEXT_STEPS: Final = 10
MAX_GOAL_UPDATES: Final = 10
MOOD_MAX_CHARS: Final = 100

_GOAL_ID: Final = {"type": "string", "description": "The goal's goal_id, as the context lists it."}
_PROGRESS: Final = {"type": "integer", "minimum": 0, "maximum": 100}


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool as we register it."""

    name: str
    description: str
    parameters: dict[str, Any]
    trigger_type: str = IN_CALL

    @property
    def path(self) -> str:
        """The path of this service Tavus delivers the tool's calls to."""
        prefix = POST_CALL_PATH if self.trigger_type == POST_CALL else TOOLS_PATH
        return f"{prefix}/{self.name}"

    def definition(self, public_base_url: str, secret: str) -> dict[str, Any]:
        """The body of `POST /v2/tools` (carries the secret: never log it)."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "trigger_type": self.trigger_type,
            "delivery": {
                "api": {
                    "url": public_base_url + self.path,
                    "method": "POST",
                    "body": {
                        "conversation_id": "{conversation_id}",
                        "tool_call_id": "{tool_call_id}",
                        "arguments": "{arguments}",
                    },
                    "auth": {"type": "hmac", "secret": secret},
                }
            },
        }

    def matches(self, tool: Tool, public_base_url: str) -> bool:
        """Whether `tool` at Tavus is this one as we would register it now (the secret
        cannot be compared: Tavus does not show it)."""
        return (
            tool.url == public_base_url + self.path
            and (tool.trigger_type or IN_CALL) == self.trigger_type
            and (tool.parameters is None or tool.parameters == self.parameters)
        )


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


TOOLS: Final = (
    ToolSpec(
        UPDATE_GOAL_PROGRESS,
        "Record the user's progress on one of their active goals when they tell you how far "
        "along they are (a percentage from 0 to 100).",
        _object(
            {
                "goal_id": _GOAL_ID,
                "progress_percentage": _PROGRESS,
                "note": {"type": "string", "maxLength": NOTE_MAX_CHARS},
            },
            ["goal_id", "progress_percentage"],
        ),
    ),
    ToolSpec(
        ADD_GOAL,
        "Add a new goal when the user asks you to.",
        _object(
            {
                "goal_text": {"type": "string", "maxLength": GOAL_TEXT_MAX_CHARS},
                "goal_type": {"type": "string", "enum": list(GOAL_TYPES)},
                "target_date": {"type": "string", "format": "date"},
            },
            ["goal_text"],
        ),
    ),
    ToolSpec(
        REMEMBER,
        "Remember a fact about the user for later sessions when they ask you to.",
        _object({"fact": {"type": "string", "maxLength": FACT_MAX_CHARS}}, ["fact"]),
    ),
    ToolSpec(
        SESSION_REPORT,
        "After the session: a short summary, the next steps agreed, progress on the user's "
        "goals they reported (by goal_id), and their mood.",
        _object(
            {
                "summary": {"type": "string", "maxLength": SUMMARY_MAX_CHARS},
                "next_steps": {
                    "type": "array",
                    "maxItems": MAX_NEXT_STEPS,
                    "items": {"type": "string", "maxLength": NEXT_STEP_MAX_CHARS},
                },
                "goal_updates": {
                    "type": "array",
                    "maxItems": MAX_GOAL_UPDATES,
                    "items": _object(
                        {"goal_id": _GOAL_ID, "progress_percentage": _PROGRESS},
                        ["goal_id", "progress_percentage"],
                    ),
                },
                "mood": {"type": "string", "maxLength": MOOD_MAX_CHARS},
            },
            ["summary", "next_steps", "goal_updates"],
        ),
        trigger_type=POST_CALL,
    ),
)
TOOLS_BY_NAME: Final = {spec.name: spec for spec in TOOLS}
IN_CALL_TOOLS: Final = frozenset(s.name for s in TOOLS if s.trigger_type == IN_CALL)


@dataclass(slots=True)
class ToolsState:
    """What Tavus holds of our tools: which are registered (and current), which PALs lack
    which. `apply` makes it right; an empty plan means nothing to do."""

    registered: dict[str, str] = field(default_factory=dict)  # name → tool_id, current ones
    stale: dict[str, str] = field(default_factory=dict)  # name → tool_id, to replace
    missing: list[str] = field(default_factory=list)
    unattached: dict[str, list[str]] = field(default_factory=dict)  # pal_id → names

    @property
    def complete(self) -> bool:
        """Every tool registered as ours and attached to every PAL."""
        return not (self.stale or self.missing or any(self.unattached.values()))


@dataclass(slots=True)
class SetupResult:
    """What `provision` did (empty lists: nothing was needed)."""

    created: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    attached: dict[str, list[str]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.replaced or any(self.attached.values()))


async def inspect(
    tavus: TavusClient, public_base_url: str, pal_ids: list[str], *, replace: bool = False
) -> ToolsState:
    """Read Tavus's registry and each PAL's tools; nothing is changed."""
    state = ToolsState()
    found: dict[str, Tool] = {}
    for tool in (await tavus.list_tools()).data:
        if tool.name in TOOLS_BY_NAME and tool.name not in found:
            found[tool.name] = tool
    for spec in TOOLS:
        current = found.get(spec.name)
        if current is None:
            state.missing.append(spec.name)
        elif replace or not spec.matches(current, public_base_url):
            state.stale[spec.name] = current.tool_id
        else:
            state.registered[spec.name] = current.tool_id
    for pal_id in pal_ids:
        attached = {tool.tool_id for tool in (await tavus.list_pal_tools(pal_id)).data}
        state.unattached[pal_id] = [
            name
            for name in TOOLS_BY_NAME
            if name not in state.registered or state.registered[name] not in attached
        ]
    return state


async def provision(
    tavus: TavusClient,
    public_base_url: str,
    secret: str,
    pal_ids: list[str],
    *,
    replace: bool = False,
) -> SetupResult:
    """Register the tools and attach them to each PAL, changing only what differs."""
    state = await inspect(tavus, public_base_url, pal_ids, replace=replace)
    result = SetupResult()
    ids = dict(state.registered)
    for name, tool_id in state.stale.items():
        await tavus.delete_tool(tool_id)
        tool = await tavus.create_tool(TOOLS_BY_NAME[name].definition(public_base_url, secret))
        ids[name] = tool.tool_id
        result.replaced.append(name)
    for name in state.missing:
        tool = await tavus.create_tool(TOOLS_BY_NAME[name].definition(public_base_url, secret))
        ids[name] = tool.tool_id
        result.created.append(name)
    for pal_id, names in state.unattached.items():
        if names:
            await tavus.attach_pal_tools(pal_id, [ids[name] for name in names])
            result.attached[pal_id] = names
    return result
