"""Memory Stores' pinned memories (what the app pins, the mentor keeps in mind), learned memory
(profile and timeline from ended conversations) and the stores belonging to one account."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tavus_sim import SimServer
from tests.tavus_sim.tool_support import CONTEXT, PAL, ToolReceiver, register, tool_spec

OTHER_KEY = "another-account-key"


def _store(api: httpx.Client, tag: str = "app:u1", **fields: Any) -> str:
    created = api.post("/memory-stores", json={"pal_id": PAL, "participant_tag": tag, **fields})
    assert created.status_code == 200, created.text
    store_id: str = created.json()["memory_store_id"]
    return store_id


def _talk(api: httpx.Client, sim: SimServer, *lines: str, tag: str = "app:u1") -> list[str]:
    created = api.post(
        "/conversations",
        json={"persona_id": PAL, "participant_tags": [tag], "conversational_context": CONTEXT},
    )
    assert created.status_code == 200, created.text
    conversation_id = created.json()["conversation_id"]
    sim.join(conversation_id, "Ana")
    replies = [sim.say(conversation_id, line) for line in lines]
    assert api.post(f"/conversations/{conversation_id}/end").status_code == 200
    return replies


@pytest.fixture
def other(sim: SimServer) -> Iterator[httpx.Client]:
    """A client of another account of the simulated Tavus."""
    sim.set_config(other_api_keys=[OTHER_KEY])
    with httpx.Client(
        base_url=sim.api_url, headers={"x-api-key": OTHER_KEY}, timeout=5.0
    ) as client:
        yield client


def test_pinned_memories_are_added_listed_and_removed_by_id(
    api: httpx.Client, sim: SimServer
) -> None:
    store_id = _store(api)

    pinned = api.post(f"/memory-stores/{store_id}/pinned", json={"memory": "Has a dog, Rex"})
    assert pinned.status_code == 200, pinned.text
    memory = pinned.json()
    assert set(memory) == {"memory_id", "memory", "created_at"}
    assert memory["memory"] == "Has a dog, Rex"
    api.post(f"/memory-stores/{store_id}/pinned", json={"memory": "Prefers mornings"})

    listed = api.get(f"/memory-stores/{store_id}/pinned").json()["data"]
    assert [item["memory"] for item in listed] == ["Has a dog, Rex", "Prefers mornings"]
    store = api.get(f"/memory-stores/{store_id}").json()
    assert store["pinned"] == listed
    assert store["pinned_memories"] == ["Has a dog, Rex", "Prefers mornings"]

    gone = api.delete(f"/memory-stores/{store_id}/pinned/{memory['memory_id']}")
    assert gone.status_code == 204
    again = api.delete(f"/memory-stores/{store_id}/pinned/{memory['memory_id']}")
    assert again.status_code == 404
    listed = api.get(f"/memory-stores/{store_id}/pinned").json()["data"]
    assert [item["memory"] for item in listed] == ["Prefers mornings"]


@pytest.mark.parametrize("body", [{}, {"memory": ""}, {"memory": 3}, {"memory": "x", "y": 1}])
def test_a_malformed_pin_is_a_400(api: httpx.Client, body: dict[str, Any]) -> None:
    store_id = _store(api)

    assert api.post(f"/memory-stores/{store_id}/pinned", json=body).status_code == 400
    assert api.get(f"/memory-stores/{store_id}/pinned").json()["data"] == []


def test_the_mentor_keeps_pinned_memories_in_mind_in_the_next_call_until_unpinned(
    api: httpx.Client, sim: SimServer
) -> None:
    store_id = _store(api)
    rex = api.post(f"/memory-stores/{store_id}/pinned", json={"memory": "my dog is called Rex"})

    [first] = _talk(api, sim, "Hello")
    assert "I keep in mind: «my dog is called Rex»." in first
    [asked] = _talk(api, sim, "What do you remember about me?")
    assert "«my dog is called Rex»" in asked

    api.delete(f"/memory-stores/{store_id}/pinned/{rex.json()['memory_id']}")
    [after] = _talk(api, sim, "Hello")
    assert "Rex" not in after


def test_learned_profile_and_timeline_come_from_ended_conversations(
    api: httpx.Client, sim: SimServer
) -> None:
    _talk(api, sim, "My name is Ana", "I live in Porto", "I love swimming")
    _talk(api, sim, "I live in Lisbon now", "My cat is called Tom")
    store_id = api.get("/memory-stores", params={"participant_tag": "app:u1"}).json()["data"][0][
        "memory_store_id"
    ]

    profile = api.get(f"/memory-stores/{store_id}/learned", params={"type": "profile"}).json()
    assert profile == {
        "memory_store_id": store_id,
        "profile": {
            "name": "Ana",
            "location": "Lisbon now",
            "cat_name": "Tom",
            "likes": ["swimming"],
        },
    }
    timeline = api.get(f"/memory-stores/{store_id}/learned", params={"type": "timeline"}).json()
    assert set(timeline) == {"memory_store_id", "timeline"}
    summaries = [entry["summary"] for entry in timeline["timeline"]["recent_conversations"]]
    assert summaries == [
        "Ana Souza talked about «I live in Lisbon now» and «My cat is called Tom» (2 turns).",
        "Ana Souza talked about «My name is Ana», «I live in Porto» and «I love swimming» "
        "(3 turns).",
    ]
    both = api.get(f"/memory-stores/{store_id}/learned").json()
    assert both["profile"] == profile["profile"]
    assert both["timeline"] == timeline["timeline"]
    assert (
        api.get(f"/memory-stores/{store_id}/learned", params={"type": "other"}).status_code == 400
    )


def test_a_fact_the_app_pinned_through_remember_is_not_also_learned(
    api: httpx.Client, sim: SimServer, tools: ToolReceiver
) -> None:
    register(api, tool_spec("remember", tools.url("remember")))

    _talk(api, sim, "remember that my dog is called Rex", "I live in Porto")

    store_id = api.get("/memory-stores").json()["data"][0]["memory_store_id"]
    learned = api.get(f"/memory-stores/{store_id}/learned").json()
    assert learned["profile"] == {"location": "Porto"}
    assert "Rex" not in str(api.get(f"/memory-stores/{store_id}").json()["learned_memories"])
    assert "Rex" not in str(learned["timeline"])


def test_a_remember_the_app_refused_is_learned_as_usual(
    api: httpx.Client, sim: SimServer, tools: ToolReceiver
) -> None:
    register(api, tool_spec("remember", tools.url("remember")))
    tools.fail_with = 404

    _talk(api, sim, "remember that my dog is called Rex")

    store_id = api.get("/memory-stores").json()["data"][0]["memory_store_id"]
    assert api.get(f"/memory-stores/{store_id}/learned").json()["profile"] == {"dog_name": "Rex"}


def test_another_accounts_store_is_a_403_and_unknown_is_a_404(
    api: httpx.Client, other: httpx.Client
) -> None:
    store_id = _store(api)
    pinned = api.post(f"/memory-stores/{store_id}/pinned", json={"memory": "secret"}).json()

    for method, path, body in [
        ("GET", f"/memory-stores/{store_id}", None),
        ("DELETE", f"/memory-stores/{store_id}", None),
        ("GET", f"/memory-stores/{store_id}/pinned", None),
        ("POST", f"/memory-stores/{store_id}/pinned", {"memory": "x"}),
        ("DELETE", f"/memory-stores/{store_id}/pinned/{pinned['memory_id']}", None),
        ("GET", f"/memory-stores/{store_id}/learned", None),
    ]:
        response = other.request(method, path, json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert "secret" not in response.text
        unknown = other.request(method, path.replace(store_id, "msunknown"), json=body)
        assert unknown.status_code == 404, (method, path)

    assert other.get("/memory-stores").json()["total_count"] == 0
    assert api.get(f"/memory-stores/{store_id}/pinned").json()["data"] == [pinned]


def test_each_account_has_its_own_store_for_the_same_pal_and_tag(
    api: httpx.Client, other: httpx.Client, sim: SimServer
) -> None:
    mine = _store(api)
    theirs = other.post("/memory-stores", json={"pal_id": PAL, "participant_tag": "app:u1"})
    assert theirs.status_code == 200, theirs.text
    api.post(f"/memory-stores/{mine}/pinned", json={"memory": "only mine"})

    created = other.post(
        "/conversations", json={"persona_id": PAL, "participant_tags": ["app:u1"]}
    ).json()
    sim.join(created["conversation_id"])

    assert "only mine" not in sim.say(created["conversation_id"], "Hello")
    assert (
        sim.conversation(created["conversation_id"])["memory_store_id"]
        == (theirs.json()["memory_store_id"])
    )


def test_an_unknown_api_key_is_still_a_401(sim: SimServer, other: httpx.Client) -> None:
    response = httpx.get(f"{sim.api_url}/memory-stores", headers={"x-api-key": "nobody"})
    assert response.status_code == 401
