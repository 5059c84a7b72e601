"""TavusClient's tool-registry and pinned/learned-memory calls against httpx.MockTransport: the
client's own error handling (what is retried, what is not, what never reaches a log), and the
tolerant parsing of envelopes Tavus does not document. Their behaviour end to end is tested
against the simulator (tests/tools)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from facetoface.tavus import TavusInvalidRequest, TavusNotFound, TavusServerError
from facetoface.tavus.mentor_tools import TOOLS_BY_NAME

SECRET = "s3cret-tool-signing-key-0123456789abcdef"


def definition() -> dict[str, Any]:
    return TOOLS_BY_NAME["remember"].definition("https://app.example", SECRET)


async def test_creating_a_tool_is_not_retried_once_sent(make_client: Any, script: Any) -> None:
    rec = script(httpx.Response(500, json={"message": "boom"}))
    client = make_client(rec, retry_attempts=5)

    with pytest.raises(TavusServerError):
        await client.create_tool(definition())
    assert rec.count == 1, "a retry could register the tool twice"


async def test_a_tools_secret_never_reaches_a_log_or_an_error(
    make_client: Any, script: Any
) -> None:
    rec = script(httpx.Response(400, json={"message": f"bad secret {SECRET}"}))
    client = make_client(rec)

    with capture_logs() as logs, pytest.raises(TavusInvalidRequest) as raised:
        await client.create_tool(definition())

    assert SECRET not in str(raised.value)
    assert SECRET not in repr(logs)


async def test_idempotent_reads_and_attach_are_retried(make_client: Any, script: Any) -> None:
    rec = script(httpx.Response(503), httpx.Response(200, json={"data": []}))
    client = make_client(rec, retry_attempts=3)

    await client.attach_pal_tools("p1", ["t1"])

    assert rec.count == 2
    assert rec.requests[-1].url.path == "/v2/pals/p1/tools"


@pytest.mark.parametrize(
    "body",
    [
        [{"tool_id": "t1", "name": "remember"}, {"name": "no id"}],
        {"data": [{"tool_id": "t1", "name": "remember"}, "junk"]},
        {"tools": [{"tool_id": "t1", "name": "remember"}]},
    ],
)
async def test_tool_lists_in_any_envelope_keep_entries_with_an_id(
    make_client: Any, script: Any, body: Any
) -> None:
    client = make_client(script(httpx.Response(200, json=body)))

    page = await client.list_tools()

    assert [(t.tool_id, t.name) for t in page.data] == [("t1", "remember")]


@pytest.mark.parametrize(
    ("store", "pinned"),
    [
        ({"memory_store_id": "m1", "pinned_memories": ["a fact"]}, [(None, "a fact")]),
        (
            {
                "memory_store_id": "m1",
                "pinned_memories": ["a fact"],
                "pinned": [{"memory_id": "pm1", "memory": "a fact"}],
            },
            [("pm1", "a fact")],
        ),
        ({"memory_store_id": "m1"}, []),
    ],
)
async def test_a_stores_pinned_memories_prefer_those_with_ids(
    make_client: Any, script: Any, store: dict[str, Any], pinned: list[Any]
) -> None:
    client = make_client(script(httpx.Response(200, json=store)))

    details = await client.get_memory_store("m1")

    assert [(p.memory_id, p.memory) for p in details.pinned_memories] == pinned


async def test_forgetting_an_unknown_pinned_memory_is_not_found(
    make_client: Any, script: Any
) -> None:
    client = make_client(script(httpx.Response(404, json={"message": "not found"})))

    with pytest.raises(TavusNotFound):
        await client.delete_pinned_memory("m1", "pm1")


async def test_a_pinned_fact_never_reaches_a_log(make_client: Any, script: Any) -> None:
    fact = "my dog is called Rex and my PIN is 4321"
    client = make_client(script(httpx.Response(500, json={"message": f"echo {fact}"})))

    with capture_logs() as logs, pytest.raises(TavusServerError) as raised:
        await client.pin_memory("m1", fact)

    assert fact not in str(raised.value)
    assert fact not in repr(logs)


async def test_learned_memory_is_only_profile_or_timeline(make_client: Any, script: Any) -> None:
    client = make_client(script(httpx.Response(200, json={"profile": {"dog": "Rex"}})))

    with pytest.raises(ValueError, match="profile or timeline"):
        await client.get_learned_memory("m1", "everything")
    learned = await client.get_learned_memory("m1", "profile")
    assert learned.profile == {"dog": "Rex"}
