"""Memory Stores, legacy memory tags, and the simulated mentor's recall across conversations."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tavus_sim import SimServer

PERSONA = "p0000default"


def _conversation(api: httpx.Client, **fields: Any) -> str:
    response = api.post("/conversations", json={"persona_id": PERSONA, **fields})
    assert response.status_code == 200, response.text
    conversation_id: str = response.json()["conversation_id"]
    return conversation_id


def _talk(api: httpx.Client, sim: SimServer, *lines: str, **fields: Any) -> tuple[str, list[str]]:
    """A live conversation: join, say `lines`, end. Returns its id and the mentor's replies."""
    conversation_id = _conversation(api, **fields)
    sim.join(conversation_id, "Ana")
    replies = [sim.say(conversation_id, line) for line in lines]
    assert api.post(f"/conversations/{conversation_id}/end").status_code == 200
    return conversation_id, replies


def test_the_mentor_recalls_what_was_said_last_time_with_the_same_tag(
    api: httpx.Client, sim: SimServer
) -> None:
    first, replies = _talk(
        api, sim, "Work is piling up", "I started running again", participant_tags=["app:u1"]
    )
    assert not any("Last time" in reply for reply in replies)

    _, later = _talk(api, sim, "Hi again", "Still here", participant_tags=["app:u1"])

    assert later[0].startswith("Last time you mentioned «I started running again».")
    assert "Last time" not in later[1]  # recalled once, in the first answer


def test_memory_never_crosses_participant_tags(api: httpx.Client, sim: SimServer) -> None:
    _talk(api, sim, "My secret plan", participant_tags=["app:u1"])

    _, other_user = _talk(api, sim, "Hello", participant_tags=["app:u2"])
    _, untagged = _talk(api, sim, "Hello")

    assert "Last time" not in other_user[0]
    assert "secret" not in other_user[0]
    assert "Last time" not in untagged[0]


def test_memory_stores_are_per_persona(api: httpx.Client, sim: SimServer) -> None:
    _talk(api, sim, "About my sister", participant_tags=["app:u1"])

    conversation_id = api.post(
        "/conversations",
        json={"persona_id": "pcb7a34da5fe", "participant_tags": ["app:u1"]},
    ).json()["conversation_id"]
    sim.join(conversation_id)

    assert "Last time" not in sim.say(conversation_id, "Hello")
    assert len(api.get("/memory-stores", params={"participant_tag": "app:u1"}).json()["data"]) == 2


def test_a_conversation_with_a_tag_creates_a_store_that_learns_what_the_user_said(
    api: httpx.Client, sim: SimServer
) -> None:
    conversation_id = _conversation(api, participant_tags=["app:u1"])
    listed = api.get("/memory-stores", params={"participant_tag": "app:u1"}).json()
    assert listed["total_count"] == 1
    store = listed["data"][0]
    assert set(store) == {
        "memory_store_id",
        "pal_id",
        "participant_tag",
        "created_at",
        "updated_at",
    }
    assert (store["pal_id"], store["participant_tag"]) == (PERSONA, "app:u1")

    sim.join(conversation_id)
    sim.say(conversation_id, "I want to sleep before eleven")
    api.post(f"/conversations/{conversation_id}/end")

    full = api.get(f"/memory-stores/{store['memory_store_id']}").json()
    assert full["pinned_memories"] == []
    assert [(m["content"], m["conversation_id"]) for m in full["learned_memories"]] == [
        ("I want to sleep before eleven", conversation_id)
    ]


def test_deleting_the_store_forgets(api: httpx.Client, sim: SimServer) -> None:
    _talk(api, sim, "Something private", participant_tags=["app:u1"])
    store_id = api.get("/memory-stores", params={"participant_tag": "app:u1"}).json()["data"][0][
        "memory_store_id"
    ]

    assert api.delete(f"/memory-stores/{store_id}").status_code == 204
    assert api.get(f"/memory-stores/{store_id}").status_code == 404
    assert api.delete(f"/memory-stores/{store_id}").status_code == 404

    _, replies = _talk(api, sim, "Hello", participant_tags=["app:u1"])
    assert "Something private" not in replies[0]
    fresh = api.get("/memory-stores", params={"participant_tag": "app:u1"}).json()["data"]
    assert [s["memory_store_id"] for s in fresh] != [store_id]


def test_create_store_up_front_with_pinned_memories(api: httpx.Client, sim: SimServer) -> None:
    created = api.post(
        "/memory-stores",
        json={
            "pal_id": PERSONA,
            "participant_tag": "app:u1",
            "pinned_memories": ["Prefers short answers"],
        },
    )
    assert created.status_code == 200, created.text
    assert created.json()["pinned_memories"] == ["Prefers short answers"]
    [pinned] = created.json()["pinned"]
    assert set(pinned) == {"memory_id", "memory", "created_at"}
    assert pinned["memory"] == "Prefers short answers"

    conversation_id = _conversation(api, participant_tags=["app:u1"])
    sim.join(conversation_id)
    assert sim.say(conversation_id, "Hi").startswith("I keep in mind: «Prefers short answers».")
    assert sim.conversation(conversation_id)["memory_store_id"] == created.json()["memory_store_id"]

    again = api.post("/memory-stores", json={"pal_id": PERSONA, "participant_tag": "app:u1"})
    assert again.status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"participant_tag": "t"},
        {"pal_id": PERSONA},
        {"pal_id": PERSONA, "participant_tag": ""},
        {"pal_id": PERSONA, "participant_tag": "t", "pinned_memories": "x"},
    ],
)
def test_create_store_validates_its_body(api: httpx.Client, body: dict[str, Any]) -> None:
    response = api.post("/memory-stores", json=body)

    assert response.status_code == 400
    assert "message" in response.json()


def test_list_filters_by_pal_and_tag(api: httpx.Client) -> None:
    for pal_id, tag in [(PERSONA, "a"), (PERSONA, "b"), ("pcb7a34da5fe", "a")]:
        assert (
            api.post("/memory-stores", json={"pal_id": pal_id, "participant_tag": tag}).status_code
            == 200
        )

    def pairs(**params: str) -> set[tuple[str, str]]:
        data = api.get("/memory-stores", params=params).json()["data"]
        return {(s["pal_id"], s["participant_tag"]) for s in data}

    assert pairs(participant_tag="a") == {(PERSONA, "a"), ("pcb7a34da5fe", "a")}
    assert pairs(pal_id=PERSONA) == {(PERSONA, "a"), (PERSONA, "b")}
    assert pairs(pal_id=PERSONA, participant_tag="b") == {(PERSONA, "b")}
    assert len(pairs()) == 3


def test_legacy_memory_tags_recall_and_stay_out_of_the_api(
    api: httpx.Client, sim: SimServer
) -> None:
    _talk(api, sim, "My dog is called Rex", memory_stores=["anna_p0000default"])

    _, replies = _talk(api, sim, "Hi", memory_stores=["anna_p0000default"])
    _, others = _talk(api, sim, "Hi", memory_stores=["bob_p0000default"])

    assert replies[0].startswith("Last time you mentioned «My dog is called Rex».")
    assert "Rex" not in others[0]
    assert api.get("/memory-stores").json()["total_count"] == 0
    assert "anna_p0000default" in sim.memory()["legacy_tags"]


def test_test_mode_conversations_learn_nothing(api: httpx.Client, sim: SimServer) -> None:
    _conversation(api, participant_tags=["app:u1"], test_mode=True)

    assert api.get("/memory-stores").json()["total_count"] == 0


def test_reset_forgets_memory(api: httpx.Client, sim: SimServer) -> None:
    _talk(api, sim, "x", participant_tags=["app:u1"])
    sim.reset()

    assert api.get("/memory-stores").json()["total_count"] == 0
