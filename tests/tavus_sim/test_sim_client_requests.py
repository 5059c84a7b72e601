"""The requests that clients written for Tavus send, replayed against the simulator as those
clients shape them (Tavus's CLI, Pipecat's transport, LiveKit's plugin)."""

from __future__ import annotations

import httpx

from tavus_sim import SimServer


def test_tavus_cli_create_with_chat_and_meeting_url(api: httpx.Client, sim: SimServer) -> None:
    # tavus-cli keeps persona_id/replica_id on /v2/conversations and sends its extra fields.
    pals = api.get("/pals", params={"limit": 100, "page": 1})
    assert pals.status_code == 200
    persona_id = pals.json()["data"][0]["persona_id"]

    created = api.post(
        "/conversations",
        json={
            "persona_id": persona_id,
            "conversation_name": "cli chat",
            "chat": True,
            "meeting_url": "https://meet.google.com/abc-defg-hij",
        },
    )

    assert created.status_code == 200, created.text
    assert created.json()["status"] == "active"
    ended = api.post(f"/conversations/{created.json()['conversation_id']}/end")
    assert ended.status_code == 200


def test_pipecat_looks_the_persona_up_on_every_join_and_leave(
    api: httpx.Client, sim: SimServer
) -> None:
    created = api.post(
        "/conversations",
        json={
            "persona_id": "pcb7a34da5fe",
            "replica_id": "r90bbd427f71",
            "properties": {"participant_left_timeout": 60},
        },
    ).json()
    conversation_id = created["conversation_id"]

    for step in ("join", "leave", "join"):
        persona = api.get("/personas/pcb7a34da5fe")
        assert persona.status_code == 200
        assert persona.json()["persona_name"]
        if step == "join":
            sim.join(conversation_id)
        else:
            sim.leave(conversation_id)


def test_livekit_plugin_create_with_pal_and_face_ids(api: httpx.Client) -> None:
    created = api.post(
        "/conversations",
        json={
            "pal_id": "pb87e71797da",  # LiveKit's default stock PAL: adopted here
            "face_id": "r90bbd427f71",
            "conversation_name": "LiveKit Agents",
            "properties": {
                "livekit_ws_url": "wss://example.livekit.cloud",
                "livekit_room_token": "lk-room-token",
            },
        },
    )

    assert created.status_code == 200, created.text
    got = api.get(f"/conversations/{created.json()['conversation_id']}").json()
    assert (got["persona_id"], got["replica_id"]) == ("pb87e71797da", "r90bbd427f71")
