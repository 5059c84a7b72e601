"""`TavusClient`: the async client for the Tavus CVI endpoints the service uses.

Conversations (create, get, list, end, delete); PALs and Faces, Tavus's current names for
personas and replicas (get, to check a deployment's defaults; requests use the current names);
memory stores (list by participant tag, delete: forgetting a user); and
a cheap authenticated read that validates the API key.

It is one module, longer than most here, because every endpoint goes through the one path
below; the pieces that stand alone live beside it (errors.py, resilience.py, schemas.py).

One long-lived `TavusClient` per process (create it in the app's lifespan, close it with
`aclose()`). Every call goes through the same path:

1. a bulkhead of `max_concurrency` lanes, each one keep-alive connection — waiting for a lane is
   bounded, and a full bulkhead raises `TavusBusy` (nothing was sent);
2. one HTTP attempt under httpx's connect/read/write/pool timeouts *and* a total per-attempt
   deadline (`asyncio.timeout`);
3. mapping of the outcome to a `TavusError` (see `facetoface.tavus.errors`);
4. one structlog line and one `on_request(endpoint, outcome, seconds)` call per attempt;
5. retries with `stamina` (exponential backoff + jitter, `retry_attempts` attempts within
   `retry_timeout_s`), only where safe:

   - `create_conversation` is **not idempotent** (each create bills and takes a concurrency slot;
     Tavus has no idempotency key): it is retried only on `TavusUnavailable` (nothing was sent)
     and `TavusRateLimited` (429: Tavus did not act). Never after the request may have been
     sent: a 5xx or `TavusOutcomeUnknown` is raised to the caller, who reconciles by
     `conversation_name`.
   - every other call (reads and deletes) is idempotent: retried on `TavusUnavailable`,
     `TavusServerError`, `TavusRateLimited` and `TavusOutcomeUnknown`.
   - A 429's `Retry-After` is honoured: the retry waits exactly that long if it fits in what is
     left of `retry_timeout_s`; if it does not fit, the `TavusRateLimited` is raised at once
     (retrying earlier than Tavus asked would only earn another 429).

Worst-case wall time of one call is about `retry_timeout_s + total_timeout_s` (stamina stops
scheduling retries once `retry_timeout_s` has elapsed; an attempt already running keeps its own
deadline), plus at most `bulkhead_timeout_s` per attempt waiting for a slot.

Secrets: the API key, request bodies, `conversational_context`, `callback_url` (it carries this
service's per-conversation token), `conversation_url` and `meeting_token` are never logged, never
put in an exception message, and are hidden from the `repr()` of every object this module keeps
in a local variable, so tracebacks rendered with locals don't show them either.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import parse_qsl, urlsplit

import httpx
import stamina
import structlog
from pydantic import BaseModel, ValidationError

from facetoface.tavus.errors import (
    TavusBusy,
    TavusError,
    TavusOutcomeUnknown,
    TavusRateLimited,
    TavusServerError,
    TavusUnavailable,
    _error_from_response,
    clean_message,
)
from facetoface.tavus.registry import (
    LearnedMemory,
    MemoryStoreDetails,
    PinnedMemory,
    Tool,
    ToolPage,
)
from facetoface.tavus.resilience import CircuitBreaker, RetryBudget
from facetoface.tavus.schemas import (
    Conversation,
    ConversationDetails,
    ConversationPage,
    CreateConversationRequest,
    MemoryStorePage,
    Persona,
    Replica,
    TavusStatus,
)

__all__ = ["OnRequest", "TavusClient", "validate_conversation_id", "validate_id"]

log = structlog.get_logger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: Metrics hook: called once per HTTP attempt with (endpoint, outcome, seconds).
#: `outcome` is "ok", "cancelled", "error" (a bug) or a `TavusError.outcome` label.
OnRequest = Callable[[str, str, float], None]

_TAVUS_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")

_CREATE_RETRY_ON: tuple[type[TavusError], ...] = (TavusUnavailable, TavusRateLimited)
_IDEMPOTENT_RETRY_ON: tuple[type[TavusError], ...] = (
    TavusUnavailable,
    TavusServerError,
    TavusRateLimited,
    TavusOutcomeUnknown,
)
# httpx errors raised before any byte of the request could have been sent.
_NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def validate_id(value: str, what: str = "id") -> str:
    """Return `value` if it is safe to put in a URL path, else raise `ValueError`.

    Tavus ids are opaque (`c`/`p`/`r` + hex in every example); this allows
    `[A-Za-z0-9_-]{1,128}`.
    """
    if not isinstance(value, str) or not _TAVUS_ID.fullmatch(value):
        msg = f"invalid Tavus {what}: expected 1-128 characters from [A-Za-z0-9_-]"
        raise ValueError(msg)
    return value


def validate_conversation_id(conversation_id: str) -> str:
    """`validate_id` for a conversation id."""
    return validate_id(conversation_id, "conversation id")


class _JsonBody:
    """A serialised request body whose repr never shows the content."""

    __slots__ = ("content",)

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.content = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()

    def __repr__(self) -> str:
        return f"<JSON body, {len(self.content)} bytes>"


class _Redactions:
    """Strings to scrub from error messages; its repr never shows them."""

    __slots__ = ("values",)

    def __init__(self, values: Iterable[str | None]) -> None:
        self.values = tuple(v for v in values if v)

    def __repr__(self) -> str:
        return f"<{len(self.values)} redacted values>"


def _secrets_of_url(url: str | None) -> list[str]:
    """The URL itself plus every query value in it (callback URLs carry a token there)."""
    if not url:
        return []
    try:
        query = urlsplit(url).query
    except ValueError:
        return [url]
    return [url, *(value for _, value in parse_qsl(query))]


class _Progress:
    """Follows httpcore's `trace` events to tell whether the request may have been sent."""

    __slots__ = ("connecting", "sent")

    def __init__(self) -> None:
        self.connecting = False
        self.sent = False

    async def trace(self, name: str, info: Mapping[str, Any]) -> None:
        if "send_request" in name or "receive_response" in name:
            self.sent = True
        elif name.startswith("connection."):  # connect_tcp, start_tls, ...
            self.connecting = True

    @property
    def nothing_sent(self) -> bool:
        """True only when we *know* the request never started (conservative otherwise)."""
        return self.connecting and not self.sent


def _validate(model: type[M], content: bytes) -> M:
    """`content` (JSON) as `model`. pydantic's own JSON parser refuses valid JSON it cannot
    hold in a Rust string — a lone surrogate escape (`"\\ud800"`) a user typed into a
    transcript — so such a body is decoded by `json` instead (the strings keep the code point;
    the conversation core makes them storable)."""
    try:
        return model.model_validate_json(content)
    except ValidationError as exc:
        if any(error["type"] != "json_invalid" for error in exc.errors()):
            raise
        try:
            data = json.loads(content)
        except (ValueError, RecursionError):
            raise exc from None
        return model.model_validate(data)


def _model_parser(model: type[M]) -> Callable[[str, httpx.Response], M]:
    def parse(endpoint: str, response: httpx.Response) -> M:
        try:
            return _validate(model, response.content)
        except ValidationError as exc:
            # Never chain or echo the pydantic error: it quotes the input (room URLs, tokens).
            where = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<body>'}: {err['type']}"
                for err in exc.errors(include_input=False, include_url=False)[:3]
            )
            msg = f"unparseable {response.status_code} response body ({where})"
            raise TavusOutcomeUnknown(
                msg, endpoint=endpoint, status_code=response.status_code
            ) from None

    return parse


def _ignore_body(endpoint: str, response: httpx.Response) -> None:
    """end/delete/key check: any 2xx is success; the body may be empty, "OK" or JSON."""


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's one TLS context for Tavus (building one reads the CA bundle: 30-150 ms
    of CPU; every client and lane shares it)."""
    return httpx.create_ssl_context()


#: The documented status values (a set of strings: `in` on the enum class itself raises for a
#: non-member on Python 3.11).
_TAVUS_STATUSES = frozenset(status.value for status in TavusStatus)


class TavusClient:
    """Client for the Tavus CVI API (`/v2`).

    Use as an async context manager, or call `aclose()` when done. Methods raise
    `facetoface.tavus.errors.TavusError` subclasses for every Tavus-side failure and
    `ValueError` for arguments that are unsafe to send (e.g. a malformed conversation id).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 10.0,
        total_timeout_s: float = 15.0,
        max_concurrency: int = 16,
        retry_attempts: int = 3,
        retry_timeout_s: float = 20.0,
        concurrency_retry_after_s: float = 30,
        bulkhead_timeout_s: float | None = None,
        retry_wait_initial_s: float = 0.2,
        retry_wait_max_s: float = 5.0,
        retry_wait_jitter_s: float = 1.0,
        on_request: OnRequest | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        breaker_threshold: int = 5,
        breaker_cooldown_s: float = 15.0,
        retry_budget_ratio: float = 0.1,
    ) -> None:
        if not api_key or api_key != api_key.strip() or any(c in api_key for c in "\r\n"):
            msg = "Tavus api_key must be a non-empty string without surrounding whitespace"
            raise ValueError(msg)
        for name, value in (
            ("connect_timeout_s", connect_timeout_s),
            ("read_timeout_s", read_timeout_s),
            ("total_timeout_s", total_timeout_s),
            ("retry_timeout_s", retry_timeout_s),
        ):
            if not value > 0:
                msg = f"{name} must be > 0"
                raise ValueError(msg)
        if max_concurrency < 1 or retry_attempts < 1:
            msg = "max_concurrency and retry_attempts must be >= 1"
            raise ValueError(msg)

        self._base_url = base_url
        self._api_key = api_key
        self._total_timeout_s = total_timeout_s
        self._max_concurrency = max_concurrency
        self._retry_attempts = retry_attempts
        self._retry_timeout_s = retry_timeout_s
        self._concurrency_retry_after_s = float(concurrency_retry_after_s)
        self._bulkhead_timeout_s = (
            connect_timeout_s if bulkhead_timeout_s is None else bulkhead_timeout_s
        )
        self._retry_wait_initial_s = retry_wait_initial_s
        self._retry_wait_max_s = retry_wait_max_s
        self._retry_wait_jitter_s = retry_wait_jitter_s
        self._on_request = on_request
        self._in_flight = 0
        #: The drain's cut-off (event-loop time): no attempt runs past it (`cut_off_at`).
        self._cutoff: float | None = None
        self._deadlines: set[asyncio.Timeout] = set()
        self.breaker = CircuitBreaker(
            threshold=breaker_threshold, cooldown_seconds=breaker_cooldown_s
        )
        self._budget = RetryBudget(ratio=retry_budget_ratio)
        self._lane_options: dict[str, Any] = {
            "base_url": base_url,
            "headers": {
                "x-api-key": api_key,
                "Accept": "application/json",
                "User-Agent": "facetoface-tavus-client",
            },
            "timeout": httpx.Timeout(
                connect=connect_timeout_s,
                read=read_timeout_s,
                write=read_timeout_s,
                pool=connect_timeout_s,
            ),
            "limits": httpx.Limits(
                max_connections=1, max_keepalive_connections=1, keepalive_expiry=30.0
            ),
            "follow_redirects": False,
            "transport": transport,
        }
        # The bulkhead is a stack of lanes, each an `httpx.AsyncClient` holding at most one
        # connection. httpcore walks every connection of a pool (quadratically in the idle
        # ones, with a `select` each) whenever a request starts or ends: one pool of N
        # connections costs O(N²) per request, N pools of one cost O(1). Lanes are built on
        # first use; LIFO keeps the warm ones busy and lets the others' connections expire.
        self._lanes: asyncio.LifoQueue[httpx.AsyncClient | None] = asyncio.LifoQueue()
        for _ in range(max_concurrency):
            self._lanes.put_nowait(None)
        self._built: list[httpx.AsyncClient] = []
        self._closed = False

    def _new_lane(self) -> httpx.AsyncClient:
        options = self._lane_options
        if options["transport"] is None and "verify" not in options:
            options["verify"] = tls_context()
        lane = httpx.AsyncClient(**options)
        self._built.append(lane)
        return lane

    def __repr__(self) -> str:
        return f"<TavusClient base_url={self._base_url!r}>"

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        """True once `aclose()` has run."""
        return self._closed

    def cut_off_at(self, when: float) -> None:
        """Bound every attempt, running or to come, to end by `when` (event-loop time): the
        process is draining (SIGTERM) and must answer its requests before it exits. An
        attempt cut short is one that timed out: a create's outcome is unknown (the start
        answers `503 session_outcome_unknown`, the reconciler resolves it)."""
        self._cutoff = when
        for deadline in self._deadlines:
            current = deadline.when()
            if current is None or current > when:
                deadline.reschedule(when)

    async def aclose(self) -> None:
        """Close every connection (later calls fail)."""
        self._closed = True
        lanes, self._built = self._built, []
        for lane in lanes:
            await lane.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def bulkhead(self) -> tuple[int, int]:
        """(requests in flight now, the bulkhead's limit) of this process."""
        return self._in_flight, self._max_concurrency

    @property
    def total_timeout_seconds(self) -> float:
        """One attempt's deadline: how long this client waits for one answer."""
        return self._total_timeout_s

    @property
    def longest_call_seconds(self) -> float:
        """The longest one call can run at this client: its last attempt starts within the
        retry budget plus one backoff (a 429's wait fits inside the budget), waits for a lane,
        then has its own deadline. A request sent by this call reached Tavus within it."""
        backoff = self._retry_wait_max_s + self._retry_wait_jitter_s
        return self._retry_timeout_s + backoff + self._bulkhead_timeout_s + self._total_timeout_s

    @property
    def retry_budget_tokens(self) -> float:
        """Retries the budget still allows now."""
        return self._budget.tokens

    # --- endpoints --------------------------------------------------------------------------

    async def create_conversation(self, req: CreateConversationRequest) -> Conversation:
        """`POST /conversations`: start a live conversation (billing starts now).

        Retried only when nothing reached Tavus or Tavus answered 429. On
        `TavusServerError`/`TavusOutcomeUnknown` the conversation may exist: reconcile by
        `conversation_name`, never call this again blindly.
        """
        return await self._call(
            "create_conversation",
            "POST",
            "/conversations",
            body=_JsonBody(req.to_payload()),
            parse=_model_parser(Conversation),
            retry_on=_CREATE_RETRY_ON,
            redact=_Redactions([*_secrets_of_url(req.callback_url), req.conversational_context]),
        )

    async def get_conversation(
        self, conversation_id: str, *, verbose: bool = False
    ) -> ConversationDetails:
        """`GET /conversations/{id}` (`verbose=True` adds events, shutdown reason, transcript)."""
        cid = validate_conversation_id(conversation_id)
        return await self._call(
            "get_conversation",
            "GET",
            f"/conversations/{cid}",
            params={"verbose": "true"} if verbose else None,
            parse=_model_parser(ConversationDetails),
            retry_on=_IDEMPOTENT_RETRY_ON,
            conversation_id=cid,
        )

    async def list_conversations(
        self,
        *,
        status: TavusStatus | None = None,
        limit: int = 100,
        page: int = 1,
    ) -> ConversationPage:
        """`GET /conversations`: one page (1-indexed), optionally filtered by status."""
        if status is not None and status not in _TAVUS_STATUSES:
            msg = f"status must be one of {', '.join(TavusStatus)} or None"
            raise ValueError(msg)
        if limit < 1 or page < 1:
            msg = "limit and page must be >= 1"
            raise ValueError(msg)
        params: dict[str, str | int] = {"limit": limit, "page": page}
        if status is not None:
            params["status"] = status
        return await self._call(
            "list_conversations",
            "GET",
            "/conversations",
            params=params,
            parse=_model_parser(ConversationPage),
            retry_on=_IDEMPOTENT_RETRY_ON,
        )

    async def end_conversation(self, conversation_id: str) -> None:
        """`POST /conversations/{id}/end`: stop the room (and billing). Any 2xx is success.

        An unknown or (possibly) already-ended id raises `TavusNotFound`; whether that means
        "already ended" is for the caller to decide.
        """
        cid = validate_conversation_id(conversation_id)
        await self._call(
            "end_conversation",
            "POST",
            f"/conversations/{cid}/end",
            parse=_ignore_body,
            retry_on=_IDEMPOTENT_RETRY_ON,
            conversation_id=cid,
        )

    async def delete_conversation(self, conversation_id: str, *, hard: bool = False) -> None:
        """`DELETE /conversations/{id}` (`hard=True`: irreversibly delete its assets too)."""
        cid = validate_conversation_id(conversation_id)
        await self._call(
            "delete_conversation",
            "DELETE",
            f"/conversations/{cid}",
            params={"hard": "true"} if hard else None,
            parse=_ignore_body,
            retry_on=_IDEMPOTENT_RETRY_ON,
            conversation_id=cid,
        )

    async def verify_api_key(self) -> None:
        """A cheap authenticated read (`GET /pals?limit=1`) that proves the key works.

        Raises `TavusAuthError` for a missing, wrong or revoked key; creates and bills nothing.
        """
        await self._call(
            "verify_api_key",
            "GET",
            "/pals",
            params={"limit": 1},
            parse=_ignore_body,
            retry_on=_IDEMPOTENT_RETRY_ON,
        )

    async def get_persona(self, persona_id: str) -> Persona:
        """`GET /pals/{id}` (PALs are Tavus's personas); an unknown id raises `TavusNotFound`."""
        pid = validate_id(persona_id, "persona id")
        return await self._call(
            "get_persona",
            "GET",
            f"/pals/{pid}",
            parse=_model_parser(Persona),
            retry_on=_IDEMPOTENT_RETRY_ON,
        )

    async def get_replica(self, replica_id: str) -> Replica:
        """`GET /faces/{id}` (Faces are Tavus's replicas); an unknown id raises `TavusNotFound`."""
        rid = validate_id(replica_id, "replica id")
        return await self._call(
            "get_replica",
            "GET",
            f"/faces/{rid}",
            parse=_model_parser(Replica),
            retry_on=_IDEMPOTENT_RETRY_ON,
        )

    async def list_memory_stores(
        self, *, participant_tag: str | None = None, pal_id: str | None = None
    ) -> MemoryStorePage:
        """`GET /memory-stores`: the account's stores for a participant tag and/or persona.

        Forgetting a user at Tavus = this by their participant tag, then
        `delete_memory_store` for each. Without a filter, every store of the account.
        """
        params: dict[str, str | int] = {}
        if participant_tag is not None:
            if not participant_tag:
                msg = "participant_tag must not be empty"
                raise ValueError(msg)
            params["participant_tag"] = participant_tag
        if pal_id is not None:
            params["pal_id"] = validate_id(pal_id, "persona id")
        return await self._call(
            "list_memory_stores",
            "GET",
            "/memory-stores",
            params=params or None,
            parse=_model_parser(MemoryStorePage),
            retry_on=_IDEMPOTENT_RETRY_ON,
        )

    async def delete_memory_store(self, memory_store_id: str) -> None:
        """`DELETE /memory-stores/{id}`: the store and its memories, for good.

        An unknown (e.g. already deleted) id raises `TavusNotFound`; a store of another account
        `TavusAuthError` (403).
        """
        sid = validate_id(memory_store_id, "memory store id")
        await self._call(
            "delete_memory_store",
            "DELETE",
            f"/memory-stores/{sid}",
            parse=_ignore_body,
            retry_on=_IDEMPOTENT_RETRY_ON,
        )

    # --- the mentor's tools (the registry) and memory stores' contents -----------------------
    async def list_tools(self) -> ToolPage:
        """`GET /tools`: the account's tools."""
        return await self._call(
            "list_tools",
            "GET",
            "/tools",
            parse=_model_parser(ToolPage),
            retry_on=_IDEMPOTENT_RETRY_ON,
        )

    async def create_tool(self, definition: Mapping[str, Any]) -> Tool:
        """`POST /tools`: register a tool (`definition` carries its delivery secret: never
        logged). Not retried once sent: a retry could register it twice."""
        secrets = _tool_secrets(definition)
        return await self._call(
            "create_tool",
            "POST",
            "/tools",
            body=_JsonBody(definition),
            parse=_model_parser(Tool),
            retry_on=_CREATE_RETRY_ON,
            redact=_Redactions(secrets),
        )

    async def delete_tool(self, tool_id: str) -> None:
        """`DELETE /tools/{id}`; an unknown id raises `TavusNotFound`."""
        tid = validate_id(tool_id, "tool id")
        await self._call(
            "delete_tool",
            "DELETE",
            f"/tools/{tid}",
            parse=_ignore_body,
            retry_on=_IDEMPOTENT_RETRY_ON,
        )

    async def list_pal_tools(self, pal_id: str) -> ToolPage:
        """`GET /pals/{id}/tools`: the tools attached to a PAL (persona)."""
        pid = validate_id(pal_id, "pal id")
        return await self._call(
            "list_pal_tools",
            "GET",
            f"/pals/{pid}/tools",
            parse=_model_parser(ToolPage),
            retry_on=_IDEMPOTENT_RETRY_ON,
        )

    async def attach_pal_tools(self, pal_id: str, tool_ids: Iterable[str]) -> None:
        """`POST /pals/{id}/tools {tool_ids}`: attach tools (attaching twice is idempotent)."""
        pid = validate_id(pal_id, "pal id")
        ids = [validate_id(t, "tool id") for t in tool_ids]
        await self._call(
            "attach_pal_tools",
            "POST",
            f"/pals/{pid}/tools",
            body=_JsonBody({"tool_ids": ids}),
            parse=_ignore_body,
            retry_on=_IDEMPOTENT_RETRY_ON,
        )

    async def create_memory_store(
        self, pal_id: str, participant_tag: str, pinned_memories: list[str]
    ) -> MemoryStoreDetails:
        """`POST /memory-stores`: the store of one PAL and participant, with pinned facts (a
        409 — one exists already — raises `TavusRejected`)."""
        body = {
            "pal_id": validate_id(pal_id, "pal id"),
            "participant_tag": participant_tag,
            "pinned_memories": pinned_memories,
        }
        return await self._call(
            "create_memory_store",
            "POST",
            "/memory-stores",
            body=_JsonBody(body),
            parse=_model_parser(MemoryStoreDetails),
            retry_on=_CREATE_RETRY_ON,
            redact=_Redactions(pinned_memories),
        )

    async def get_memory_store(self, memory_store_id: str) -> MemoryStoreDetails:
        """`GET /memory-stores/{id}`: the store and its pinned memories."""
        sid = validate_id(memory_store_id, "memory store id")
        return await self._call(
            "get_memory_store",
            "GET",
            f"/memory-stores/{sid}",
            parse=_model_parser(MemoryStoreDetails),
            retry_on=_IDEMPOTENT_RETRY_ON,
        )

    async def pin_memory(self, memory_store_id: str, memory: str) -> PinnedMemory:
        """`POST /memory-stores/{id}/pinned {memory}`: pin one fact."""
        sid = validate_id(memory_store_id, "memory store id")
        return await self._call(
            "pin_memory",
            "POST",
            f"/memory-stores/{sid}/pinned",
            body=_JsonBody({"memory": memory}),
            parse=_model_parser(PinnedMemory),
            retry_on=_CREATE_RETRY_ON,
            redact=_Redactions([memory]),
        )

    async def delete_pinned_memory(self, memory_store_id: str, memory_id: str) -> None:
        """`DELETE /memory-stores/{id}/pinned/{memory_id}`: forget one pinned fact."""
        sid = validate_id(memory_store_id, "memory store id")
        mid = validate_id(memory_id, "memory id")
        await self._call(
            "delete_pinned_memory",
            "DELETE",
            f"/memory-stores/{sid}/pinned/{mid}",
            parse=_ignore_body,
            retry_on=_IDEMPOTENT_RETRY_ON,
        )

    async def get_learned_memory(self, memory_store_id: str, kind: str) -> LearnedMemory:
        """`GET /memory-stores/{id}/learned?type=profile|timeline`."""
        if kind not in ("profile", "timeline"):
            msg = "kind must be profile or timeline"
            raise ValueError(msg)
        sid = validate_id(memory_store_id, "memory store id")
        return await self._call(
            "get_learned_memory",
            "GET",
            f"/memory-stores/{sid}/learned",
            params={"type": kind},
            parse=_model_parser(LearnedMemory),
            retry_on=_IDEMPOTENT_RETRY_ON,
        )

    # --- machinery --------------------------------------------------------------------------

    async def _call(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        parse: Callable[[str, httpx.Response], T],
        retry_on: tuple[type[TavusError], ...],
        params: Mapping[str, str | int] | None = None,
        body: _JsonBody | None = None,
        redact: _Redactions | None = None,
        conversation_id: str | None = None,
    ) -> T:
        redactions = _Redactions([self._api_key, *(redact.values if redact else ())])
        self._budget.record_request()
        retrying = stamina.retry_context(
            on=self._retry_predicate(retry_on, time.monotonic()),
            attempts=self._retry_attempts,
            timeout=self._retry_timeout_s,
            wait_initial=self._retry_wait_initial_s,
            wait_max=self._retry_wait_max_s,
            wait_jitter=self._retry_wait_jitter_s,
        )
        async for attempt in retrying:
            with attempt:
                if not self.breaker.allow():
                    raise TavusUnavailable(
                        "circuit open: Tavus failed repeatedly, not calling it for now",
                        endpoint=endpoint,
                    )
                return await self._attempt(
                    endpoint,
                    method,
                    path,
                    attempt=attempt.num,
                    parse=parse,
                    params=params,
                    body=body,
                    redact=redactions,
                    conversation_id=conversation_id,
                )
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover

    def _retry_predicate(
        self, retry_on: tuple[type[TavusError], ...], started: float
    ) -> Callable[[Exception], bool | float]:
        """stamina backoff hook: False = give up, True = default backoff, float = wait this."""

        def should_retry(exc: Exception) -> bool | float:
            if not isinstance(exc, retry_on):
                return False
            if self.breaker.retry_after_seconds() > 0 or not self._budget.try_spend():
                return False  # Tavus is down or retries already use their share of traffic
            if isinstance(exc, TavusRateLimited) and exc.retry_after_seconds is not None:
                remaining = self._retry_timeout_s - (time.monotonic() - started)
                if exc.retry_after_seconds > remaining:
                    return False
                return float(exc.retry_after_seconds)
            return True

        return should_retry

    async def _attempt(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        attempt: int,
        parse: Callable[[str, httpx.Response], T],
        params: Mapping[str, str | int] | None,
        body: _JsonBody | None,
        redact: _Redactions,
        conversation_id: str | None,
    ) -> T:
        started = time.monotonic()
        outcome = "error"
        status: int | None = None
        error: str | None = None
        try:
            response = await self._send(
                endpoint, method, path, params=params, body=body, redact=redact
            )
            status = response.status_code
            if not response.is_success:
                raise _error_from_response(
                    endpoint,
                    response,
                    concurrency_retry_after_s=self._concurrency_retry_after_s,
                    redact=redact.values,
                )
            result = parse(endpoint, response)
            outcome = "ok"
            if conversation_id is None and isinstance(result, Conversation):
                conversation_id = result.conversation_id
            return result
        except TavusError as exc:
            outcome, status, error = exc.outcome, exc.status_code, type(exc).__name__
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception as exc:
            error = type(exc).__name__
            raise
        finally:
            self._record(
                endpoint=endpoint,
                outcome=outcome,
                status=status,
                attempt=attempt,
                seconds=time.monotonic() - started,
                conversation_id=conversation_id,
                error=error,
            )

    async def _send(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None,
        body: _JsonBody | None,
        redact: _Redactions,
    ) -> httpx.Response:
        lane = await self._acquire_lane(endpoint)
        self._in_flight += 1
        try:
            progress = _Progress()
            when = asyncio.get_running_loop().time() + self._total_timeout_s
            if self._cutoff is not None:
                when = min(when, self._cutoff)
            deadline = asyncio.timeout_at(when)
            self._deadlines.add(deadline)
            try:
                async with deadline:
                    return await lane.request(
                        method,
                        path,
                        params=params,
                        content=body.content if body is not None else None,
                        headers={"Content-Type": "application/json"} if body is not None else None,
                        extensions={"trace": progress.trace},
                    )
            except TimeoutError:
                msg = f"no complete answer within the {self._total_timeout_s:g}s deadline"
                if progress.nothing_sent:
                    raise TavusUnavailable(f"{msg} (still connecting)", endpoint=endpoint) from None
                raise TavusOutcomeUnknown(msg, endpoint=endpoint) from None
            # `from None`: httpx errors reference the request (and h11 frames its headers).
            except _NOTHING_SENT as exc:
                raise TavusUnavailable(_describe(exc, redact), endpoint=endpoint) from None
            except httpx.RequestError as exc:
                # Read/write timeouts, dropped connections, protocol errors, undecodable bodies:
                # the request may have been processed.
                raise TavusOutcomeUnknown(_describe(exc, redact), endpoint=endpoint) from None
            finally:
                self._deadlines.discard(deadline)
        finally:
            self._in_flight -= 1
            self._lanes.put_nowait(lane)

    async def _acquire_lane(self, endpoint: str) -> httpx.AsyncClient:
        if self._closed:
            raise RuntimeError("the Tavus client is closed")
        try:
            async with asyncio.timeout(self._bulkhead_timeout_s):
                lane = await self._lanes.get()
        except TimeoutError:
            msg = (
                f"client bulkhead full ({self._max_concurrency} Tavus requests in flight; "
                f"waited {self._bulkhead_timeout_s:g}s)"
            )
            raise TavusBusy(msg, endpoint=endpoint) from None
        if lane is not None:
            return lane
        try:
            return self._new_lane()
        except BaseException:
            self._lanes.put_nowait(None)
            raise

    def _record(
        self,
        *,
        endpoint: str,
        outcome: str,
        status: int | None,
        attempt: int,
        seconds: float,
        conversation_id: str | None,
        error: str | None,
    ) -> None:
        fields: dict[str, Any] = {
            "endpoint": endpoint,
            "outcome": outcome,
            "status": status,
            "attempt": attempt,
            "elapsed_ms": round(seconds * 1000, 1),
        }
        if conversation_id is not None:
            fields["conversation_id"] = conversation_id
        if error is not None:
            fields["error"] = error
        self.breaker.record(outcome)
        if outcome == "ok":
            log.info("tavus.request", **fields)
        else:
            log.warning("tavus.request", **fields)
        if self._on_request is not None:
            try:
                self._on_request(endpoint, outcome, seconds)
            except Exception:
                log.exception("tavus.on_request_hook_failed", endpoint=endpoint)


def _tool_secrets(definition: Mapping[str, Any]) -> list[str]:
    """The delivery secret(s) inside a tool definition, to keep out of logs."""
    delivery = definition.get("delivery")
    api = delivery.get("api") if isinstance(delivery, Mapping) else None
    auth = api.get("auth") if isinstance(api, Mapping) else None
    secret = auth.get("secret") if isinstance(auth, Mapping) else None
    return [secret] if isinstance(secret, str) and secret else []


def _describe(exc: Exception, redact: _Redactions) -> str:
    detail = str(exc)
    text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return clean_message(text, redact=redact.values)
