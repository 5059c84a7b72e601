"""`Idempotency-Key` for `POST /v1/sessions` (Stripe / IETF draft semantics).

- Same key and body after the start completed → the stored response is replayed
  (`Idempotent-Replayed: true`).
- Same key while the first request is in flight → 409 `idempotency_key_in_flight`.
- Same key with another body → 422 `idempotency_key_mismatch`.
- Keys are scoped to the user and expire after `IDEMPOTENCY_KEY_TTL_SECONDS` (24 h).
- A start that definitely failed (Tavus refused, nothing created) releases its key, so a
  retry with it tries again; only completed starts are replayed.

A key's whole life is here: the header (`idempotency_request`), its claim with the start's
rows (`KeyClaim`, written by `facetoface.start_session`), what that call says of it
(`KeyState`), what the start's outcome does to it (`KeyAction`, `key_extra`: in the same
transaction as the conversation change) and the answer a retry gets (`answer_from_key`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from facetoface.conversations.repository import Extra, SessionRow
from facetoface.conversations.status import ConversationStatus
from facetoface.db import Statement
from facetoface.errors import BadRequest, Conflict, FacetofaceError
from facetoface.sessions.errors import SessionOutcomeUnknown
from facetoface.sessions.schemas import OwnSessionOut


class InvalidIdempotencyKey(BadRequest):
    code = "invalid_idempotency_key"
    title = "Invalid Idempotency-Key header"


class IdempotencyKeyMismatch(FacetofaceError):
    status_code = 422
    code = "idempotency_key_mismatch"
    title = "Idempotency-Key reused with a different request"


class IdempotencyKeyInFlight(Conflict):
    code = "idempotency_key_in_flight"
    title = "A request with this Idempotency-Key is still being processed"


@dataclass(frozen=True, slots=True)
class IdempotencyRequest:
    key: str
    request_hash: bytes


@dataclass(frozen=True, slots=True)
class Replay:
    """A stored response to send again."""

    status_code: int
    body: Any


def idempotency_request(header: str | None, body: dict[str, Any]) -> IdempotencyRequest | None:
    """Validate the header (1–255 printable ASCII characters) and fingerprint the body."""
    if header is None:
        return None
    key = header.strip()
    if not 1 <= len(key) <= 255 or not all(33 <= ord(c) <= 126 for c in key):
        raise InvalidIdempotencyKey("Use 1 to 255 printable ASCII characters, e.g. a UUID.")
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return IdempotencyRequest(key, hashlib.sha256(canonical.encode()).digest())


class KeyState(StrEnum):
    """What `facetoface.start_session` found for a key (`start_result.key_state`)."""

    mismatch = "mismatch"  # another body was sent with this key
    done = "done"  # its start completed: replay its session
    in_flight = "in_flight"  # its start is still running
    unresolved = "unresolved"  # its start's outcome at Tavus is not known yet


class KeyAction(StrEnum):
    """What a start's outcome does to its key, with the conversation change."""

    done = "done"  # the session was adopted: replay it from now on
    release = "release"  # nothing was created: a retry may try again
    unlock = "unlock"  # the outcome is unknown: retries may look at its session


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """An `Idempotency-Key` to claim with the session's rows."""

    key: str
    request_hash: bytes
    locked_until: datetime
    expires_at: datetime


#: Each action as one statement (run after the conversation change, in its message). Kept
#: here, beside the rest of the key's life, rather than in the repository; the only value
#: spliced into the text is an enum member's.
KEY_SQL: dict[KeyAction, Statement] = {
    KeyAction.done: Statement(
        f"UPDATE idempotency_keys SET state = '{KeyState.done.value}', "  # noqa: S608
        "locked_until = %(k_now)s "
        "WHERE user_id = %(k_user)s AND key = %(k_key)s AND daily_session_id = %(k_daily)s"
    ),
    KeyAction.release: Statement(
        "DELETE FROM idempotency_keys "
        "WHERE user_id = %(k_user)s AND key = %(k_key)s AND daily_session_id = %(k_daily)s"
    ),
    KeyAction.unlock: Statement(
        "UPDATE idempotency_keys SET locked_until = %(k_now)s "
        "WHERE user_id = %(k_user)s AND key = %(k_key)s AND daily_session_id = %(k_daily)s"
    ),
}


def key_extra(
    action: KeyAction,
    user_id: uuid.UUID,
    key: str,
    daily_session_id: uuid.UUID,
    now: datetime,
) -> Extra:
    """`action` on the start's key, to commit with its conversation change."""
    params = {"k_user": user_id, "k_key": key, "k_daily": daily_session_id, "k_now": now}
    return Extra(sql=KEY_SQL[action], params=params)


def answer_from_key(
    state: KeyState, session: SessionRow | None, meeting_token: str | None
) -> Replay:
    """A retry's answer when the key speaks for it: the replayed session, or a problem."""
    if state is KeyState.mismatch:
        raise IdempotencyKeyMismatch("This Idempotency-Key was used for a different request body.")
    if (
        state is KeyState.done
        and session is not None
        and session.conversation_status == ConversationStatus.active
        and session.conversation_url is None
    ):
        # A callback adopted the session after the create's answer was lost; callbacks
        # carry no join URL, so it cannot be joined yet: the reconciler records the URL.
        state = KeyState.unresolved
    if state is KeyState.done and session is not None:
        return Replay(201, OwnSessionOut.for_owner(session, meeting_token).to_json())
    if state is KeyState.unresolved and session is not None:
        raise SessionOutcomeUnknown(
            "The first request's session is still being confirmed with the video service; "
            "retry in a minute.",
            retry_after_seconds=30,
            extra={"session_id": str(session.id)},
        )
    raise IdempotencyKeyInFlight(
        "The first request with this key is still running.",
        headers={"Retry-After": "2"},
    )
