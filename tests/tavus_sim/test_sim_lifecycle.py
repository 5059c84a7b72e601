"""Timers: participant_absent_timeout, participant_left_timeout, max_call_duration."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tavus_sim import SimServer
from tests.support.eventually import eventually_blocking

# With time_scale=1000 a simulated second lasts a millisecond.
FAST = 1000.0


def _reason(sim: SimServer, conversation_id: str) -> str | None:
    reason: str | None = sim.conversation(conversation_id)["shutdown_reason"]
    return reason


def test_participant_absent_timeout(create: Any, sim: SimServer, receiver: Any) -> None:
    sim.set_config(time_scale=FAST)
    conversation_id = create(
        callback_url=receiver.url(), properties={"participant_absent_timeout": 60}
    )["conversation_id"]

    eventually_blocking(lambda: _reason(sim, conversation_id), what="a shutdown")

    assert _reason(sim, conversation_id) == "participant_absent_timeout"
    eventually_blocking(
        lambda: receiver.has(conversation_id, "system.shutdown"), what="the shutdown callback"
    )


def test_join_cancels_the_absent_timeout(create: Any, sim: SimServer) -> None:
    sim.set_config(time_scale=FAST)
    conversation_id = create(properties={"participant_absent_timeout": 300})["conversation_id"]
    sim.join(conversation_id)

    time.sleep(0.4)  # time passing, not an event: past the 300 ms timer, nothing ended

    assert sim.conversation(conversation_id)["status"] == "active"


def test_participant_left_timeout_zero_ends_at_once(create: Any, sim: SimServer) -> None:
    conversation_id = create(properties={"participant_left_timeout": 0})["conversation_id"]
    participant = sim.join(conversation_id, "Ana")["participant_id"]

    left = sim.leave(conversation_id, participant)

    assert left["status"] == "ended"
    assert _reason(sim, conversation_id) == "participant_left_timeout"


def test_participant_left_timeout_waits_and_rejoin_cancels_it(create: Any, sim: SimServer) -> None:
    sim.set_config(time_scale=FAST)
    conversation_id = create(properties={"participant_left_timeout": 300})["conversation_id"]
    sim.join(conversation_id)
    sim.leave(conversation_id)
    sim.join(conversation_id)  # back before the timeout: the call goes on

    time.sleep(0.4)  # time passing, not an event: past the 300 ms timer, nothing ended
    assert sim.conversation(conversation_id)["status"] == "active"

    sim.leave(conversation_id)
    assert sim.conversation(conversation_id)["status"] == "active"
    eventually_blocking(
        lambda: _reason(sim, conversation_id) == "participant_left_timeout",
        what="the left timeout's shutdown",
    )


def test_left_timeout_waits_for_the_last_participant(create: Any, sim: SimServer) -> None:
    conversation_id = create(properties={"participant_left_timeout": 0})["conversation_id"]
    first = sim.join(conversation_id, "Ana")["participant_id"]
    sim.join(conversation_id, "Bea")

    assert sim.leave(conversation_id, first)["status"] == "active"
    assert sim.leave(conversation_id)["status"] == "ended"


def test_max_call_duration(create: Any, sim: SimServer) -> None:
    sim.set_config(time_scale=FAST)
    conversation_id = create(properties={"max_call_duration": 100})["conversation_id"]
    sim.join(conversation_id)

    eventually_blocking(lambda: _reason(sim, conversation_id), what="a shutdown")

    assert _reason(sim, conversation_id) == "max_call_duration"
    assert sim.room_state(conversation_id)["participants"] == []


def test_defaults_from_config_apply_when_properties_are_omitted(
    api: httpx.Client, create: Any, sim: SimServer
) -> None:
    sim.set_config(time_scale=FAST, default_participant_absent_timeout=50)
    conversation_id = create()["conversation_id"]

    eventually_blocking(lambda: _reason(sim, conversation_id), what="a shutdown")

    assert _reason(sim, conversation_id) == "participant_absent_timeout"
    timings = sim.conversation(conversation_id)["timings"]
    assert timings == {
        "max_call_duration": 3600,
        "participant_left_timeout": 0,
        "participant_absent_timeout": 50,
    }


def test_ending_frees_the_slot_after_a_timer_shutdown(
    api: httpx.Client, create: Any, sim: SimServer
) -> None:
    sim.set_config(time_scale=FAST, concurrency_limit=1)
    conversation_id = create(properties={"max_call_duration": 50})["conversation_id"]
    assert api.post("/conversations", json={"replica_id": "r1"}).status_code == 400

    eventually_blocking(lambda: _reason(sim, conversation_id), what="a shutdown")

    assert api.post("/conversations", json={"replica_id": "r1"}).status_code == 200
