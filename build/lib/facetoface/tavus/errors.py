"""Errors raised by the Tavus client, and the mapping from Tavus's HTTP answers to them.

The classes are organised by *what the caller may assume about Tavus's state*, because that is
what decides the next step (retry, reconcile, give up, tell the user):

```
TavusError
├── TavusRejected            Tavus answered and did NOT act (definite failure)
│   ├── TavusInvalidRequest      400 (any other 400), 422, other 4xx
│   ├── TavusAuthError           401 / 403 (bad or missing API key)
│   ├── TavusConcurrencyLimit    400 "... maximum concurrent conversations"
│   ├── TavusOutOfCredits        402
│   ├── TavusNotFound            400 "Invalid conversation_id", 404
│   └── TavusRateLimited         429 (with the parsed Retry-After)
├── TavusServerError         5xx / 408: Tavus answered with a server error
├── TavusUnavailable         nothing was sent (connect error/timeout, pool timeout, circuit open)
│   └── TavusBusy                our own bulkhead is full (too many Tavus calls in flight)
└── TavusOutcomeUnknown      the request may have been processed (read/write timeout, dropped
                             connection, deadline expired after sending, unparseable 2xx body)
```

Every error carries `endpoint` (the client method's name, e.g. ``"create_conversation"``),
`status_code` (``None`` when Tavus did not answer) and `message` (Tavus's ``message``/``error``
text, whitespace-collapsed, scrubbed of URL query strings and known secrets, truncated to
~300 characters). No error ever carries the API key, a request body or a response header.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

__all__ = [
    "TavusAuthError",
    "TavusBusy",
    "TavusConcurrencyLimit",
    "TavusError",
    "TavusInvalidRequest",
    "TavusNotFound",
    "TavusOutOfCredits",
    "TavusOutcomeUnknown",
    "TavusRateLimited",
    "TavusRejected",
    "TavusServerError",
    "TavusUnavailable",
]

#: Longest `message` an error keeps (characters, before the ellipsis).
MESSAGE_MAX_CHARS = 300

_REDACTED = "[redacted]"
# The query string of any URL in a message: callback URLs carry a secret token there.
_URL_QUERY = re.compile(r"(https?://[^\s?#\"'<>]*)\?[^\s#\"'<>]*", re.IGNORECASE)
# "User has reached maximum concurrent conversations" and loose variants of it.
_CONCURRENCY = re.compile(
    r"max(?:imum)?\b.{0,40}?\bconcurren|concurren\w*\s+(?:conversations?\s+)?limit",
    re.IGNORECASE | re.DOTALL,
)
# "Invalid conversation_id" and loose variants, incl. "conversation ... not found".
_UNKNOWN_CONVERSATION = re.compile(
    r"invalid\W{0,3}conversation[\s_-]?id|conversation\b.{0,20}\bnot\s+found",
    re.IGNORECASE | re.DOTALL,
)


class TavusError(Exception):
    """Base class: catch it to handle every Tavus failure; prefer the subclasses to decide."""

    #: Stable label for logs and metrics.
    outcome: ClassVar[str] = "error"

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.status_code = status_code

    def __str__(self) -> str:
        status = f"HTTP {self.status_code}" if self.status_code is not None else "no response"
        return f"{self.endpoint}: {status}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(endpoint={self.endpoint!r}, "
            f"status_code={self.status_code!r}, message={self.message!r})"
        )


class TavusRejected(TavusError):
    """Tavus answered and did not act: do not retry blindly; nothing to clean up at Tavus."""

    outcome = "rejected"


class TavusInvalidRequest(TavusRejected):
    """The request was malformed or refused (400/422): a bug or bad input; fix, don't retry."""

    outcome = "invalid_request"


class TavusAuthError(TavusRejected):
    """The API key is missing, wrong or not allowed (401/403): alert an operator; don't retry."""

    outcome = "auth_error"


class TavusConcurrencyLimit(TavusRejected):
    """The account's live-conversation limit is reached: tell the user to retry later."""

    outcome = "concurrency_limit"

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        status_code: int | None = None,
        retry_after_seconds: float = 30.0,
    ) -> None:
        super().__init__(message, endpoint=endpoint, status_code=status_code)
        self.retry_after_seconds = retry_after_seconds


class TavusOutOfCredits(TavusRejected):
    """The account is out of conversational credits (402): alert an operator; don't retry."""

    outcome = "out_of_credits"


class TavusNotFound(TavusRejected):
    """Tavus does not know this id (400 "Invalid conversation_id"; any 404: e.g. a persona)."""

    outcome = "not_found"


class TavusRateLimited(TavusRejected):
    """Too many requests (429): retry after `retry_after_seconds` (None if Tavus gave none)."""

    outcome = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        status_code: int | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint, status_code=status_code)
        self.retry_after_seconds = retry_after_seconds


class TavusServerError(TavusError):
    """Tavus failed (5xx): retry idempotent calls; after a create, reconcile by name."""

    outcome = "server_error"


class TavusUnavailable(TavusError):
    """Nothing reached Tavus (connect failure, pool/bulkhead full): safe to retry any call."""

    outcome = "unavailable"


class TavusBusy(TavusUnavailable):
    """Our own bulkhead is full (Tavus may be fine, just slow): nothing sent; retry shortly."""

    outcome = "busy"


class TavusOutcomeUnknown(TavusError):
    """The request may have been processed: retry idempotent calls; reconcile a create."""

    outcome = "outcome_unknown"


# --- message hygiene ------------------------------------------------------------------------


def clean_message(text: str, *, redact: Iterable[str] = ()) -> str:
    """Collapse whitespace, scrub URL query strings and `redact` values, truncate."""
    text = " ".join(text.split())
    for secret in redact:
        secret = " ".join(secret.split())
        if len(secret) >= 4:  # a one-letter "secret" would shred the message
            text = text.replace(secret, _REDACTED)
    text = _URL_QUERY.sub(rf"\1?{_REDACTED}", text)
    if len(text) > MESSAGE_MAX_CHARS:
        text = text[:MESSAGE_MAX_CHARS] + "…"
    return text


def _message_from_body(response: httpx.Response) -> str:
    """Tavus's `message` or `error` value; else the raw text; else the reason phrase."""
    try:
        body: Any = json.loads(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            value = body.get(key)
            if value is None or value == "":
                continue
            return value if isinstance(value, str) else json.dumps(value, default=str)
    if body is not None:
        return json.dumps(body, default=str)
    try:
        text = response.text
    except (UnicodeDecodeError, LookupError):
        text = ""
    if text.strip():
        return text
    return f"HTTP {response.status_code} {response.reason_phrase}".strip()


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delay-seconds or HTTP-date); None if absent/invalid."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    with contextlib.suppress(ValueError):
        seconds = float(value)
        if math.isfinite(seconds):
            return max(0.0, seconds)
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def _error_from_response(
    endpoint: str,
    response: httpx.Response,
    *,
    concurrency_retry_after_s: float = 30.0,
    redact: Iterable[str] = (),
) -> TavusError:
    """Map a non-2xx Tavus answer to the matching `TavusError` (returned, not raised)."""
    status = response.status_code
    raw = _message_from_body(response)
    message = clean_message(raw, redact=redact)
    kw: dict[str, Any] = {"endpoint": endpoint, "status_code": status}

    if status == 400:
        # Match on the raw text: truncation or redaction must not hide the marker.
        if _CONCURRENCY.search(raw):
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return TavusConcurrencyLimit(
                message,
                retry_after_seconds=(
                    retry_after if retry_after is not None else float(concurrency_retry_after_s)
                ),
                **kw,
            )
        if _UNKNOWN_CONVERSATION.search(raw):
            return TavusNotFound(message, **kw)
        return TavusInvalidRequest(message, **kw)
    if status in (401, 403):
        return TavusAuthError(message, **kw)
    if status == 402:
        return TavusOutOfCredits(message, **kw)
    if status == 404:
        return TavusNotFound(message, **kw)
    if status == 429:
        return TavusRateLimited(
            message,
            retry_after_seconds=parse_retry_after(response.headers.get("retry-after")),
            **kw,
        )
    if status == 408 or status >= 500:
        # 408: the server gave up waiting for our request. Treated like a 5xx: not retried for
        # create (conservative), retried for idempotent calls.
        return TavusServerError(message, **kw)
    if 400 <= status < 500:
        return TavusInvalidRequest(message, **kw)
    # 1xx/3xx (no redirects are followed): not an answer we understand. Be conservative.
    return TavusOutcomeUnknown(f"unexpected HTTP status {status}: {message}", **kw)
