"""Callbacks: envelope, event sequence, payloads, retries and the delivery controls."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import httpx

from tavus_sim import SimServer
from tests.support.eventually import eventually_blocking

POST_CALL = [
    "system.shutdown",
    "application.transcription_ready",
    "application.perception_analysis",
]
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _live_call(
    api: httpx.Client, create: Any, receiver: Any, sim: SimServer, context: str, **fields: Any
) -> str:
    """Create a conversation, wait for the replica, talk once, end it; return its id."""
    conversation_id: str = create(
        callback_url=receiver.url(), conversational_context=context, **fields
    )["conversation_id"]
    eventually_blocking(
        lambda: receiver.has(conversation_id, "system.replica_joined"),
        what="system.replica_joined arrived",
    )
    sim.join(conversation_id, "Ana")
    sim.say(conversation_id, "I slept badly again")
    api.post(f"/conversations/{conversation_id}/end")
    return conversation_id


def test_end_delivers_the_tavus_event_sequence(
    api: httpx.Client, create: Any, receiver: Any, sim: SimServer, mentor_context: str
) -> None:
    conversation_id = _live_call(api, create, receiver, sim, mentor_context)

    types = eventually_blocking(lambda: receiver.arrived(conversation_id, 4), what="4 callbacks")
    assert types == ["system.replica_joined", *POST_CALL]
    payloads = {p["event_type"]: p for p in receiver.payloads(conversation_id)}
    for event_type, payload in payloads.items():
        assert set(payload) == {
            "properties",
            "conversation_id",
            "webhook_url",
            "event_type",
            "message_type",
            "timestamp",
        }
        assert payload["message_type"] == event_type.split(".")[0]
        assert payload["webhook_url"] == receiver.url()
        assert ISO_Z.match(payload["timestamp"])
    assert payloads["system.replica_joined"]["properties"] == {"replica_id": "r1"}
    assert payloads["system.shutdown"]["properties"] == {
        "replica_id": "r1",
        "shutdown_reason": "end_conversation_endpoint_hit",
    }
    assert payloads["application.perception_analysis"]["properties"]["analysis"]


def test_transcript_starts_with_system_prompt_containing_the_context(
    api: httpx.Client, create: Any, receiver: Any, sim: SimServer, mentor_context: str
) -> None:
    conversation_id = _live_call(api, create, receiver, sim, mentor_context)
    eventually_blocking(lambda: receiver.arrived(conversation_id, 4), what="4 callbacks")

    ready = next(
        p
        for p in receiver.payloads(conversation_id)
        if p["event_type"] == "application.transcription_ready"
    )
    transcript = ready["properties"]["transcript"]
    assert ready["properties"]["replica_id"] == "r1"
    assert transcript[0]["role"] == "system"
    assert mentor_context in transcript[0]["content"]
    roles = [entry["role"] for entry in transcript[1:]]
    assert roles == ["assistant", "user", "assistant"]  # greeting, utterance, reply
    user, answer = transcript[2], transcript[3]
    assert user["content"] == "I slept badly again"
    assert {"timestamp", "seconds_from_start", "duration"} <= set(user)
    assert "inference_id" not in user
    assert answer["inference_id"].startswith("inf_")
    assert isinstance(answer["timestamp"], float)


def test_recording_ready_only_with_enable_recording(
    api: httpx.Client, create: Any, receiver: Any, sim: SimServer, mentor_context: str
) -> None:
    with_recording = _live_call(
        api,
        create,
        receiver,
        sim,
        mentor_context,
        properties={"enable_recording": True, "recording_s3_bucket_name": "my-bucket"},
    )
    without = _live_call(api, create, receiver, sim, mentor_context)
    assert sim.drain()

    assert receiver.event_types(with_recording)[-1] == "application.recording_ready"
    assert "application.recording_ready" not in receiver.event_types(without)
    recording = receiver.payloads(with_recording)[-1]["properties"]
    assert recording["bucket_name"] == "my-bucket"
    assert recording["storage_provider"] == "s3"
    assert recording["storage_uri"] == f"s3://my-bucket/{recording['s3_key']}"
    assert isinstance(recording["duration"], int)


def test_verbose_get_returns_events_shutdown_reason_and_transcript(
    api: httpx.Client, create: Any, receiver: Any, sim: SimServer, mentor_context: str
) -> None:
    conversation_id = _live_call(api, create, receiver, sim, mentor_context)

    data = api.get(f"/conversations/{conversation_id}", params={"verbose": "true"}).json()

    assert [e["event_type"] for e in data["events"]] == ["system.replica_joined", *POST_CALL]
    assert set(data["events"][0]) == {
        "event_type",
        "message_type",
        "timestamp",
        "properties",
        "conversation_id",
    }
    assert data["shutdown_reason"] == "end_conversation_endpoint_hit"
    assert data["transcript"][0]["role"] == "system"
    plain = api.get(f"/conversations/{conversation_id}").json()
    assert "events" not in plain


def test_verbose_get_of_active_conversation_has_no_transcript_yet(
    api: httpx.Client, create: Any
) -> None:
    conversation_id = create()["conversation_id"]

    data = api.get(f"/conversations/{conversation_id}", params={"verbose": "true"}).json()

    assert "transcript" not in data
    assert "shutdown_reason" not in data


def test_retries_on_server_errors(
    api: httpx.Client, create: Any, receiver: Any, sim: SimServer
) -> None:
    sim.set_config(replica_join_delay_ms=60_000)  # keep replica_joined out of the way
    conversation_id = create(callback_url=receiver.url())["conversation_id"]
    receiver.fail_next = 2

    api.post(f"/conversations/{conversation_id}/end")
    assert sim.drain()

    assert receiver.event_types(conversation_id) == POST_CALL
    deliveries = sim.conversation(conversation_id)["deliveries"]
    assert deliveries[0] == {**deliveries[0], "outcome": "delivered", "attempts": 3}
    assert all(d["attempts"] == 1 for d in deliveries[1:])


def test_gives_up_after_max_attempts_on_connection_errors(
    api: httpx.Client, create: Any, sim: SimServer
) -> None:
    sim.set_config(replica_join_delay_ms=60_000, callback_max_attempts=2)
    conversation_id = create(callback_url="http://127.0.0.1:9/unreachable")["conversation_id"]

    api.post(f"/conversations/{conversation_id}/end")
    assert sim.drain()

    deliveries = sim.conversation(conversation_id)["deliveries"]
    assert [(d["outcome"], d["attempts"]) for d in deliveries] == [("failed", 2)] * 3


def test_duplicate_delivers_every_callback_n_times(
    api: httpx.Client, create: Any, receiver: Any, sim: SimServer
) -> None:
    sim.set_config(callback_duplicate=3)
    conversation_id = create(callback_url=receiver.url())["conversation_id"]
    eventually_blocking(lambda: receiver.arrived(conversation_id, 3), what="3 callbacks")

    api.post(f"/conversations/{conversation_id}/end")
    assert sim.drain()

    counts = Counter(receiver.event_types(conversation_id))
    assert counts == {"system.replica_joined": 3, **dict.fromkeys(POST_CALL, 3)}


def test_shuffle_reorders_post_shutdown_callbacks(
    api: httpx.Client, create: Any, receiver: Any, sim: SimServer
) -> None:
    sim.set_config(
        callback_shuffle=True, callback_seed=7, callback_duplicate=2, replica_join_delay_ms=60_000
    )
    orders = []
    for _ in range(3):
        conversation_id = create(callback_url=receiver.url())["conversation_id"]
        api.post(f"/conversations/{conversation_id}/end")
        assert sim.drain()
        orders.append(receiver.event_types(conversation_id))

    in_order = [t for t in POST_CALL for _ in range(2)]
    assert all(sorted(order) == sorted(in_order) for order in orders)
    assert any(order != in_order for order in orders)


def test_drop_by_event_type_still_records_the_event(
    api: httpx.Client, create: Any, receiver: Any, sim: SimServer
) -> None:
    sim.set_config(callback_drop_events=["application.transcription_ready"])
    conversation_id = create(callback_url=receiver.url())["conversation_id"]
    eventually_blocking(lambda: receiver.arrived(conversation_id, 1), what="a callback")

    api.post(f"/conversations/{conversation_id}/end")
    assert sim.drain()

    assert "application.transcription_ready" not in receiver.event_types(conversation_id)
    verbose = api.get(f"/conversations/{conversation_id}", params={"verbose": "true"}).json()
    assert "application.transcription_ready" in [e["event_type"] for e in verbose["events"]]
    outcomes = {
        d["event_type"]: d["outcome"] for d in sim.conversation(conversation_id)["deliveries"]
    }
    assert outcomes["application.transcription_ready"] == "dropped"


def test_drop_probability_with_seed(
    api: httpx.Client, create: Any, receiver: Any, sim: SimServer
) -> None:
    sim.set_config(callback_drop_probability=1.0, callback_seed=1)
    conversation_id = create(callback_url=receiver.url())["conversation_id"]
    api.post(f"/conversations/{conversation_id}/end")
    assert sim.drain()
    assert receiver.event_types(conversation_id) == []

    sim.set_config(callback_drop_probability=0.5, callback_seed=3, callback_duplicate=10)
    conversation_id = create(callback_url=receiver.url())["conversation_id"]
    api.post(f"/conversations/{conversation_id}/end")
    assert sim.drain()
    assert 0 < len(receiver.event_types(conversation_id)) < 30


def test_callback_delay(api: httpx.Client, create: Any, receiver: Any, sim: SimServer) -> None:
    sim.set_config(callback_delay_ms=300, replica_join_delay_ms=0)
    conversation_id = create(callback_url=receiver.url())["conversation_id"]

    assert receiver.event_types(conversation_id) == []
    eventually_blocking(lambda: receiver.arrived(conversation_id, 1), within=2, what="a callback")


def test_forced_shutdown_reason(
    http: httpx.Client, api: httpx.Client, create: Any, receiver: Any, sim: SimServer
) -> None:
    conversation_id = create(callback_url=receiver.url())["conversation_id"]

    sim.shutdown(conversation_id, "exception_encountered_during_conversation_startup")
    assert sim.drain()

    shutdown = next(
        p for p in receiver.payloads(conversation_id) if p["event_type"] == "system.shutdown"
    )
    assert (
        shutdown["properties"]["shutdown_reason"]
        == "exception_encountered_during_conversation_startup"
    )
    with_error = http.post(
        f"{sim.base_url}/_sim/conversations/{conversation_id}/shutdown", json={"reason": "again"}
    )
    assert with_error.status_code == 409


def test_no_recording_ready_when_nobody_joined(
    api: httpx.Client, create: Any, receiver: Any, sim: SimServer
) -> None:
    conversation_id = create(callback_url=receiver.url(), properties={"enable_recording": True})[
        "conversation_id"
    ]
    eventually_blocking(
        lambda: receiver.has(conversation_id, "system.replica_joined"),
        what="system.replica_joined arrived",
    )
    api.post(f"/conversations/{conversation_id}/end")
    assert sim.drain()

    assert receiver.event_types(conversation_id) == ["system.replica_joined", *POST_CALL]


def test_perception_analysis_only_when_the_persona_has_a_perception_model(
    api: httpx.Client, create: Any, receiver: Any, sim: SimServer, mentor_context: str
) -> None:
    created = api.post(
        "/personas",
        json={
            "persona_name": "No eyes",
            "system_prompt": "You mentor.",
            "layers": {"perception": {"perception_model": "off"}},
        },
    )
    assert created.status_code == 200, created.text
    blind = created.json()["persona_id"]

    without = _live_call(api, create, receiver, sim, mentor_context, persona_id=blind)
    with_raven = _live_call(api, create, receiver, sim, mentor_context, persona_id="p0000default")
    assert sim.drain()

    assert receiver.event_types(without) == [
        "system.replica_joined",
        "system.shutdown",
        "application.transcription_ready",
    ]
    assert receiver.event_types(with_raven) == ["system.replica_joined", *POST_CALL]
    assert sim.conversation(without)["perception_model"] == "off"
    assert sim.conversation(with_raven)["perception_model"] == "raven-0"
