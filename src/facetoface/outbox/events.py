"""The app's webhook events: their types, what each carries, and an event's delivery status.

Payloads are thin on purpose: ids, times and statuses, never a name, a goal's text, a
transcript or anything else a person wrote or is (`PAYLOAD_FIELDS` is the whole list, and
`enqueue` refuses anything else). An app that wants more reads it through the API with the
user's token.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    """`webhook_events.event_type`: what happened (the body's `type`)."""

    #: A session became live: its Tavus conversation exists (once per session).
    session_started = "session.started"
    #: A session that started has ended, however it ended (once per session).
    session_ended = "session.ended"
    #: The post-call report of a session is stored and readable.
    session_report_ready = "session.report_ready"
    #: The mentor changed one of the user's goals, or the user undid such a change.
    goal_changed = "goal.changed"


class DeliveryStatus(StrEnum):
    """`webhook_events.status`: where an event's delivery stands."""

    pending = "pending"  # due at `next_attempt_at` (again after a failed attempt)
    delivered = "delivered"  # the app answered 2xx
    failed = "failed"  # not delivered within the retry window (or refused for good: 410)


#: Every field an event's `data` may hold. The session events are written by the database
#: (`outbox/sql/enqueue_session_events.sql`, which builds exactly these); the others by
#: `enqueue`.
PAYLOAD_FIELDS: dict[EventType, frozenset[str]] = {
    EventType.session_started: frozenset(
        {"session_id", "user_id", "status", "started_at", "conversation_id"}
    ),
    EventType.session_ended: frozenset(
        {
            "session_id",
            "user_id",
            "status",
            "started_at",
            "ended_at",
            "duration_seconds",
            "shutdown_reason",
            "conversation_id",
        }
    ),
    EventType.session_report_ready: frozenset({"session_id", "user_id", "report_id", "created_at"}),
    EventType.goal_changed: frozenset(
        {
            "user_id",
            "goal_id",
            "change_id",
            "session_id",
            "kind",
            "source",
            "progress_before",
            "progress_after",
            "undone",
            "changed_at",
        }
    ),
}
