"""The simulated tool registry: tools, how each is delivered, and which PAL has which.

A tool (``POST /v2/tools``) is::

    {
      "name": "update_goal_progress",            # 1-64 of [A-Za-z0-9_-]
      "description": "…",
      "parameters": {"type": "object", "properties": {…}, "required": […]},
      "trigger_type": "in_call" | "post_call",   # default in_call
      "origin": "llm" | "vision" | "audio",      # in_call only; default llm
      "on_call": {…}, "on_resolve": {…},         # kept as given
      "delivery": {"app_message": {}}            # default, or:
      "delivery": {"api": {
          "url": "https://app.example/v1/tavus/tools/update_goal_progress",
          "method": "POST",                       # default POST
          "headers": {"…": "…"},                  # optional, templated
          "body": {"conversation_id": "{conversation_id}",
                   "tool_call_id": "{tool_call_id}",
                   "arguments": "{arguments}"},   # optional; this is the default
          "query": {"…": "…"},                    # optional, templated
          "auth": {"type": "hmac", "secret": "…"} # or none | bearer {token}
      }}
    }

Exactly one delivery channel per tool; a ``post_call`` tool needs ``delivery.api`` and has no
``origin``. Tavus's other auth types (``api_key``, ``basic``, ``oauth2_client_credentials``)
and fields the simulator does not know in ``delivery.api`` and ``auth`` are accepted and kept;
the simulator sends credentials for ``hmac`` and ``bearer`` only. Secrets are write-only:
reads show ``auth`` without ``secret``, ``token``, ``password``, ``client_secret``, ``key`` or
``value``.

Templating (tool_calls.py): ``{conversation_id}``, ``{tool_call_id}`` and ``{tool_name}`` are
replaced in the URL, the headers and every string of the body; a body string that is exactly
``"{arguments}"`` becomes the arguments object, and one that is exactly ``"{<argument>}"``
that argument's value. A body template that places the arguments nowhere gets them added as
``"arguments"``, so a template of only the two ids yields the same body as the default.

Choices where Tavus documents nothing: ids are ``t`` + 12 hex; names need not be unique (a
setup must find its tools by name itself); ``PATCH`` takes a JSON Patch (array) or a partial
object and re-validates the whole tool; deleting a tool detaches it from every PAL; a PAL holds
at most 50 tools.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from tavus_sim.state import isoformat, utcnow

#: Tavus: at most 50 tools per PAL.
MAX_TOOLS_PER_PAL = 50

TriggerType = Literal["in_call", "post_call"]
ToolName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
_SECRET_KEYS = ("secret", "token", "password", "client_secret", "key", "value")


def new_tool_id() -> str:
    """A fresh tool id: ``t`` followed by 12 hex characters."""
    return "t" + secrets.token_hex(6)


class ApiAuth(BaseModel):
    """``delivery.api.auth``: how the simulator authenticates to the tool's endpoint."""

    model_config = ConfigDict(extra="allow", strict=True)
    type: Literal["none", "bearer", "hmac", "api_key", "basic", "oauth2_client_credentials"] = (
        "none"
    )
    secret: Annotated[str, StringConstraints(min_length=1)] | None = None
    token: Annotated[str, StringConstraints(min_length=1)] | None = None

    @model_validator(mode="after")
    def _credentials(self) -> ApiAuth:
        if self.type == "hmac" and self.secret is None:
            raise ValueError("auth type hmac needs a secret")
        if self.type == "bearer" and self.token is None:
            raise ValueError("auth type bearer needs a token")
        return self


class ApiDelivery(BaseModel):
    """``delivery.api``: the simulator calls this endpoint server-to-server."""

    model_config = ConfigDict(extra="allow", strict=True)
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^/\s]+")]
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | None = None
    auth: ApiAuth = Field(default_factory=ApiAuth)


class Delivery(BaseModel):
    """``delivery``: exactly one channel."""

    model_config = ConfigDict(extra="forbid", strict=True)
    app_message: dict[str, Any] | None = None
    api: ApiDelivery | None = None

    @model_validator(mode="after")
    def _one_channel(self) -> Delivery:
        if (self.app_message is None) == (self.api is None):
            raise ValueError("delivery needs exactly one of app_message or api")
        return self


class ToolBody(BaseModel):
    """A whole tool as created (and as re-validated after a ``PATCH``)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: ToolName
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    trigger_type: TriggerType = "in_call"
    origin: Literal["llm", "vision", "audio"] | None = None
    on_call: dict[str, Any] | None = None
    on_resolve: dict[str, Any] | None = None
    delivery: Delivery = Field(default_factory=lambda: Delivery(app_message={}))

    @model_validator(mode="after")
    def _consistent(self) -> ToolBody:
        if self.parameters.get("type", "object") != "object":
            raise ValueError("parameters must be a JSON schema of type object")
        properties = self.parameters.get("properties", {})
        if not isinstance(properties, dict):
            raise ValueError("parameters.properties must be an object")
        if self.trigger_type == "post_call":
            if self.delivery.api is None:
                raise ValueError("a post_call tool needs delivery.api")
            if self.origin is not None:
                raise ValueError("a post_call tool has no origin")
        elif self.origin is None:
            self.origin = "llm"
        return self


@dataclass(slots=True)
class Tool:
    """A registered tool."""

    tool_id: str
    spec: ToolBody
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    @property
    def name(self) -> str:
        """The tool's name (what the model calls)."""
        return self.spec.name

    @property
    def declared_arguments(self) -> set[str]:
        """The argument names its parameters schema declares."""
        properties = self.spec.parameters.get("properties", {})
        return set(properties) if isinstance(properties, dict) else set()

    def editable_json(self) -> dict[str, Any]:
        """The tool's fields as given, secrets included (what a ``PATCH`` applies to)."""
        return self.spec.model_dump(mode="json", exclude_none=True)

    def to_json(self) -> dict[str, Any]:
        """The tool as the API shows it: secrets left out."""
        out = self.editable_json()
        api = out.get("delivery", {}).get("api")
        if api is not None:
            api["auth"] = {k: v for k, v in api["auth"].items() if k not in _SECRET_KEYS}
        return {
            "tool_id": self.tool_id,
            **out,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }


class TooManyTools(Exception):
    """Attaching would give a PAL more than ``MAX_TOOLS_PER_PAL`` tools."""


class ToolRegistry:
    """Every tool of the simulated account and the PALs they are attached to."""

    def __init__(self) -> None:
        self.tools: dict[str, Tool] = {}
        #: pal_id → attached tool ids, in attachment order.
        self.attached: dict[str, list[str]] = {}

    def reset(self) -> None:
        """Forget every tool and attachment."""
        self.tools.clear()
        self.attached.clear()

    def add(self, spec: ToolBody) -> Tool:
        """Register a new tool."""
        tool_id = new_tool_id()
        while tool_id in self.tools:
            tool_id = new_tool_id()
        tool = Tool(tool_id=tool_id, spec=spec)
        self.tools[tool_id] = tool
        return tool

    def replace(self, tool: Tool, spec: ToolBody) -> None:
        """Give a tool new fields (after a ``PATCH``)."""
        tool.spec = spec
        tool.updated_at = utcnow()

    def delete(self, tool_id: str) -> bool:
        """Delete a tool and detach it everywhere; ``False`` when unknown."""
        if self.tools.pop(tool_id, None) is None:
            return False
        for tool_ids in self.attached.values():
            if tool_id in tool_ids:
                tool_ids.remove(tool_id)
        return True

    def attach(self, pal_id: str, tool_ids: list[str]) -> list[Tool]:
        """Attach tools to a PAL (idempotent); return the PAL's tools."""
        current = self.attached.setdefault(pal_id, [])
        new = [tool_id for tool_id in dict.fromkeys(tool_ids) if tool_id not in current]
        if len(current) + len(new) > MAX_TOOLS_PER_PAL:
            raise TooManyTools
        current.extend(new)
        return self.of_pal(pal_id)

    def detach(self, pal_id: str, tool_id: str) -> bool:
        """Detach one tool from a PAL; ``False`` when it was not attached."""
        current = self.attached.get(pal_id, [])
        if tool_id not in current:
            return False
        current.remove(tool_id)
        return True

    def of_pal(self, pal_id: str | None) -> list[Tool]:
        """The tools attached to a PAL, in attachment order."""
        if pal_id is None:
            return []
        return [self.tools[tool_id] for tool_id in self.attached.get(pal_id, [])]

    def callable_by(self, pal_id: str | None, name: str, trigger: TriggerType) -> list[Tool]:
        """The PAL's tools named ``name`` with this trigger that the simulator can deliver
        (``delivery.api``; app messages go to the browser, which the simulator has none of)."""
        return [
            tool
            for tool in self.of_pal(pal_id)
            if tool.name == name
            and tool.spec.trigger_type == trigger
            and tool.spec.delivery.api is not None
        ]


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fill(template: str, values: dict[str, str]) -> str:
    """Replace the ``{name}`` placeholders of ``values`` in a string; others are kept."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
