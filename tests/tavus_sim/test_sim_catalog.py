"""Personas (PALs) and replicas (Faces): seeded ids, shapes, aliases, create/delete, and how a
conversation's persona and replica are chosen."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from facetoface.config import DEV_PERSONA_ID, DEV_REPLICA_ID
from tavus_sim import SimServer

PERSONA_FIELDS = {
    "persona_id",
    "persona_name",
    "persona_type",
    "pipeline_mode",
    "system_prompt",
    "context",
    "default_replica_id",
    "document_ids",
    "document_tags",
    "layers",
    "created_at",
    "updated_at",
}
REPLICA_FIELDS = {
    "replica_id",
    "replica_name",
    "thumbnail_video_url",
    "training_progress",
    "status",
    "created_at",
}


@pytest.mark.parametrize("collection", ["personas", "pals"])
@pytest.mark.parametrize("persona_id", [DEV_PERSONA_ID, "p0000default"])
def test_the_ids_the_service_uses_exist(
    api: httpx.Client, collection: str, persona_id: str
) -> None:
    # The development defaults and the test suite's defaults (tests/conftest.py).
    response = api.get(f"/{collection}/{persona_id}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == PERSONA_FIELDS
    assert body["persona_id"] == persona_id
    assert body["layers"]["perception"]["perception_model"].startswith("raven-")


@pytest.mark.parametrize("collection", ["replicas", "faces"])
@pytest.mark.parametrize("replica_id", [DEV_REPLICA_ID, "r0000default"])
def test_the_replicas_the_service_uses_exist(
    api: httpx.Client, collection: str, replica_id: str
) -> None:
    response = api.get(f"/{collection}/{replica_id}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == REPLICA_FIELDS
    assert (body["replica_id"], body["status"], body["training_progress"]) == (
        replica_id,
        "completed",
        "100/100",
    )
    verbose = api.get(f"/{collection}/{replica_id}", params={"verbose": "true"}).json()
    assert verbose["replica_type"] in ("user", "system")


def test_list_personas_pages_and_filters_by_type(api: httpx.Client) -> None:
    everything = api.get("/personas").json()
    assert everything["total_count"] == 2
    assert {p["persona_id"] for p in everything["data"]} == {DEV_PERSONA_ID, "p0000default"}

    system = api.get("/pals", params={"persona_type": "system"}).json()
    assert [p["persona_id"] for p in system["data"]] == [DEV_PERSONA_ID]
    page_two = api.get("/personas", params={"limit": 1, "page": 2}).json()
    assert len(page_two["data"]) == 1
    assert page_two["total_count"] == 2
    assert api.get("/personas", params={"persona_type": "robots"}).status_code == 400


def test_list_replicas_filters_by_ids_and_type(api: httpx.Client) -> None:
    chosen = api.get("/replicas", params={"replica_ids": f"r0000default,{DEV_REPLICA_ID}"}).json()
    assert chosen["total_count"] == 2
    assert all("replica_type" not in r for r in chosen["data"])

    system = api.get("/faces", params={"replica_type": "system", "verbose": "true"}).json()
    assert [(r["replica_id"], r["replica_type"]) for r in system["data"]] == [
        (DEV_REPLICA_ID, "system")
    ]


@pytest.mark.parametrize(
    ("path", "message"),
    [("/personas/pnothere", "Persona not found"), ("/faces/rnothere", "Replica not found")],
)
def test_unknown_persona_or_replica_is_404(api: httpx.Client, path: str, message: str) -> None:
    response = api.get(path)

    assert response.status_code == 404
    assert response.json() == {"message": message}


def test_create_get_and_delete_a_persona_through_either_name(api: httpx.Client) -> None:
    created = api.post(
        "/pals",
        json={
            "persona_name": "Coach",
            "system_prompt": "You coach.",
            "default_replica_id": "r0000default",
            "layers": {"llm": {"model": "tavus-gpt-oss"}},
            "objectives_id": "o123",
        },
    )
    assert created.status_code == 200, created.text
    assert set(created.json()) == {"persona_id", "persona_name", "created_at"}
    persona_id = created.json()["persona_id"]

    got = api.get(f"/personas/{persona_id}").json()
    assert got["persona_name"] == "Coach"
    assert got["persona_type"] == "user"
    assert got["objectives_id"] == "o123"  # unknown fields are kept and echoed
    assert got["layers"]["llm"] == {"model": "tavus-gpt-oss"}
    assert got["layers"]["perception"] == {"perception_model": "raven-1"}

    assert api.delete(f"/personas/{persona_id}").status_code == 204
    assert api.get(f"/pals/{persona_id}").status_code == 404
    assert api.delete(f"/personas/{persona_id}").status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"persona_name": "x"}, "system_prompt"),
        ({"system_prompt": "x", "layers": {"perception": {"perception_model": 1}}}, "perception"),
        ({"system_prompt": "x", "layers": "raven"}, "layers"),
        ({"system_prompt": "x", "pipeline_mode": "turbo"}, "pipeline_mode"),
        ({"system_prompt": "x", "default_replica_id": ""}, "default_replica_id"),
    ],
)
def test_create_persona_validates_documented_fields(
    api: httpx.Client, body: dict[str, Any], fragment: str
) -> None:
    response = api.post("/personas", json=body)

    assert response.status_code == 400
    assert fragment in response.json()["message"]


def test_stock_entries_cannot_be_deleted(api: httpx.Client) -> None:
    assert api.delete(f"/personas/{DEV_PERSONA_ID}").status_code == 403
    assert api.delete(f"/replicas/{DEV_REPLICA_ID}").status_code == 403


def test_a_new_replica_trains_before_conversations_can_use_it(
    api: httpx.Client, sim: SimServer
) -> None:
    sim.set_config(replica_training_ms=60_000)
    created = api.post(
        "/replicas", json={"train_video_url": "https://videos.example/me.mp4", "replica_name": "Me"}
    )
    assert created.status_code == 200, created.text
    replica_id = created.json()["replica_id"]
    assert created.json()["status"] == "started"
    assert api.get(f"/faces/{replica_id}").json()["status"] == "started"

    refused = api.post("/conversations", json={"replica_id": replica_id})
    assert refused.status_code == 400
    assert "not ready" in refused.json()["message"]
    assert api.delete(f"/replicas/{replica_id}").status_code == 204


def test_create_replica_needs_a_training_video(api: httpx.Client) -> None:
    assert api.post("/replicas", json={"replica_name": "x"}).status_code == 400
    assert api.post("/replicas", json={"train_video_url": "me.mp4"}).status_code == 400


# --- which persona and replica a conversation gets -----------------------------------------


def test_replica_only_create_uses_the_default_persona(api: httpx.Client, sim: SimServer) -> None:
    created = api.post("/conversations", json={"replica_id": "r0000default"}).json()

    got = api.get(f"/conversations/{created['conversation_id']}").json()
    assert (got["persona_id"], got["replica_id"]) == (sim.config.default_persona_id, "r0000default")


def test_persona_only_create_uses_the_personas_default_replica(api: httpx.Client) -> None:
    created = api.post("/conversations", json={"persona_id": "p0000default"}).json()

    got = api.get(f"/conversations/{created['conversation_id']}").json()
    assert (got["persona_id"], got["replica_id"]) == ("p0000default", "r0000default")


def test_persona_without_default_replica_needs_a_replica_id(api: httpx.Client) -> None:
    persona_id = api.post("/personas", json={"system_prompt": "x"}).json()["persona_id"]

    refused = api.post("/conversations", json={"persona_id": persona_id})
    assert refused.status_code == 400
    assert "replica_id" in refused.json()["message"]
    assert (
        api.post(
            "/conversations", json={"persona_id": persona_id, "replica_id": "r0000default"}
        ).status_code
        == 200
    )


def test_unknown_ids_are_adopted_by_default(api: httpx.Client, sim: SimServer) -> None:
    created = api.post("/conversations", json={"persona_id": "pmyrealone", "replica_id": "rmine"})
    assert created.status_code == 200

    assert api.get("/personas/pmyrealone").json()["persona_type"] == "user"
    assert api.get("/replicas/rmine").json()["status"] == "completed"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"persona_id": "pnothere", "replica_id": "r0000default"}, "Invalid persona_id"),
        ({"pal_id": "pnothere", "replica_id": "r0000default"}, "Invalid persona_id"),
        ({"persona_id": "p0000default", "replica_id": "rnothere"}, "Invalid replica_id"),
        ({"replica_id": "rnothere"}, "Invalid replica_id"),
    ],
)
def test_unknown_ids_are_refused_like_tavus_when_configured(
    api: httpx.Client, sim: SimServer, body: dict[str, Any], message: str
) -> None:
    sim.set_config(unknown_ids="reject")

    response = api.post("/conversations", json=body)

    assert response.status_code == 400
    assert response.json() == {"message": message}
    assert sim.conversations()["created_total"] == 0
    assert api.get("/personas/pnothere").status_code == 404


def test_test_mode_create_is_validated_like_a_live_one(api: httpx.Client, sim: SimServer) -> None:
    sim.set_config(unknown_ids="reject")

    refused = api.post("/conversations", json={"replica_id": "rnothere", "test_mode": True})
    accepted = api.post(
        "/conversations",
        json={"persona_id": "p0000default", "test_mode": True, "participant_tags": ["t"]},
    ).json()

    assert refused.status_code == 400
    assert accepted["status"] == "ended"
    overview = sim.conversations()
    assert overview["active"] == 0
    # No room activity: no memory store is created for its participant tag either.
    assert sim.conversation(accepted["conversation_id"])["memory_store_id"] is None
    assert api.get("/memory-stores", params={"participant_tag": "t"}).json()["data"] == []


def test_faces_and_pals_filter_by_their_own_type_names(api: httpx.Client) -> None:
    faces = api.get("/faces", params={"face_type": "system"}).json()
    assert [face["replica_id"] for face in faces["data"]] == [DEV_REPLICA_ID]
    pals = api.get("/pals", params={"pal_type": "user"}).json()
    assert [pal["persona_id"] for pal in pals["data"]] == ["p0000default"]
    assert api.get("/faces", params={"face_type": "robots"}).status_code == 400


def _coach(api: httpx.Client) -> str:
    created = api.post("/pals", json={"persona_name": "Coach", "system_prompt": "You coach."})
    assert created.status_code == 200, created.text
    persona_id: str = created.json()["persona_id"]
    return persona_id


def test_a_pal_is_patched_with_json_patch(api: httpx.Client) -> None:
    pal_id = _coach(api)

    patched = api.patch(
        f"/pals/{pal_id}",
        json=[
            {"op": "replace", "path": "/system_prompt", "value": "You mentor."},
            {"op": "add", "path": "/layers/llm", "value": {"model": "tavus-gpt-oss"}},
            {"op": "replace", "path": "/layers/perception/perception_model", "value": "off"},
            {"op": "add", "path": "/document_tags/-", "value": "mentoring"},
        ],
    )

    assert patched.status_code == 200, patched.text
    got = api.get(f"/personas/{pal_id}").json()
    assert got == patched.json()
    assert got["system_prompt"] == "You mentor."
    assert got["layers"] == {
        "llm": {"model": "tavus-gpt-oss"},
        "perception": {"perception_model": "off"},
    }
    assert got["document_tags"] == ["mentoring"]
    assert got["persona_name"] == "Coach"


@pytest.mark.parametrize(
    "patch",
    [
        {"op": "replace", "path": "/system_prompt"},
        [{"op": "replace", "path": "/nothing/here", "value": 1}],
        [{"op": "add", "path": "/persona_id", "value": "pother"}],
        [{"op": "remove", "path": "/system_prompt"}],
        [{"op": "replace", "path": "/layers", "value": "raven"}],
        [{"op": "test", "path": "/persona_name", "value": "Someone else"}],
        [{"op": "jump", "path": "/persona_name"}],
    ],
)
def test_a_bad_pal_patch_is_a_400_and_changes_nothing(api: httpx.Client, patch: Any) -> None:
    pal_id = _coach(api)
    before = api.get(f"/pals/{pal_id}").json()

    response = api.patch(f"/pals/{pal_id}", json=patch)

    assert response.status_code == 400, response.text
    assert "message" in response.json()
    assert api.get(f"/pals/{pal_id}").json() == before


def test_stock_and_unknown_pals_cannot_be_patched(api: httpx.Client) -> None:
    change = [{"op": "replace", "path": "/persona_name", "value": "Mine"}]
    assert api.patch(f"/pals/{DEV_PERSONA_ID}", json=change).status_code == 403
    assert api.patch("/pals/pnothere", json=change).status_code == 404


def test_pal_id_and_face_id_name_the_mentor_on_create(api: httpx.Client, sim: SimServer) -> None:
    created = api.post("/conversations", json={"pal_id": "p0000default", "face_id": DEV_REPLICA_ID})
    assert created.status_code == 200, created.text

    stored = sim.conversation(created.json()["conversation_id"])
    assert (stored["persona_id"], stored["replica_id"]) == ("p0000default", DEV_REPLICA_ID)
