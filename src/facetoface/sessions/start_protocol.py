"""The start's first round trip, typed: what `facetoface.start_session` (sql/start_session.sql)
answers. The function spells these values as SQL literals; tests/sessions/test_start_protocol.py
holds the literals in the file equal to the values here."""

from __future__ import annotations

from enum import StrEnum


class StartOutcome(StrEnum):
    """`start_result.outcome`: what the call found and did."""

    inserted = "inserted"  # the session's rows are written (`starting`)
    refused = "refused"  # may not start: `refusal` says why
    conflict = "conflict"  # another session is live: `live_session`
    key = "key"  # the Idempotency-Key answers (`key_state`)
    preview = "preview"  # nothing was to be written (a context preview, an open circuit)


class Refusal(StrEnum):
    """`start_result.refusal`, in the order the function checks them."""

    erasure_in_progress = "erasure_in_progress"  # `purge-user` is erasing the user
    profile_not_found = "profile_not_found"
    mentor_not_found = "mentor_not_found"
    premium_mentor_required = "premium_mentor_required"
    rate_limited = "rate_limited"
    mentor_not_configured = "mentor_not_configured"
    not_inserting = "not_inserting"  # a preview: everything else allowed the start


#: Refusals a context preview shows anyway (it writes nothing and bills nothing).
PREVIEW_ALLOWS = frozenset({Refusal.not_inserting, Refusal.rate_limited})
