"""What the benchmark sends: the mentor's Tavus ids and the callbacks Tavus would post."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

PERSONA_ID = "p0000bench00"
REPLICA_ID = "r0000bench00"

JSON_HEADER = b"content-type: application/json\r\n"
#: The callbacks Tavus posts after a conversation ends, in the order it posts them.
POST_CALL = (
    "system.shutdown",
    "application.transcription_ready",
    "application.perception_analysis",
)

TRANSCRIPT = [
    {"role": "system", "content": "You are «Sage», meeting «Bench User» … (context)"},
    {"role": "assistant", "content": "Hello! I have your context. How was your morning?"},
    {"role": "user", "content": "I slept badly and work is piling up."},
    {"role": "assistant", "content": "Let's connect that to your goal of meditating daily."},
    {"role": "user", "content": "Ok, ten minutes tomorrow at seven."},
    {"role": "assistant", "content": "Great. I'll ask you about it next time."},
]


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def callback_event(conversation_id: str, event_type: str) -> dict[str, Any]:
    """A Tavus callback body of `event_type` for `conversation_id`."""
    properties: dict[str, Any]
    if event_type == "system.replica_joined":
        properties = {"replica_id": REPLICA_ID}
    elif event_type == "system.shutdown":
        properties = {"replica_id": REPLICA_ID, "shutdown_reason": "end_conversation_endpoint_hit"}
    elif event_type == "application.transcription_ready":
        t0 = time.time() - 120
        properties = {
            "replica_id": REPLICA_ID,
            "transcript": [TRANSCRIPT[0]]
            + [
                {**turn, "timestamp": round(t0 + 10 * i, 2), "seconds_from_start": 10.0 * i}
                for i, turn in enumerate(TRANSCRIPT[1:], start=1)
            ],
        }
    elif event_type == "application.perception_analysis":
        properties = {
            "replica_id": REPLICA_ID,
            "analysis": "The participant joined from a kitchen, calm, spoke 3 times.",
        }
    else:
        properties = {}
    return {
        "properties": properties,
        "conversation_id": conversation_id,
        "webhook_url": "http://127.0.0.1/hook",
        "event_type": event_type,
        "message_type": "system" if event_type.startswith("system.") else "application",
        "timestamp": _now_iso(),
    }
