"""`_error_from_response`: realistic Tavus error answers map to the documented classes."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from facetoface.tavus import errors as tavus_errors
from facetoface.tavus.errors import (
    MESSAGE_MAX_CHARS,
    TavusAuthError,
    TavusConcurrencyLimit,
    TavusError,
    TavusInvalidRequest,
    TavusNotFound,
    TavusOutcomeUnknown,
    TavusOutOfCredits,
    TavusRateLimited,
    TavusRejected,
    TavusServerError,
    TavusUnavailable,
    _error_from_response,
    parse_retry_after,
)


def answer(
    status: int, body: Any = None, *, text: str | None = None, **headers: str
) -> httpx.Response:
    if text is not None:
        return httpx.Response(status, text=text, headers=headers)
    if body is None:
        return httpx.Response(status, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


@pytest.mark.parametrize(
    ("status", "body", "expected", "message"),
    [
        (
            400,
            {"message": "User has reached maximum concurrent conversations"},
            TavusConcurrencyLimit,
            "User has reached maximum concurrent conversations",
        ),
        (
            400,
            {"error": "Maximum number of concurrent conversations reached"},
            TavusConcurrencyLimit,
            None,
        ),
        (400, {"error": "Invalid conversation_id"}, TavusNotFound, "Invalid conversation_id"),
        (400, {"message": "invalid conversation id: c123"}, TavusNotFound, None),
        (
            400,
            {
                "error": "There was an error creating the conversation, please reach out to "
                "support at support@tavus.io!"
            },
            TavusInvalidRequest,
            "There was an error creating the conversation, please reach out to support at "
            "support@tavus.io!",
        ),
        (400, {"message": "Invalid persona_id pnope"}, TavusInvalidRequest, None),
        (401, {"message": "Invalid access token"}, TavusAuthError, "Invalid access token"),
        (403, {"message": "Forbidden"}, TavusAuthError, "Forbidden"),
        (
            402,
            {"message": "The user is out of conversational credits"},
            TavusOutOfCredits,
            "The user is out of conversational credits",
        ),
        (404, {"message": "Not found"}, TavusNotFound, None),
        (422, {"detail": [{"loc": ["body"], "msg": "bad"}]}, TavusInvalidRequest, None),
        (409, {"message": "conflict"}, TavusInvalidRequest, None),
        (500, {"message": "Internal Server Error"}, TavusServerError, None),
        (502, {"error": "Bad gateway"}, TavusServerError, None),
        (503, {"message": "Service Unavailable"}, TavusServerError, None),
        (504, None, TavusServerError, "HTTP 504 Gateway Timeout"),
        (408, None, TavusServerError, None),
    ],
)
def test_status_and_body_map_to_class(
    status: int, body: Any, expected: type[TavusError], message: str | None
) -> None:
    err = _error_from_response("get_conversation", answer(status, body))
    assert type(err) is expected
    assert err.status_code == status
    assert err.endpoint == "get_conversation"
    if message is not None:
        assert err.message == message


def test_concurrency_limit_uses_configured_retry_after() -> None:
    resp = answer(400, {"message": "User has reached maximum concurrent conversations"})
    err = _error_from_response("create_conversation", resp, concurrency_retry_after_s=45)
    assert isinstance(err, TavusConcurrencyLimit)
    assert err.retry_after_seconds == 45
    default = _error_from_response("create_conversation", resp)
    assert isinstance(default, TavusConcurrencyLimit)
    assert default.retry_after_seconds == 30


def test_concurrency_limit_prefers_a_retry_after_header() -> None:
    resp = answer(
        400,
        {"message": "User has reached maximum concurrent conversations"},
        **{"Retry-After": "12"},
    )
    err = _error_from_response("create_conversation", resp, concurrency_retry_after_s=45)
    assert isinstance(err, TavusConcurrencyLimit)
    assert err.retry_after_seconds == 12


def test_rate_limited_with_retry_after_seconds() -> None:
    err = _error_from_response(
        "list_conversations", answer(429, {"message": "slow down"}, **{"Retry-After": "7"})
    )
    assert isinstance(err, TavusRateLimited)
    assert err.retry_after_seconds == 7
    assert err.message == "slow down"


def test_rate_limited_with_retry_after_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    header = email.utils.format_datetime(when, usegmt=True)
    err = _error_from_response(
        "list_conversations", answer(429, text="Too Many Requests", **{"Retry-After": header})
    )
    assert isinstance(err, TavusRateLimited)
    assert err.retry_after_seconds is not None
    assert 110 <= err.retry_after_seconds <= 121


def test_rate_limited_without_or_with_garbage_retry_after() -> None:
    for resp in (answer(429), answer(429, **{"Retry-After": "soon-ish"})):
        err = _error_from_response("x", resp)
        assert isinstance(err, TavusRateLimited)
        assert err.retry_after_seconds is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("30", 30.0),
        (" 5 ", 5.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past
        ("", None),
        (None, None),
        ("nan", None),
        ("tomorrow", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date_relative_to_now() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 01 Jan 2026 12:01:30 GMT", now=now) == 90.0


@pytest.mark.parametrize(
    ("status", "text", "expected"),
    [
        (502, "<html><body><h1>502 Bad Gateway</h1>\n</body></html>", TavusServerError),
        (400, "Bad Request", TavusInvalidRequest),
        (400, "User has reached maximum concurrent conversations", TavusConcurrencyLimit),
        (401, "", TavusAuthError),
        (503, "upstream connect error or disconnect/reset before headers", TavusServerError),
    ],
)
def test_non_json_error_bodies(status: int, text: str, expected: type[TavusError]) -> None:
    err = _error_from_response("end_conversation", answer(status, text=text))
    assert type(err) is expected
    assert err.message  # never empty
    assert "\n" not in err.message


def test_non_string_message_values_are_rendered() -> None:
    err = _error_from_response("x", answer(400, {"message": {"field": "replica_id"}}))
    assert isinstance(err, TavusInvalidRequest)
    assert "replica_id" in err.message
    err = _error_from_response("x", answer(400, ["weird", "list"]))
    assert "weird" in err.message


def test_message_is_truncated() -> None:
    err = _error_from_response("x", answer(400, {"message": "x" * 5000}))
    assert len(err.message) <= MESSAGE_MAX_CHARS + 1
    assert err.message.endswith("…")


def test_concurrency_marker_found_even_beyond_truncation() -> None:
    body = {"message": "y" * 400 + " user has reached maximum concurrent conversations"}
    assert isinstance(_error_from_response("x", answer(400, body)), TavusConcurrencyLimit)


def test_unexpected_status_is_outcome_unknown() -> None:
    err = _error_from_response("create_conversation", answer(302, **{"Location": "https://x"}))
    assert isinstance(err, TavusOutcomeUnknown)


def test_message_scrubs_urls_query_strings_and_secrets() -> None:
    body = {
        "message": "Invalid callback_url https://api.example/webhooks/tavus?token=s3cr3t-token&x=1 "
        "for key tvsk_live_abcdef"
    }
    err = _error_from_response(
        "create_conversation", answer(400, body), redact=["tvsk_live_abcdef"]
    )
    assert "s3cr3t-token" not in err.message
    assert "tvsk_live_abcdef" not in err.message
    assert "https://api.example/webhooks/tavus?[redacted]" in err.message
    assert "s3cr3t-token" not in str(err)
    assert "s3cr3t-token" not in repr(err)


def test_str_names_endpoint_and_status() -> None:
    err = _error_from_response(
        "end_conversation", answer(400, {"error": "Invalid conversation_id"})
    )
    assert str(err) == "end_conversation: HTTP 400: Invalid conversation_id"
    assert str(TavusUnavailable("refused", endpoint="get_conversation")) == (
        "get_conversation: no response: refused"
    )


def test_hierarchy() -> None:
    rejected = (
        TavusInvalidRequest,
        TavusAuthError,
        TavusConcurrencyLimit,
        TavusOutOfCredits,
        TavusNotFound,
        TavusRateLimited,
    )
    for cls in rejected:
        assert issubclass(cls, TavusRejected)
    for cls in (TavusRejected, TavusServerError, TavusUnavailable, TavusOutcomeUnknown):
        assert cls.__bases__ == (TavusError,)
    assert TavusError.__bases__ == (Exception,)


def test_every_class_is_documented_exported_and_has_a_distinct_outcome() -> None:
    classes = [getattr(tavus_errors, name) for name in tavus_errors.__all__]
    assert all(issubclass(cls, TavusError) for cls in classes)
    for cls in classes:
        assert cls.__doc__
        assert len(cls.__doc__.strip().splitlines()) == 1
        assert cls.__name__ in (tavus_errors.__doc__ or "")
    outcomes = [cls.outcome for cls in classes]
    assert len(set(outcomes)) == len(outcomes)
