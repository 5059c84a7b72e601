"""Tavus callbacks over HTTP: authenticity, storage, every event type, both payload generations.

The simulator's own callbacks are switched off here so each test sends exactly the events it
names, to the callback URL the service gave Tavus.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from facetoface.models import TavusCallbackEvent
from tests.conftest import RunningService
from tests.support.factories import count_rows, session_rows
from tests.support.sessions import given_session, start_quiet

T0 = "2026-11-25T10:00:00.000000Z"
T1 = "2026-11-25T10:00:05.000000Z"
T2 = "2026-11-25T10:03:05.500000Z"


def event(
    conversation_id: str, event_type: str, properties: dict[str, Any], timestamp: str = T1
) -> dict[str, Any]:
    return {
        "properties": properties,
        "conversation_id": conversation_id,
        "webhook_url": "https://example.invalid/hook",
        "event_type": event_type,
        "message_type": "system" if event_type.startswith("system.") else "application",
        "timestamp": timestamp,
    }


async def send(service: RunningService, path: str, payload: Any) -> Any:
    return await service.client.post(path, json=payload)


async def after_start(service: RunningService, session_id: str, seconds: float = 185.5) -> str:
    """A Tavus timestamp `seconds` after the session started (T2's distance from T0): a
    shutdown is stamped after the start, or it ends the session at its start."""
    rows = await session_rows(service.db, session_id)
    started: datetime = rows["conversation"]["start_time"]
    return (started + timedelta(seconds=seconds)).isoformat()


G1_TRANSCRIPT = [
    {"role": "system", "content": "You are a mentor. Context: Maria Silva, goals..."},
    {"role": "assistant", "content": "Hi Maria, how was your morning meditation?"},
    {"role": "user", "content": "USER_SPEECH: It went well. VISUAL_SCENE: a kitchen"},
]
G2_TRANSCRIPT = [
    {"role": "system", "content": "You are a mentor. Context: Maria Silva, goals..."},
    {
        "role": "user",
        "content": "Hi.",
        "timestamp": 1779475660.12,
        "seconds_from_start": 4.43,
        "duration": 0.42,
    },
    {
        "role": "assistant",
        "content": "Hello! How can I help?",
        "timestamp": 1779475661.04,
        "seconds_from_start": 5.35,
        "duration": 1.62,
        "inference_id": "inf_abc123",
    },
]


class TestAuthenticity:
    async def test_wrong_token_is_404_and_stores_nothing(self, service: RunningService) -> None:
        s = await start_quiet(service)
        forged = s.callback_path.rsplit("/", 1)[0] + "/" + "A" * 43
        response = await send(service, forged, event(s.conversation_id, "system.shutdown", {}))
        assert response.status_code == 404
        assert response.json()["code"] == "callback_not_found"
        assert await count_rows(service.db, TavusCallbackEvent) == 0
        rows = await session_rows(service.db, s.session_id)
        assert rows["conversation"]["status"] == "active"

    async def test_another_sessions_token_is_rejected(self, service: RunningService) -> None:
        a = await start_quiet(service)
        await service.client.post(
            f"/v1/sessions/{a.session_id}/end", headers=service.auth(a.user_id)
        )
        b = await start_quiet(service)
        # A's row with B's token, and B's row with A's token.
        a_row, a_token = a.callback_path.rsplit("/", 2)[1:]
        b_row, b_token = b.callback_path.rsplit("/", 2)[1:]
        for row, token in ((a_row, b_token), (b_row, a_token)):
            response = await send(
                service,
                f"/v1/callbacks/tavus/{row}/{token}",
                event(b.conversation_id, "system.shutdown", {"shutdown_reason": "x"}),
            )
            assert response.status_code == 404
        assert await count_rows(service.db, TavusCallbackEvent) == 0

    async def test_misbound_conversation_id_is_rejected(self, service: RunningService) -> None:
        s = await start_quiet(service)
        response = await send(
            service, s.callback_path, event("cdifferent0001", "system.shutdown", {})
        )
        assert response.status_code == 404
        assert await count_rows(service.db, TavusCallbackEvent) == 0

    @pytest.mark.parametrize("row", ["not-a-uuid", "5d6f3a52-0c4b-4d7e-9a51-3d1f0f7f9b10"])
    async def test_unknown_callback_url_is_404(self, service: RunningService, row: str) -> None:
        response = await send(
            service, f"/v1/callbacks/tavus/{row}/token", event("c1", "system.shutdown", {})
        )
        assert response.status_code == 404


class TestBadInput:
    @pytest.mark.parametrize(
        "body",
        [
            b"not json",
            b"[1, 2]",
            b'"a string"',
            b"{}",
            b'{"event_type": "system.shutdown"}',
            b'{"conversation_id": "c1"}',
            b'{"conversation_id": "c/../x", "event_type": "system.shutdown"}',
            b'{"conversation_id": "c1", "event_type": "system.shutdown", "properties": [1]}',
            b'{"conversation_id": "c1", "event_type": "system.shutdown", "timestamp": "soon"}',
        ],
    )
    async def test_malformed_body_is_400_and_stores_nothing(
        self, service: RunningService, body: bytes
    ) -> None:
        s = await start_quiet(service)
        response = await service.client.post(
            s.callback_path, content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["code"] == "malformed_callback"
        assert await count_rows(service.db, TavusCallbackEvent) == 0

    async def test_oversized_body_is_413(self, service: RunningService) -> None:
        s = await start_quiet(service)
        huge = event(
            s.conversation_id,
            "application.transcription_ready",
            {"transcript": [{"role": "user", "content": "x" * 1024}] * 3000},
        )
        response = await send(service, s.callback_path, huge)
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"
        assert await count_rows(service.db, TavusCallbackEvent) == 0


class TestEvents:
    async def test_replica_joined_marks_in_progress(self, service: RunningService) -> None:
        s = await start_quiet(service)
        response = await send(
            service,
            s.callback_path,
            event(s.conversation_id, "system.replica_joined", {"replica_id": "r1"}, T0),
        )
        assert response.json() == {"status": "applied"}
        rows = await session_rows(service.db, s.session_id)
        assert rows["daily"]["session_status"] == "in_progress"
        assert (
            rows["conversation"]["replica_joined_at"].isoformat().startswith("2026-11-25T10:00:00")
        )

    @pytest.mark.parametrize("event_type", ["system.pal_joined", "conversation_started"])
    async def test_joined_aliases(self, service: RunningService, event_type: str) -> None:
        s = await start_quiet(service)
        await send(service, s.callback_path, event(s.conversation_id, event_type, {"face_id": "r"}))
        rows = await session_rows(service.db, s.session_id)
        assert rows["daily"]["session_status"] == "in_progress"

    @pytest.mark.parametrize(
        ("reason", "normalised", "status"),
        [
            ("participant_left_timeout", "participant_left_timeout", "completed"),
            ("max_call_duration reached", "max_call_duration", "completed"),
            ("end_conversation_endpoint_hit", "end_conversation_endpoint_hit", "completed"),
            ("participant_absent_timeout reached", "participant_absent_timeout", "interrupted"),
            (
                "exception_encountered_during_conversation_startup",
                "exception_encountered_during_conversation_startup",
                "interrupted",
            ),
            (
                "internal error occurred at step 3",
                "internal error occurred at step 3",
                "interrupted",
            ),
        ],
    )
    async def test_shutdown_closes_both_tables_with_tavus_timing(
        self, service: RunningService, reason: str, normalised: str, status: str
    ) -> None:
        s = await start_quiet(service)
        at = await after_start(service, s.session_id)
        response = await send(
            service,
            s.callback_path,
            event(s.conversation_id, "system.shutdown", {"shutdown_reason": reason}, at),
        )
        assert response.json() == {"status": "applied"}
        rows = await session_rows(service.db, s.session_id)
        conversation, daily = rows["conversation"], rows["daily"]
        assert conversation["status"] == "ended"
        assert conversation["shutdown_reason"] == normalised
        assert conversation["end_time"].isoformat() == at
        assert daily["completed_at"] == conversation["end_time"]
        assert daily["session_status"] == status
        # The user can start again: the session is no longer live.
        again = await service.client.post("/v1/sessions", headers=service.auth(s.user_id))
        assert again.status_code == 201

    @pytest.mark.parametrize("transcript", [G1_TRANSCRIPT, G2_TRANSCRIPT], ids=["G1", "G2"])
    async def test_transcript_kept_whole_and_readable(
        self, service: RunningService, transcript: list[dict[str, Any]]
    ) -> None:
        s = await start_quiet(service)
        response = await send(
            service,
            s.callback_path,
            event(
                s.conversation_id,
                "application.transcription_ready",
                {"replica_id": "r1", "transcript": transcript},
            ),
        )
        assert response.json() == {"status": "applied"}
        rows = await session_rows(service.db, s.session_id)
        assert rows["conversation"]["transcript"] == transcript
        text = rows["daily"]["conversation_transcript"]
        assert "You are a mentor" not in text
        assert "VISUAL_SCENE" not in text
        assert "USER_SPEECH" not in text
        if transcript is G1_TRANSCRIPT:
            assert (
                text == "Mentor: Hi Maria, how was your morning meditation?\n\nUser: It went well."
            )
        else:
            assert text == "User: Hi.\n\nMentor: Hello! How can I help?"

    async def test_transcript_ready_alias_with_a_string(self, service: RunningService) -> None:
        s = await start_quiet(service)
        await send(
            service,
            s.callback_path,
            event(s.conversation_id, "transcript_ready", {"transcript": "We talked."}),
        )
        rows = await session_rows(service.db, s.session_id)
        assert rows["daily"]["conversation_transcript"] == "Transcript: We talked."

    async def test_conversation_ended_alias_closes_the_session(
        self, service: RunningService
    ) -> None:
        s = await start_quiet(service)
        await send(service, s.callback_path, event(s.conversation_id, "conversation_ended", {}))
        rows = await session_rows(service.db, s.session_id)
        assert rows["conversation"]["status"] == "ended"
        assert rows["conversation"]["shutdown_reason"] == "conversation_ended"
        assert rows["daily"]["session_status"] == "completed"

    async def test_recording_perception_and_post_call_actions(
        self, service: RunningService
    ) -> None:
        s = await start_quiet(service)
        for payload in (
            event(
                s.conversation_id,
                "application.recording_ready",
                {
                    "bucket_name": "b",
                    "s3_key": "k.mp4",
                    "duration": 181,
                    "storage_provider": "s3",
                    "storage_uri": "s3://b/k.mp4",
                },
            ),
            event(
                s.conversation_id,
                "application.perception_analysis",
                {"analysis": "The user looked relaxed."},
            ),
            event(
                s.conversation_id,
                "application.post_call_action_executed",
                {"tool_id": "t1", "status": "success", "response": {"ok": True}},
            ),
            event(
                s.conversation_id,
                "application.post_call_action_executed",
                {"tool_id": "t2", "status": "failed"},
            ),
        ):
            assert (await send(service, s.callback_path, payload)).json()["status"] == "applied"
        rows = await session_rows(service.db, s.session_id)
        conversation = rows["conversation"]
        assert conversation["recording"] == {
            "status": "ready",
            "bucket_name": "b",
            "s3_key": "k.mp4",
            "duration": 181,
            "storage_provider": "s3",
            "storage_uri": "s3://b/k.mp4",
        }
        assert conversation["perception_analysis"] == "The user looked relaxed."
        # Stored as a set keyed by each action's digest; the API lists the values.
        assert {a["tool_id"] for a in conversation["post_call_actions"].values()} == {"t1", "t2"}
        metadata = rows["daily"]["session_metadata"]
        assert metadata["perception_analysis"] == "The user looked relaxed."
        assert metadata["recording"]["storage_uri"] == "s3://b/k.mp4"

    async def test_recording_copy_failed_then_ready_keeps_ready(
        self, service: RunningService
    ) -> None:
        s = await start_quiet(service)
        await send(
            service,
            s.callback_path,
            event(s.conversation_id, "application.recording_ready", {"s3_key": "k"}),
        )
        await send(
            service,
            s.callback_path,
            event(
                s.conversation_id,
                "application.recording_copy_failed",
                {"error_code": "DESTINATION_AUTH_FAILED", "s3_key": "k"},
            ),
        )
        rows = await session_rows(service.db, s.session_id)
        assert rows["conversation"]["recording"]["status"] == "ready"

    async def test_unknown_event_is_stored_and_ignored(self, service: RunningService) -> None:
        s = await start_quiet(service)
        before = await session_rows(service.db, s.session_id)
        response = await send(
            service,
            s.callback_path,
            event(s.conversation_id, "application.something_new", {"x": 1}),
        )
        assert response.json() == {"status": "ignored"}
        async with service.db.transaction() as session:
            [stored] = (await session.execute(select(TavusCallbackEvent))).scalars()
        assert stored.outcome == "ignored"
        assert stored.payload["properties"] == {"x": 1}
        after = await session_rows(service.db, s.session_id)
        assert after == before

    async def test_duplicates_are_acknowledged_and_stored_once(
        self, service: RunningService
    ) -> None:
        s = await start_quiet(service)
        payload = event(s.conversation_id, "system.shutdown", {"shutdown_reason": "x"}, T2)
        statuses = [
            (await send(service, s.callback_path, payload)).json()["status"] for _ in range(3)
        ]
        assert statuses == ["applied", "duplicate", "duplicate"]
        assert await count_rows(service.db, TavusCallbackEvent) == 1

    async def test_event_before_the_start_recorded_the_conversation_id(
        self, service: RunningService
    ) -> None:
        """Tavus can call back before phase 3 of the start committed the conversation id."""
        service.sim.set_config(callback_drop_probability=1.0)
        # The row as it looks between Tavus's answer and phase 3.
        given = await given_session(
            service, status="starting", tavus_conversation_id=None, start_time=None
        )
        [conversation] = service.sim.conversations()["conversations"]
        conversation_id = conversation["conversation_id"]
        path = conversation["callback_url"].removeprefix(service.url)
        response = await send(service, path, event(conversation_id, "system.replica_joined", {}))
        assert response.json() == {"status": "applied"}
        rows = await session_rows(service.db, given.session_id)
        assert rows["conversation"]["tavus_conversation_id"] == conversation_id
        assert rows["conversation"]["status"] == "active"
        # Once bound, another conversation id is refused.
        other = await send(service, path, event("cother", "system.shutdown", {}))
        assert other.status_code == 404


class TestWithTheEndCall:
    async def test_shutdown_after_end_refines_the_timing(self, service: RunningService) -> None:
        s = await start_quiet(service)
        ended = await service.client.post(
            f"/v1/sessions/{s.session_id}/end", headers=service.auth(s.user_id)
        )
        assert ended.json()["status"] == "completed"
        at = await after_start(service, s.session_id, 0.5)  # Tavus's own time wins
        response = await send(
            service,
            s.callback_path,
            event(
                s.conversation_id,
                "system.shutdown",
                {"shutdown_reason": "end_conversation_endpoint_hit"},
                at,
            ),
        )
        assert response.json() == {"status": "applied"}
        rows = await session_rows(service.db, s.session_id)
        assert rows["conversation"]["end_time"].isoformat() == at
        assert rows["conversation"]["shutdown_reason"] == "end_conversation_endpoint_hit"

    async def test_end_after_shutdown_is_idempotent(self, service: RunningService) -> None:
        s = await start_quiet(service)
        await send(
            service,
            s.callback_path,
            event(s.conversation_id, "system.shutdown", {"shutdown_reason": "x"}, T2),
        )
        before = await session_rows(service.db, s.session_id)
        ended = await service.client.post(
            f"/v1/sessions/{s.session_id}/end", headers=service.auth(s.user_id)
        )
        assert ended.status_code == 200
        after = await session_rows(service.db, s.session_id)
        assert after == before

    async def test_callback_storm_during_an_end_call(self, service: RunningService) -> None:
        s = await start_quiet(service)
        at = await after_start(service, s.session_id)
        # Tavus's end answers slowly, so the storm lands while the end call is in flight.
        service.sim.set_config(latency_ms=300)
        payloads = [
            event(s.conversation_id, "system.replica_joined", {}, T0),
            event(
                s.conversation_id,
                "system.shutdown",
                {"shutdown_reason": "end_conversation_endpoint_hit"},
                at,
            ),
            event(
                s.conversation_id,
                "application.transcription_ready",
                {"transcript": G2_TRANSCRIPT},
                T2,
            ),
            event(s.conversation_id, "application.perception_analysis", {"analysis": "calm"}, T2),
        ]
        end = asyncio.create_task(
            service.client.post(f"/v1/sessions/{s.session_id}/end", headers=service.auth(s.user_id))
        )
        storm = await asyncio.gather(*(send(service, s.callback_path, p) for p in payloads * 5))
        ended = await end

        assert ended.status_code == 200
        assert all(r.status_code == 200 for r in storm)
        assert await count_rows(service.db, TavusCallbackEvent) == 4
        rows = await session_rows(service.db, s.session_id)
        assert rows["conversation"]["status"] == "ended"
        assert rows["conversation"]["shutdown_reason"] == "end_conversation_endpoint_hit"
        assert rows["conversation"]["end_time"].isoformat() == at
        assert rows["conversation"]["perception_analysis"] == "calm"
        assert rows["daily"]["session_status"] == "completed"
        assert rows["daily"]["conversation_transcript"].startswith("User: Hi.")
