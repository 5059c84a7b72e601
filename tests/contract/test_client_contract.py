"""The service's own Tavus client against Tavus's documented shapes (tavus_contract.json):
it talks to the simulator over real HTTP, and every request it sends is recorded on the wire
and checked against the documented request shapes; every answer it parses is compared with
the documented response fields. The documented example answers are parsed as well."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from facetoface.tavus import (
    Conversation,
    ConversationDetails,
    ConversationPage,
    ConversationProperties,
    CreateConversationRequest,
    MemoryStorePage,
    Persona,
    Replica,
    TavusAuthError,
    TavusClient,
    TavusConcurrencyLimit,
    TavusNotFound,
    TavusStatus,
)
from tavus_sim import SimServer
from tests.contract.shapes import (
    body_problems,
    contract,
    endpoint,
    fields,
    parse_timestamp,
    path_matches,
    query_problems,
    response_fields,
)


@dataclass
class Exchange:
    """One request as it went over the wire, and the raw answer."""

    method: str
    path: str
    query: dict[str, str]
    headers: httpx.Headers
    body: bytes
    status: int
    response: bytes


class RecordingTransport(httpx.AsyncBaseTransport):
    """A real HTTP transport that keeps a copy of every exchange."""

    def __init__(self, tls: ssl.SSLContext) -> None:
        self._inner = httpx.AsyncHTTPTransport(verify=tls)
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        response = await self._inner.handle_async_request(request)
        content = await response.aread()
        self.exchanges.append(
            Exchange(
                method=request.method,
                path=request.url.path,
                query=dict(request.url.params),
                headers=request.headers,
                body=body,
                status=response.status_code,
                response=content,
            )
        )
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
async def wire(tls: ssl.SSLContext) -> AsyncIterator[RecordingTransport]:
    transport = RecordingTransport(tls)
    yield transport
    await transport.aclose()


@pytest.fixture
async def client(sim: SimServer, wire: RecordingTransport) -> AsyncIterator[TavusClient]:
    async with TavusClient(sim.api_url, sim.api_key, transport=wire, retry_attempts=1) as tavus:
        yield tavus


def _only(wire: RecordingTransport) -> Exchange:
    assert len(wire.exchanges) == 1, [(e.method, e.path) for e in wire.exchanges]
    return wire.exchanges[0]


def _request_problems(name: str, exchange: Exchange) -> list[str]:
    """Everything about a sent request that the contract does not document."""
    spec = endpoint(name)
    base = contract()["base"]
    problems = []
    if exchange.method != spec["method"]:
        problems.append(f"method {exchange.method}, documented {spec['method']}")
    prefix = base["version_prefix"]
    path = exchange.path.removeprefix(prefix)
    # A documented alias (`/pals` for `/personas`, `/faces` for `/replicas`) fits too.
    documented = [spec["path"], *spec.get("aliases", [])]
    if not exchange.path.startswith(prefix + "/") or not any(
        path_matches(pattern, path) for pattern in documented
    ):
        problems.append(f"path {exchange.path} does not fit {prefix}{spec['path']}")
    if exchange.headers.get(base["auth_header"]) is None:
        problems.append(f"no {base['auth_header']} header")
    request = spec.get("request", {})
    problems += query_problems(exchange.query, request.get("query", {}))
    if exchange.body:
        if exchange.headers.get("content-type") != base["content_type"]:
            problems.append(f"content-type {exchange.headers.get('content-type')}")
        body = json.loads(exchange.body)
        problems += body_problems(body, fields(request.get("fields", {})), closed=True)
        if "properties" in body:
            problems += body_problems(
                body["properties"],
                fields(request["properties"]),
                closed=True,
                where="body.properties",
            )
    elif request.get("fields") and spec["method"] == "POST":
        problems.append("no body")
    return problems


def _same(parsed: Any, raw: Any) -> bool:
    if isinstance(parsed, datetime):
        return isinstance(raw, str) and parsed == parse_timestamp(raw)
    return bool(parsed == raw)


def _parse_problems(model: BaseModel, raw: dict[str, Any], documented: list[str]) -> list[str]:
    """Documented fields the client did not read back exactly as Tavus sent them."""
    return [
        f"{name}: parsed {getattr(model, name)!r}, sent {raw[name]!r}"
        for name in documented
        if name in raw and hasattr(model, name) and not _same(getattr(model, name), raw[name])
    ]


def _service_like_create(**overrides: Any) -> CreateConversationRequest:
    """A create as the service builds it (sessions/service.py), with every option it uses."""
    fields_: dict[str, Any] = {
        "persona_id": "p0000default",
        "replica_id": "r0000default",
        "callback_url": "https://api.example.com/v1/callbacks/tavus/abc/secret",
        "conversation_name": "facetoface:0f6b5c1e",
        "conversational_context": "You are «Sage», meeting «Maria» …",
        "custom_greeting": "Hello Maria!",
        "participant_tags": ["facetoface:0f6b5c1e-user"],
        "require_auth": True,
        "properties": ConversationProperties(
            max_call_duration=900,
            participant_left_timeout=30,
            participant_absent_timeout=120,
            language="portuguese",
            enable_recording=True,
            enable_closed_captions=True,
        ),
    }
    fields_.update(overrides)
    return CreateConversationRequest(**fields_)


# --- requests and answers on the wire ---------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"test_mode": True, "require_auth": None},
        {"persona_id": None, "participant_tags": None, "memory_stores": ["legacy-tag"]},
        {"replica_id": None, "properties": None, "custom_greeting": None},
    ],
)
async def test_create_sends_the_documented_request_and_parses_the_answer(
    client: TavusClient, wire: RecordingTransport, overrides: dict[str, Any]
) -> None:
    conversation = await client.create_conversation(_service_like_create(**overrides))

    exchange = _only(wire)
    assert _request_problems("create_conversation", exchange) == []
    raw = json.loads(exchange.response)
    assert exchange.status == endpoint("create_conversation")["response"]["status"]
    assert body_problems(raw, response_fields("create_conversation"), closed=True) == []
    assert _parse_problems(conversation, raw, list(response_fields("create_conversation"))) == []
    assert conversation.status == ("ended" if overrides.get("test_mode") else "active")
    assert (conversation.meeting_token is not None) == ("meeting_token" in raw)


async def test_create_with_require_auth_gets_a_meeting_token_only_then(
    client: TavusClient,
) -> None:
    private = await client.create_conversation(_service_like_create())
    public = await client.create_conversation(_service_like_create(require_auth=None))

    assert private.meeting_token
    assert public.meeting_token is None
    assert private.meeting_token not in repr(private)


@pytest.mark.parametrize("verbose", [False, True])
async def test_get_conversation(
    client: TavusClient, sim: SimServer, wire: RecordingTransport, verbose: bool
) -> None:
    created = await client.create_conversation(_service_like_create(require_auth=None))
    sim.join(created.conversation_id)
    sim.say(created.conversation_id, "Hello")
    await client.end_conversation(created.conversation_id)
    wire.exchanges.clear()

    details = await client.get_conversation(created.conversation_id, verbose=verbose)

    exchange = _only(wire)
    assert _request_problems("get_conversation", exchange) == []
    raw = json.loads(exchange.response)
    documented = list(response_fields("get_conversation"))
    assert _parse_problems(details, raw, documented) == []
    if verbose:
        assert details.shutdown_reason == raw["shutdown_reason"]
        assert details.transcript == raw["transcript"]
        assert [e.event_type for e in details.events] == [e["event_type"] for e in raw["events"]]
    else:
        assert (details.events, details.transcript) == ([], None)


async def test_list_conversations(client: TavusClient, wire: RecordingTransport) -> None:
    await client.create_conversation(_service_like_create())
    await client.create_conversation(_service_like_create(test_mode=True))
    wire.exchanges.clear()

    page = await client.list_conversations(status=TavusStatus.active, limit=100, page=1)

    exchange = _only(wire)
    assert _request_problems("list_conversations", exchange) == []
    raw = json.loads(exchange.response)
    assert page.total_count == raw["total_count"] == 1
    for parsed, item in zip(page.data, raw["data"], strict=True):
        assert _parse_problems(parsed, item, list(response_fields("get_conversation"))) == []


async def test_end_and_delete_conversation(client: TavusClient, wire: RecordingTransport) -> None:
    created = await client.create_conversation(_service_like_create())
    wire.exchanges.clear()

    await client.end_conversation(created.conversation_id)
    await client.delete_conversation(created.conversation_id, hard=True)

    end, delete = wire.exchanges
    assert _request_problems("end_conversation", end) == []
    assert end.body == b""
    assert _request_problems("delete_conversation", delete) == []
    assert delete.query == {"hard": "true"}
    assert delete.status == endpoint("delete_conversation")["response"]["status"]


async def test_verify_api_key_is_a_documented_read(
    client: TavusClient, wire: RecordingTransport
) -> None:
    await client.verify_api_key()

    assert _request_problems("list_personas", _only(wire)) == []


async def test_get_persona_and_replica(client: TavusClient, wire: RecordingTransport) -> None:
    persona = await client.get_persona("p0000default")
    replica = await client.get_replica("r0000default")

    persona_exchange, replica_exchange = wire.exchanges
    assert _request_problems("get_persona", persona_exchange) == []
    assert _request_problems("get_replica", replica_exchange) == []
    raw_persona = json.loads(persona_exchange.response)
    raw_replica = json.loads(replica_exchange.response)
    assert _parse_problems(persona, raw_persona, list(response_fields("get_persona"))) == []
    assert _parse_problems(replica, raw_replica, list(response_fields("get_replica"))) == []
    assert persona.perception_model == raw_persona["layers"]["perception"]["perception_model"]
    assert replica.is_ready


async def test_memory_stores_list_by_tag_and_delete(
    client: TavusClient, sim: SimServer, wire: RecordingTransport
) -> None:
    tag = "facetoface:user-1"
    await client.create_conversation(_service_like_create(participant_tags=[tag]))
    await client.create_conversation(_service_like_create(participant_tags=["facetoface:other"]))
    wire.exchanges.clear()

    page = await client.list_memory_stores(participant_tag=tag)
    for store in page.data:
        await client.delete_memory_store(store.memory_store_id)

    listing, *deletes = wire.exchanges
    assert _request_problems("list_memory_stores", listing) == []
    raw = json.loads(listing.response)
    assert [s.memory_store_id for s in page.data] == [s["memory_store_id"] for s in raw["data"]]
    assert [s.participant_tag for s in page.data] == [tag]
    assert len(deletes) == 1
    assert _request_problems("delete_memory_store", deletes[0]) == []
    assert deletes[0].status == endpoint("delete_memory_store")["response"]["status"]
    remaining = {store["participant_tag"] for store in sim.memory()["memory_stores"]}
    assert remaining == {"facetoface:other"}
    with pytest.raises(TavusNotFound):
        await client.delete_memory_store(page.data[0].memory_store_id)


# --- documented errors, as the client classifies them ------------------------------------------


async def test_the_documented_401_is_an_auth_error(sim: SimServer) -> None:
    async with TavusClient(sim.api_url, "tvsk_wrong", retry_attempts=3) as wrong:
        with pytest.raises(TavusAuthError) as caught:
            await wrong.verify_api_key()
    assert caught.value.status_code == contract()["errors"]["unauthorised"]["status"]
    assert "tvsk_wrong" not in str(caught.value)


async def test_the_documented_unknown_conversation_is_not_found(client: TavusClient) -> None:
    with pytest.raises(TavusNotFound):
        await client.get_conversation("cnothere")
    with pytest.raises(TavusNotFound):
        await client.end_conversation("cnothere")


async def test_the_documented_concurrency_answer_carries_a_retry_after(
    client: TavusClient, sim: SimServer
) -> None:
    sim.set_config(concurrency_limit=0)

    with pytest.raises(TavusConcurrencyLimit) as caught:
        await client.create_conversation(_service_like_create())
    assert caught.value.retry_after_seconds > 0


async def test_unknown_persona_and_replica_are_not_found(client: TavusClient) -> None:
    with pytest.raises(TavusNotFound):
        await client.get_persona("pnothere")
    with pytest.raises(TavusNotFound):
        await client.get_replica("rnothere")


# --- the documented example answers, parsed -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "example", "model"),
    [
        ("create_conversation", "example_response", Conversation),
        ("get_conversation", "example_verbose_response", ConversationDetails),
        ("get_persona", "example_response", Persona),
        ("get_replica", "example_response", Replica),
    ],
)
def test_documented_examples_parse_field_for_field(
    name: str, example: str, model: type[BaseModel]
) -> None:
    raw = endpoint(name)[example]
    assert body_problems(raw, response_fields(name), closed=False) == []

    parsed = model.model_validate(raw)

    assert _parse_problems(parsed, raw, list(response_fields(name))) == []


def test_documented_verbose_example_yields_reason_and_transcript() -> None:
    raw = endpoint("get_conversation")["example_verbose_response"]

    details = ConversationDetails.model_validate(raw)

    assert details.shutdown_reason == "participant_left_timeout"
    assert details.transcript is not None
    assert [turn["role"] for turn in details.transcript] == ["system", "user", "assistant"]
    assert details.callback_url == ""


def test_documented_list_examples_parse() -> None:
    conversations = ConversationPage.model_validate(
        endpoint("list_conversations")["example_response"]
    )
    stores = MemoryStorePage.model_validate(endpoint("list_memory_stores")["example_response"])

    assert (len(conversations.data), conversations.total_count) == (1, 123)
    assert [s.memory_store_id for s in stores.data] == ["ms0123456789ab"]
