"""`Idempotency-Key` for `POST /v1/sessions` (Stripe / IETF draft semantics).

- Same key and body after the start completed → the stored response is replayed
  (`Idempotent-Replayed: true`).
- Same key while the first request is in flight → 409 `idempotency_key_in_flight`.
- Same key with another body → 422 `idempotency_key_mismatch`.
- Keys are scoped to the user and expire after `IDEMPOTENCY_KEY_TTL_SECONDS` (24 h).
- A start that definitely failed (Tavus refused, nothing created) releases its key, so a
  retry with it tries again; only completed starts are replayed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from facetoface.errors import BadRequest, Conflict, FacetofaceError


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
