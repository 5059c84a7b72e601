"""Calling tools server-to-server (``delivery.api``), as Tavus does, and the record of it.

One call: the tool's body template filled (tools.py) → JSON in the simulator's encoding →
signed when the tool's auth is ``hmac`` (``X-Tavus-Signature``: lowercase hex HMAC-SHA256 of
the raw body with the tool's secret; :func:`signature` owns the scheme) → sent once, no retry
(Tavus documents none) → recorded with the answer (``GET /_sim/tool-calls``).

Faults (faults.py, ``endpoint: tool_call``) apply to the next calls: ``wrong_signature`` signs
with a wrong secret; ``repeat_tool_call`` sends the same request (same ``tool_call_id``) twice.

Logs carry the tool name, conversation id, host and status, never bodies, URLs' paths or
secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

import httpx
import structlog

from tavus_sim.background import BackgroundTasks
from tavus_sim.config import SimConfig
from tavus_sim.faults import FaultQueue
from tavus_sim.responses import dumps
from tavus_sim.state import Conversation, isoformat, utcnow
from tavus_sim.tools import Tool, fill

log = structlog.stdlib.get_logger(__name__)

SIGNATURE_HEADER = "X-Tavus-Signature"
#: What ``wrong_signature`` signs with instead of the tool's secret.
WRONG_SECRET = "not-the-shared-secret"
_RESPONSE_MAX_CHARS = 4000


def signature(secret: str, body: bytes) -> str:
    """The ``X-Tavus-Signature`` of a body: lowercase hex HMAC-SHA256 with the secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def new_tool_call_id() -> str:
    """A fresh tool call id: ``tc_`` followed by 16 hex characters."""
    return "tc_" + secrets.token_hex(8)


@dataclass(slots=True)
class ToolCall:
    """One request sent to a tool's endpoint (a repeated call is two records)."""

    tool_call_id: str
    tool_id: str
    tool_name: str
    trigger_type: str
    conversation_id: str
    url: str
    method: str
    body: Any
    fault: str | None = None
    status: int | None = None
    response: Any = None
    error: str | None = None
    at: datetime = field(default_factory=utcnow)

    @property
    def succeeded(self) -> bool:
        """Whether the endpoint answered 2xx."""
        return self.status is not None and 200 <= self.status < 300

    def to_json(self) -> dict[str, Any]:
        """The record as ``GET /_sim/tool-calls`` shows it."""
        return {
            "tool_call_id": self.tool_call_id,
            "tool_id": self.tool_id,
            "tool": self.tool_name,
            "trigger_type": self.trigger_type,
            "conversation_id": self.conversation_id,
            "url": self.url,
            "method": self.method,
            "body": self.body,
            "fault": self.fault,
            "status": self.status,
            "response": self.response,
            "error": self.error,
            "at": isoformat(self.at),
        }


def _substitute(value: Any, ids: dict[str, str], arguments: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = value.strip()
        if whole == "{arguments}":
            return arguments
        if whole.startswith("{") and whole.endswith("}") and whole[1:-1] in arguments:
            return arguments[whole[1:-1]]
        return fill(value, ids)
    if isinstance(value, dict):
        return {key: _substitute(item, ids, arguments) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, ids, arguments) for item in value]
    return value


def _places_arguments(value: Any, names: set[str]) -> bool:
    if isinstance(value, str):
        whole = value.strip()
        return whole == "{arguments}" or (
            whole.startswith("{") and whole.endswith("}") and whole[1:-1] in names
        )
    if isinstance(value, dict):
        return any(_places_arguments(item, names) for item in value.values())
    if isinstance(value, list):
        return any(_places_arguments(item, names) for item in value)
    return False


DEFAULT_BODY: dict[str, Any] = {
    "conversation_id": "{conversation_id}",
    "tool_call_id": "{tool_call_id}",
    "arguments": "{arguments}",
}


def request_body(
    template: dict[str, Any] | None, ids: dict[str, str], arguments: dict[str, Any]
) -> dict[str, Any]:
    """The body of one call: the template filled; the arguments added when it has no place
    for them (see tools.py)."""
    template = template if template is not None else DEFAULT_BODY
    body: dict[str, Any] = _substitute(template, ids, arguments)
    if not _places_arguments(template, set(arguments)):
        body["arguments"] = arguments
    return body


def _answer(response: httpx.Response) -> Any:
    text = response.text[:_RESPONSE_MAX_CHARS]
    if "json" in response.headers.get("content-type", ""):
        try:
            return json.loads(response.text)
        except ValueError:
            return text
    return text


def spoken(answer: Any) -> str | None:
    """What the mentor says of a tool's answer: its text, or the text field of its JSON."""
    if isinstance(answer, str):
        return answer.strip() or None
    if isinstance(answer, dict):
        for key in ("result", "output", "message", "text", "detail"):
            value = answer.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None


class ToolCallSettings(Protocol):
    """What the caller reads of the runtime (both change at run time)."""

    config: SimConfig
    faults: FaultQueue


class ToolCaller:
    """Sends tool calls and keeps their records; background calls are tracked for drain."""

    def __init__(self, runtime: ToolCallSettings) -> None:
        self._runtime = runtime
        self._client: httpx.AsyncClient | None = None
        self._tasks = BackgroundTasks()
        self.calls: list[ToolCall] = []

    async def start(self) -> None:
        """Open the HTTP client (call from the app's lifespan)."""
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)

    async def aclose(self) -> None:
        """Cancel background calls and close the HTTP client."""
        await self.cancel_all()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def reset(self) -> None:
        """Forget the records."""
        self.calls.clear()

    @property
    def pending(self) -> int:
        """Background calls not finished yet."""
        return len(self._tasks)

    def in_background(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run a coroutine as a tracked task (drain waits for it, reset cancels it)."""
        self._tasks.start(work, name)

    async def drain(self, timeout_s: float) -> bool:
        """Wait until every background call finished; return whether that happened in time."""
        return await self._tasks.drain(timeout_s)

    async def cancel_all(self) -> None:
        """Cancel every background call and wait for the cancellations to land."""
        await self._tasks.cancel_all()

    async def call(
        self, conversation: Conversation, tool: Tool, arguments: dict[str, Any]
    ) -> ToolCall:
        """Call a ``delivery.api`` tool once (twice under ``repeat_tool_call``); return the
        record of the (last) request."""
        api = tool.spec.delivery.api
        if api is None:  # pragma: no cover - callers pick api tools (ToolRegistry.callable_by)
            raise ValueError("not a delivery.api tool")
        tool_call_id = new_tool_call_id()
        ids = {
            "conversation_id": conversation.conversation_id,
            "tool_call_id": tool_call_id,
            "tool_name": tool.name,
        }
        url_ids = {key: quote(value, safe="") for key, value in ids.items()}
        url = fill(api.url, url_ids)
        if api.query:
            query = urlencode({key: fill(value, ids) for key, value in api.query.items()})
            url += ("&" if "?" in url else "?") + query
        body = request_body(api.body, ids, arguments)
        raw = dumps(body)
        headers = {key: fill(value, ids) for key, value in api.headers.items()}
        headers["content-type"] = "application/json"
        fault = self._runtime.faults.take_tool_fault(conversation.conversation_id)
        auth = api.auth
        if auth.type == "hmac" and auth.secret is not None:
            secret = WRONG_SECRET if fault == "wrong_signature" else auth.secret
            headers[SIGNATURE_HEADER] = signature(secret, raw)
        elif auth.type == "bearer" and auth.token is not None:
            headers["authorization"] = f"Bearer {auth.token}"
        copies = 2 if fault == "repeat_tool_call" else 1
        record: ToolCall | None = None
        for _ in range(copies):
            record = ToolCall(
                tool_call_id=tool_call_id,
                tool_id=tool.tool_id,
                tool_name=tool.name,
                trigger_type=tool.spec.trigger_type,
                conversation_id=conversation.conversation_id,
                url=url,
                method=api.method,
                body=body,
                fault=fault,
            )
            self.calls.append(record)
            await self._send(record, raw, headers)
        assert record is not None
        return record

    async def _send(self, record: ToolCall, raw: bytes, headers: dict[str, str]) -> None:
        bound = log.bind(
            tool=record.tool_name,
            conversation_id=record.conversation_id,
            host=urlsplit(record.url).netloc,
        )
        client = self._client
        if client is None:
            record.error = "simulator not started"
            bound.error("tavus_sim.tool_call.no_client")
            return
        try:
            response = await client.request(
                record.method,
                record.url,
                content=raw,
                headers=headers,
                timeout=self._runtime.config.tool_call_timeout_s,
            )
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            record.error = type(exc).__name__
            bound.warning("tavus_sim.tool_call.error", error=record.error)
            return
        record.status = response.status_code
        record.response = _answer(response)
        bound.info("tavus_sim.tool_call.answered", status=record.status)
