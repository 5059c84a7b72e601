"""Request serialisation and defensive parsing of Tavus responses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from facetoface.tavus import (
    Conversation,
    ConversationDetails,
    ConversationPage,
    ConversationProperties,
    CreateConversationRequest,
)

CALLBACK = "https://api.example/webhooks/tavus?token=cb-secret-token-123"


def test_create_request_payload_excludes_none_also_in_properties() -> None:
    req = CreateConversationRequest(
        persona_id="pcb7a34da5fe",
        callback_url=CALLBACK,
        conversation_name="session-1",
        properties=ConversationProperties(max_call_duration=900, participant_left_timeout=0),
    )
    assert req.to_payload() == {
        "pal_id": "pcb7a34da5fe",
        "callback_url": CALLBACK,
        "conversation_name": "session-1",
        "properties": {"max_call_duration": 900, "participant_left_timeout": 0},
    }


def test_create_request_keeps_false_values() -> None:
    req = CreateConversationRequest(
        replica_id="r90bbd427f71",
        test_mode=False,
        properties=ConversationProperties(enable_recording=False, language="english"),
    )
    assert req.to_payload() == {
        "face_id": "r90bbd427f71",
        "test_mode": False,
        "properties": {"enable_recording": False, "language": "english"},
    }


def test_create_request_forbids_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        CreateConversationRequest(persona_id="p1", personaid="typo")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        ConversationProperties(max_call_duraton=10)  # type: ignore[call-arg]


def test_create_request_needs_replica_or_persona() -> None:
    with pytest.raises(ValidationError, match="replica_id or a persona_id"):
        CreateConversationRequest(conversation_name="x")


@pytest.mark.parametrize("field", ["max_call_duration"])
def test_properties_reject_nonsense_durations(field: str) -> None:
    with pytest.raises(ValidationError):
        ConversationProperties.model_validate({field: 0})


def test_repr_hides_secrets() -> None:
    req = CreateConversationRequest(
        persona_id="p1", callback_url=CALLBACK, conversational_context="private notes"
    )
    assert "cb-secret-token-123" not in repr(req)
    assert "private notes" not in repr(req)
    conv = Conversation.model_validate(
        {
            "conversation_id": "c1",
            "conversation_url": "https://tavus.daily.co/c1",
            "meeting_token": "eyJhbGciOi.secret",
            "callback_url": CALLBACK,
        }
    )
    assert "daily.co" not in repr(conv)
    assert "eyJhbGciOi" not in repr(conv)
    assert "cb-secret-token-123" not in repr(conv)


def test_conversation_tolerates_extra_and_odd_fields() -> None:
    conv = Conversation.model_validate(
        {
            "conversation_id": "c123456",
            "conversation_name": "A Meeting with Hassaan",
            "conversation_url": "https://tavus.daily.co/c123456",
            "status": "active",
            "callback_url": "",
            "created_at": "2025-05-13T06:42:58.291561Z",
            "updated_at": "Tue, 24 Jun 2025 07:01:57 GMT",
            "replica_id": 12345,
            "persona_id": {"unexpected": "object"},
            "brand_new_field": [1, 2, 3],
        }
    )
    assert conv.conversation_id == "c123456"
    assert conv.callback_url == ""
    assert conv.created_at == datetime(2025, 5, 13, 6, 42, 58, 291561, tzinfo=UTC)
    assert conv.updated_at == datetime(2025, 6, 24, 7, 1, 57, tzinfo=UTC)
    assert conv.replica_id == "12345"
    assert conv.persona_id is None
    assert conv.meeting_token is None


def test_conversation_reads_the_current_pal_and_face_names_too() -> None:
    conv = Conversation.model_validate({"conversation_id": "c1", "pal_id": "p1", "face_id": "r1"})
    assert (conv.persona_id, conv.replica_id) == ("p1", "r1")


def test_create_request_sends_the_current_pal_and_face_names() -> None:
    payload = CreateConversationRequest(persona_id="p1", replica_id="r1").to_payload()
    assert payload == {"pal_id": "p1", "face_id": "r1"}


def test_conversation_bad_timestamps_become_none() -> None:
    conv = Conversation.model_validate(
        {"conversation_id": "c1", "created_at": "not a date", "updated_at": [1]}
    )
    assert conv.created_at is None
    assert conv.updated_at is None


def test_conversation_requires_an_id() -> None:
    with pytest.raises(ValidationError):
        Conversation.model_validate({"status": "active"})
    with pytest.raises(ValidationError):
        Conversation.model_validate({"conversation_id": ""})


TRANSCRIPT = [
    {"role": "system", "content": "You are a mentor..."},
    {"role": "user", "content": "Hi.", "timestamp": 1779475660.12},
    {"role": "assistant", "content": "Hello! How can I help?", "inference_id": "inf_abc123"},
]


def test_verbose_details_with_nested_events_and_top_level_fields() -> None:
    details = ConversationDetails.model_validate(
        {
            "conversation_id": "ca4301628cb9",
            "status": "ended",
            "shutdown_reason": "participant_left_timeout",
            "transcript": TRANSCRIPT,
            "events": [
                {
                    "event_type": "system.replica_joined",
                    "message_type": "system",
                    "timestamp": "2025-07-11T06:45:47.472000Z",
                    "properties": {"replica_id": "r1"},
                },
                {
                    "event_type": "system.shutdown",
                    "message_type": "system",
                    "timestamp": "2025-07-11T06:48:37.565000Z",
                    "properties": {"shutdown_reason": "end_conversation_endpoint_hit"},
                },
            ],
        }
    )
    assert details.shutdown_reason == "participant_left_timeout"  # top level wins
    assert details.transcript == TRANSCRIPT
    assert [e.event_type for e in details.events] == ["system.replica_joined", "system.shutdown"]
    assert details.events[0].timestamp == datetime(2025, 7, 11, 6, 45, 47, 472000, tzinfo=UTC)
    assert details.events[0].properties == {"replica_id": "r1"}


def test_verbose_details_transcript_and_reason_from_events() -> None:
    details = ConversationDetails.model_validate(
        {
            "conversation_id": "ca4301628cb9",
            "events": [
                {
                    "event_type": "system.shutdown",
                    "properties": {"shutdown_reason": "max_call_duration reached"},
                },
                {
                    "event_type": "application.transcription_ready",
                    "message_type": "application",
                    "timestamp": 1752216517.566,
                    "properties": {"replica_id": "r1", "transcript": [*TRANSCRIPT, "junk"]},
                },
            ],
        }
    )
    assert details.shutdown_reason == "max_call_duration reached"
    assert details.transcript == TRANSCRIPT  # non-object entries dropped
    assert details.events[1].timestamp is not None


def test_verbose_details_survives_malformed_events() -> None:
    details = ConversationDetails.model_validate(
        {
            "conversation_id": "c1",
            "events": [
                "not an event",
                None,
                {"event_type": ["weird"], "properties": "nope", "timestamp": "garbage"},
                {"event_type": "application.transcription_ready", "properties": {"transcript": 5}},
            ],
        }
    )
    assert len(details.events) == 2
    assert details.events[0].event_type is None
    assert details.events[0].properties == {}
    assert details.events[0].timestamp is None
    assert details.transcript is None
    assert details.shutdown_reason is None


def test_plain_details_have_no_events() -> None:
    details = ConversationDetails.model_validate({"conversation_id": "c1", "events": "n/a"})
    assert details.events == []
    assert details.transcript is None


def test_page_parsing_drops_unusable_entries() -> None:
    page = ConversationPage.model_validate(
        {
            "data": [
                {"conversation_id": "c1", "status": "active"},
                {"status": "active"},
                "junk",
                {"conversation_id": "c2", "status": "ended"},
            ],
            "total_count": 123,
        }
    )
    assert [c.conversation_id for c in page.data] == ["c1", "c2"]
    assert page.total_count == 123


@pytest.mark.parametrize(("total", "expected"), [(None, 1), ("7", 7), (-1, 1), (True, 1)])
def test_page_total_count_fallbacks(total: object, expected: int) -> None:
    raw: dict[str, object] = {"data": [{"conversation_id": "c1"}]}
    if total is not None:
        raw["total_count"] = total
    assert ConversationPage.model_validate(raw).total_count == expected
