"""Every status and outcome set of a conversation, one enum each (the only place they are spelt).

The database's CHECK constraints, the API, the metrics and the reconciler all use these; no
module repeats the strings.
"""

from __future__ import annotations

from enum import StrEnum


class ConversationStatus(StrEnum):
    """`mentor_conversations.status`: our side of one Tavus conversation."""

    starting = "starting"  # rows written, Tavus's create not answered yet
    active = "active"  # Tavus created it; billing runs
    ending = "ending"  # an end call claimed it; the Tavus end call is in progress
    ended = "ended"
    failed = "failed"  # Tavus definitely did not create it
    indeterminate = "indeterminate"  # Tavus may or may not have created it; reconciler decides


#: States in which a Tavus conversation may be running for the user. At most one per user
#: (a partial unique index in the database).
LIVE_STATUSES: frozenset[ConversationStatus] = frozenset(
    {
        ConversationStatus.starting,
        ConversationStatus.active,
        ConversationStatus.ending,
        ConversationStatus.indeterminate,
    }
)
#: The live statuses as a SQL list of literals (`status IN (…)`): literal values, so the
#: planner matches the partial indexes on live rows in every plan.
LIVE_STATUSES_SQL = ", ".join(f"'{status.value}'" for status in sorted(LIVE_STATUSES))
#: States whose Tavus outcome we do not know yet.
UNRESOLVED_STATUSES: frozenset[ConversationStatus] = frozenset(
    {ConversationStatus.starting, ConversationStatus.indeterminate}
)


class SessionStatus(StrEnum):
    """`daily_sessions.session_status` (the origin's CHECK set), derived from the conversation."""

    started = "started"
    in_progress = "in_progress"
    completed = "completed"
    interrupted = "interrupted"
    failed = "failed"


class CallbackOutcome(StrEnum):
    """What ingesting one Tavus event did (stored on the inbox row; `duplicate` never is)."""

    applied = "applied"  # a known event type, merged into the conversation's facts
    no_effect = "no_effect"  # the conversation never ran (failed): stored, not applied
    ignored = "ignored"  # an event type we do not know: stored, not applied
    duplicate = "duplicate"  # already stored: nothing done


class FailureCode(StrEnum):
    """`mentor_conversations.failure_code`: why a conversation did not run, or what is left to
    do for it. Stable codes, never Tavus's raw messages."""

    tavus_concurrency_limit = "tavus_concurrency_limit"
    tavus_rate_limited = "tavus_rate_limited"
    tavus_out_of_credits = "tavus_out_of_credits"
    tavus_auth_failed = "tavus_auth_failed"
    tavus_rejected = "tavus_rejected"
    tavus_server_error = "tavus_server_error"  # a 5xx once sent: outcome unknown
    tavus_unavailable = "tavus_unavailable"  # not sent (connect failed, circuit open)
    tavus_outcome_unknown = "tavus_outcome_unknown"  # sent, no answer (timeout, dropped)
    database_unavailable = "database_unavailable"  # Tavus created it; we could not record it
    not_created_at_tavus = "not_created_at_tavus"  # the reconciler found nothing by its name
    tavus_end_failed = "tavus_end_failed"  # our records are closed; Tavus's end still due
    closed_by_reconciler = "closed_by_reconciler"  # live past the call cap
