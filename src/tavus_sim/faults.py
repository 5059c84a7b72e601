"""Test-controllable fault injection: API fault rules and callback delivery controls.

API faults are a FIFO queue of :class:`FaultRule`. Each ``/v2`` request (after the
``x-api-key`` check, so a bad key is always a plain 401) consumes one use of the first rule
whose ``endpoint`` matches it or is ``any`` — and, for a rule with a ``conversation_id``, that
names this conversation in its path (get, end, delete), so one conversation can misbehave
while the others answer normally. What happens then:

- ``apply_first: false`` (default): the fault replaces the request; nothing is changed.
- ``apply_first: true``: the request is carried out first (a create really creates the
  conversation, an end really ends it) and then the fault decides what the client sees. This
  models "outcome unknown": Tavus did the work but the client never got the answer.

Kinds:

- ``status``: answer ``status`` with ``body`` (default ``{"message": "Internal Server Error"}``).
- ``timeout``: wait ``delay_s`` before answering. With ``apply_first`` the real answer follows
  the wait (a slow success); without it the answer is ``504 {"message": "Gateway Timeout"}``
  and nothing was done. Pick ``delay_s`` longer than the client's timeout.
- ``concurrency_limit`` / ``out_of_credits``: Tavus's 400 / 402 bodies.
- ``drop_connection``: close the TCP connection without any answer. See
  :func:`drop_connection` for how.
- ``malformed``: a ``200`` whose body is not what the endpoint answers: ``body`` as given (a
  string is sent as-is, as JSON), by default a truncated JSON document. Models a proxy or an
  API bug answering "success" with something unusable; nothing is changed unless
  ``apply_first``.

Tool-call faults (``endpoint: tool_call``; the endpoint is implied by the kind) apply to the
simulator's own requests to tools' endpoints (tool_calls.py), one per call, never to ``/v2``:

- ``wrong_signature``: ``X-Tavus-Signature`` computed with a wrong secret.
- ``repeat_tool_call``: the same request, same ``tool_call_id``, sent twice.

Callback delivery controls are plain :class:`~tavus_sim.config.SimConfig` fields
(``callback_*``) so that ``PUT /_sim/config`` changes them; :func:`plan_deliveries` applies them.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.types import Scope

from tavus_sim.config import SimConfig

FaultEndpoint = Literal[
    "create",
    "get",
    "list",
    "end",
    "delete",
    "personas",
    "replicas",
    "memory_stores",
    "tools",
    "tool_call",
    "any",
]
FaultKind = Literal[
    "status",
    "timeout",
    "concurrency_limit",
    "out_of_credits",
    "drop_connection",
    "malformed",
    "wrong_signature",
    "repeat_tool_call",
]
#: Faults of the simulator's own calls to tool endpoints (tool_calls.py), not of ``/v2``.
TOOL_CALL_KINDS = frozenset({"wrong_signature", "repeat_tool_call"})

CONCURRENCY_LIMIT_BODY = {"message": "User has reached maximum concurrent conversations"}
OUT_OF_CREDITS_BODY = {"message": "The user is out of conversational credits"}
GATEWAY_TIMEOUT_BODY = {"message": "Gateway Timeout"}
DEFAULT_STATUS_BODY = {"message": "Internal Server Error"}
#: What ``kind: malformed`` answers by default: JSON cut off mid-document.
DEFAULT_MALFORMED_BODY = '{"conversation_id": "c0000000000", "status": "act'

RAW_SEND_SCOPE_KEY = "tavus_sim.raw_send"
"""Scope key under which the app keeps the server's own ``send`` callable (see app.py)."""


class FaultRule(BaseModel):
    """One fault to inject; the JSON body of ``POST /_sim/faults``."""

    model_config = ConfigDict(extra="forbid")

    endpoint: FaultEndpoint = "any"
    kind: FaultKind
    count: int = Field(default=1, ge=1)
    """How many matching requests it applies to."""
    status: int = Field(default=500, ge=400, le=599)
    """Status for ``kind: status``."""
    body: dict[str, Any] | str | None = None
    """Body for ``kind: status`` (a dict is sent as JSON, a string as text)."""
    delay_s: float = Field(default=30.0, ge=0)
    """Wait for ``kind: timeout``."""
    apply_first: bool = False
    conversation_id: str | None = None
    """Only requests naming this conversation in their path match (get, end, delete); for a
    tool-call fault, only calls made for this conversation."""

    @model_validator(mode="after")
    def _tool_call_faults_apart(self) -> FaultRule:
        # A tool-call fault never consumes a /v2 request, nor a /v2 fault a tool call.
        if self.kind in TOOL_CALL_KINDS:
            if self.endpoint not in ("tool_call", "any"):
                raise ValueError(f"kind {self.kind} applies to endpoint tool_call only")
            self.endpoint = "tool_call"
        elif self.endpoint == "tool_call":
            raise ValueError(f"endpoint tool_call takes only {sorted(TOOL_CALL_KINDS)}")
        return self


class FaultQueue:
    """The pending fault rules, consumed in order."""

    def __init__(self) -> None:
        self._rules: list[tuple[FaultRule, int]] = []

    def add(self, rule: FaultRule) -> None:
        """Queue a rule behind those already pending."""
        self._rules.append((rule, rule.count))

    def clear(self) -> None:
        """Drop every pending rule."""
        self._rules.clear()

    def take(self, endpoint: str, conversation_id: str | None = None) -> FaultRule | None:
        """Consume one use of the first rule matching ``endpoint`` (and, for a rule bound to
        a conversation, ``conversation_id``), if any."""
        for index, (rule, remaining) in enumerate(self._rules):
            if rule.conversation_id is not None and rule.conversation_id != conversation_id:
                continue
            if rule.endpoint == endpoint or (rule.endpoint == "any" and endpoint != "tool_call"):
                if remaining <= 1:
                    del self._rules[index]
                else:
                    self._rules[index] = (rule, remaining - 1)
                return rule
        return None

    def take_tool_fault(self, conversation_id: str | None = None) -> str | None:
        """Consume one use of the first tool-call fault (for this conversation); its kind."""
        rule = self.take("tool_call", conversation_id)
        return None if rule is None else rule.kind

    def pending(self) -> list[dict[str, Any]]:
        """Return the pending rules with their remaining counts, in order."""
        return [{**rule.model_dump(), "remaining": remaining} for rule, remaining in self._rules]


class ConnectionDropped(Exception):
    """Raised when a dropped connection cannot be simulated at the socket level."""


async def drop_connection(scope: Scope) -> None:
    """Close the client's TCP connection without sending any response.

    How: the app stores the server's own ``send`` callable in the scope (app.py) before any
    middleware wraps it. Under uvicorn that callable is the bound method
    ``RequestResponseCycle.send`` whose owner holds the connection's asyncio ``transport``.
    Closing that transport makes uvicorn's ``connection_lost`` mark the cycle disconnected,
    after which uvicorn silently discards whatever the app still sends, so the client sees
    the connection closed with no status line (httpx: ``RemoteProtocolError``).

    Raising an exception instead would not work: Starlette and uvicorn turn it into a 500.
    When not served by uvicorn (no transport found, e.g. an in-process ASGI transport) this
    raises :class:`ConnectionDropped`, which fails the request in the client all the same.
    """
    send = scope.get(RAW_SEND_SCOPE_KEY)
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if not isinstance(transport, asyncio.BaseTransport):
        raise ConnectionDropped("simulated dropped connection")
    transport.close()
    # connection_lost runs from a call_soon callback; yield until uvicorn has seen it so
    # the response the handler returns next is discarded rather than written.
    for _ in range(10):
        if getattr(cycle, "disconnected", True):
            break
        await asyncio.sleep(0)


@dataclass(slots=True)
class DeliveryPlan:
    """Which callback copies to send, in order, and which were dropped."""

    send: list[dict[str, Any]]
    dropped: list[dict[str, Any]]


def plan_deliveries(
    events: Sequence[Mapping[str, Any]],
    config: SimConfig,
    rng: random.Random,
    *,
    shuffle: bool,
) -> DeliveryPlan:
    """Apply the callback controls of ``config`` to a batch of events.

    Each event is copied ``callback_duplicate`` times; events whose type is listed in
    ``callback_drop_events`` are dropped entirely, and each remaining copy is dropped with
    ``callback_drop_probability``. When ``shuffle`` is true (the caller passes it for the
    post-shutdown batch) and ``callback_shuffle`` is set, the surviving copies are shuffled.
    """
    send: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for event in events:
        for _ in range(config.callback_duplicate):
            lost = event["event_type"] in config.callback_drop_events or (
                config.callback_drop_probability > 0
                and rng.random() < config.callback_drop_probability
            )
            (dropped if lost else send).append(dict(event))
    if shuffle and config.callback_shuffle:
        rng.shuffle(send)
    return DeliveryPlan(send=send, dropped=dropped)
