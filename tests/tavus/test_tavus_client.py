"""TavusClient against httpx.MockTransport: request shape, error handling, retries, bulkhead,
deadlines and log hygiene. (MockTransport is allowed here only: it tests the client's own
error handling; everything else talks to the Tavus simulator.)"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
import stamina
from structlog.testing import capture_logs

from facetoface.tavus import (
    Conversation,
    ConversationProperties,
    CreateConversationRequest,
    TavusAuthError,
    TavusClient,
    TavusConcurrencyLimit,
    TavusInvalidRequest,
    TavusNotFound,
    TavusOutcomeUnknown,
    TavusRateLimited,
    TavusServerError,
    TavusStatus,
    TavusUnavailable,
    validate_conversation_id,
)
from tests.support.eventually import eventually

CONTEXT = "PRIVATE-CONTEXT: the user's career notes"
TOKEN = "cb-secret-token-6f1e2d"
CALLBACK = f"https://api.example/webhooks/tavus?token={TOKEN}"
ROOM_URL = "https://tavus.daily.co/c123456"
MEETING_TOKEN = "eyJhbGciOiJIUzI1NiJ9.meeting-token"

CREATED = {
    "conversation_id": "c123456",
    "conversation_name": "session-1",
    "conversation_url": ROOM_URL,
    "status": "active",
    "callback_url": CALLBACK,
    "created_at": "2025-05-13T06:42:58.291561Z",
    "meeting_token": MEETING_TOKEN,
}


def create_request(**overrides: Any) -> CreateConversationRequest:
    fields: dict[str, Any] = {
        "persona_id": "pcb7a34da5fe",
        "replica_id": "r90bbd427f71",
        "callback_url": CALLBACK,
        "conversation_name": "session-1",
        "conversational_context": CONTEXT,
        "properties": ConversationProperties(max_call_duration=900, participant_left_timeout=10),
    }
    fields.update(overrides)
    return CreateConversationRequest(**fields)


def ok(body: Any = None, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=CREATED if body is None else body)


def slow(seconds: float, then: httpx.Response | None = None) -> Any:
    async def answer(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(seconds)
        return then if then is not None else ok()

    return answer


# --- request shape --------------------------------------------------------------------------


async def test_create_request_shape(make_client: Any, script: Any, api_key: str) -> None:
    rec = script(ok())
    client = make_client(rec)
    conv = await client.create_conversation(create_request(custom_greeting=None))

    assert isinstance(conv, Conversation)
    assert conv.conversation_id == "c123456"
    assert conv.status == "active"
    assert rec.count == 1
    req = rec.requests[0]
    assert req.method == "POST"
    assert str(req.url) == "https://tavus.test/v2/conversations"
    assert req.headers["x-api-key"] == api_key
    assert req.headers["content-type"] == "application/json"
    assert req.headers["accept"] == "application/json"
    assert json.loads(req.content) == {
        "pal_id": "pcb7a34da5fe",
        "face_id": "r90bbd427f71",
        "callback_url": CALLBACK,
        "conversation_name": "session-1",
        "conversational_context": CONTEXT,
        "properties": {"max_call_duration": 900, "participant_left_timeout": 10},
    }


async def test_get_request_shape(make_client: Any, script: Any, api_key: str) -> None:
    rec = script(ok({"conversation_id": "c1", "status": "active"}))
    client = make_client(rec)
    details = await client.get_conversation("c1")
    await client.get_conversation("c1", verbose=True)

    assert details.conversation_id == "c1"
    assert [r.method for r in rec.requests] == ["GET", "GET"]
    assert str(rec.requests[0].url) == "https://tavus.test/v2/conversations/c1"
    assert str(rec.requests[1].url) == "https://tavus.test/v2/conversations/c1?verbose=true"
    assert rec.requests[0].headers["x-api-key"] == api_key
    assert "content-type" not in rec.requests[0].headers
    assert rec.requests[0].content == b""


async def test_list_request_shape(make_client: Any, script: Any) -> None:
    rec = script(ok({"data": [{"conversation_id": "c1", "status": "active"}], "total_count": 1}))
    client = make_client(rec)
    page = await client.list_conversations(status=TavusStatus.active, limit=50, page=2)
    await client.list_conversations()

    assert [c.conversation_id for c in page.data] == ["c1"]
    assert page.total_count == 1
    first, second = rec.requests
    assert first.url.path == "/v2/conversations"
    assert dict(first.url.params) == {"limit": "50", "page": "2", "status": "active"}
    assert dict(second.url.params) == {"limit": "100", "page": "1"}


async def test_list_rejects_bad_arguments(make_client: Any, script: Any) -> None:
    rec = script(ok())
    client = make_client(rec)
    with pytest.raises(ValueError, match="limit"):
        await client.list_conversations(limit=0)
    with pytest.raises(ValueError, match="page"):
        await client.list_conversations(page=0)
    assert rec.count == 0


async def test_list_rejects_an_unknown_status(make_client: Any, script: Any) -> None:
    rec = script(ok())
    client = make_client(rec)
    with pytest.raises(ValueError, match="status"):
        await client.list_conversations(status="running")  # type: ignore[arg-type]
    assert rec.count == 0


async def test_end_and_delete_request_shape(make_client: Any, script: Any) -> None:
    rec = script(httpx.Response(200, text="OK"), httpx.Response(204), httpx.Response(204))
    client = make_client(rec)
    assert await client.end_conversation("c1") is None
    assert await client.delete_conversation("c1") is None
    assert await client.delete_conversation("c1", hard=True) is None

    end, soft, hard = rec.requests
    assert (end.method, str(end.url)) == ("POST", "https://tavus.test/v2/conversations/c1/end")
    assert end.content == b""
    assert "content-type" not in end.headers
    assert (soft.method, str(soft.url)) == ("DELETE", "https://tavus.test/v2/conversations/c1")
    assert str(hard.url) == "https://tavus.test/v2/conversations/c1?hard=true"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(204),
        httpx.Response(200, text="OK"),
        httpx.Response(200, json={"status": "ended"}),
        httpx.Response(200),
        httpx.Response(202, text="<html>accepted</html>"),
    ],
)
async def test_end_accepts_any_2xx(make_client: Any, script: Any, answer: httpx.Response) -> None:
    client = make_client(script(answer))
    assert await client.end_conversation("c1") is None


async def test_verbose_get_is_parsed(make_client: Any, script: Any) -> None:
    transcript = [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello!"}]
    body = {
        "conversation_id": "c1",
        "status": "ended",
        "events": [
            {
                "event_type": "system.shutdown",
                "properties": {"shutdown_reason": "max_call_duration"},
            },
            {
                "event_type": "application.transcription_ready",
                "properties": {"transcript": transcript},
            },
        ],
    }
    client = make_client(script(ok(body)))
    details = await client.get_conversation("c1", verbose=True)
    assert details.shutdown_reason == "max_call_duration"
    assert details.transcript == transcript
    assert len(details.events) == 2


async def test_verbose_get_with_text_pydantic_cannot_parse(make_client: Any, script: Any) -> None:
    """A lone surrogate escape (what a user typed) is valid JSON that pydantic's own parser
    refuses; the body is still read, the code points kept for the conversation core."""
    content = (
        b'{"conversation_id": "c1", "status": "ended", "events": [{"event_type": '
        b'"application.transcription_ready", "properties": {"transcript": [{"role": "user", '
        b'"content": "a lone \\ud800 and a \\u0000"}]}}]}'
    )
    client = make_client(script(httpx.Response(200, content=content)))
    details = await client.get_conversation("c1", verbose=True)
    assert details.transcript == [{"role": "user", "content": "a lone \ud800 and a \x00"}]
    assert len(details.events) == 1


async def test_truncated_json_is_still_unparseable(make_client: Any, script: Any) -> None:
    rec = script(httpx.Response(200, content=b'{"conversation_id": "c1", "status": "act'))
    client = make_client(rec, retry_attempts=1)
    with pytest.raises(TavusOutcomeUnknown, match="json_invalid"):
        await client.get_conversation("c1", verbose=True)


@pytest.mark.parametrize(
    "bad_id", ["", "../secrets", "c1/end", "c1?hard=true", "c 1", "c1%2F", "é", "x" * 129]
)
async def test_conversation_id_is_validated_before_sending(
    make_client: Any, script: Any, bad_id: str
) -> None:
    rec = script(httpx.Response(204))
    client = make_client(rec)
    for call in (
        client.get_conversation,
        client.end_conversation,
        client.delete_conversation,
    ):
        with pytest.raises(ValueError, match="conversation id"):
            await call(bad_id)
    assert rec.count == 0


def test_conversation_id_accepts_tavus_shapes() -> None:
    for good in ("c123456", "ca4301628cb9", "cd7e3eac05ede40c", "A_b-9", "x" * 128):
        assert validate_conversation_id(good) == good


# --- create is never retried once the request may have been sent ----------------------------


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (httpx.ReadTimeout("timed out"), TavusOutcomeUnknown),
        (httpx.WriteTimeout("timed out"), TavusOutcomeUnknown),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            TavusOutcomeUnknown,
        ),
        (httpx.ReadError("connection reset"), TavusOutcomeUnknown),
        (httpx.Response(500, json={"message": "Internal Server Error"}), TavusServerError),
        (httpx.Response(502, text="<html>Bad Gateway</html>"), TavusServerError),
        (httpx.Response(503), TavusServerError),
        (httpx.Response(200, text="<html>not json</html>"), TavusOutcomeUnknown),
        (httpx.Response(200, json={"status": "active"}), TavusOutcomeUnknown),
        (
            httpx.Response(
                400, json={"message": "User has reached maximum concurrent conversations"}
            ),
            TavusConcurrencyLimit,
        ),
        (httpx.Response(401, json={"message": "Invalid access token"}), TavusAuthError),
        (
            httpx.Response(400, json={"error": "There was an error creating the conversation"}),
            TavusInvalidRequest,
        ),
    ],
)
async def test_create_is_not_retried_after_sending(
    make_client: Any, script: Any, failure: Any, expected: type[Exception]
) -> None:
    rec = script(failure, ok())
    client = make_client(rec, retry_attempts=5)
    with pytest.raises(expected):
        await client.create_conversation(create_request())
    assert rec.count == 1


async def test_create_concurrency_limit_carries_retry_after(make_client: Any, script: Any) -> None:
    answer = httpx.Response(
        400, json={"message": "User has reached maximum concurrent conversations"}
    )
    client = make_client(script(answer), concurrency_retry_after_s=42)
    with pytest.raises(TavusConcurrencyLimit) as info:
        await client.create_conversation(create_request())
    assert info.value.retry_after_seconds == 42


async def test_create_is_retried_when_nothing_was_sent(make_client: Any, script: Any) -> None:
    rec = script(
        httpx.ConnectError("connection refused"),
        httpx.ConnectTimeout("connect timed out"),
        ok(),
    )
    client = make_client(rec, retry_attempts=3)
    conv = await client.create_conversation(create_request())
    assert conv.conversation_id == "c123456"
    assert rec.count == 3


async def test_create_gives_up_after_attempts_when_unreachable(
    make_client: Any, script: Any
) -> None:
    rec = script(httpx.ConnectError("connection refused"))
    client = make_client(rec, retry_attempts=3)
    with pytest.raises(TavusUnavailable) as info:
        await client.create_conversation(create_request())
    assert rec.count == 3
    assert info.value.status_code is None
    assert "ConnectError" in info.value.message


async def test_create_is_retried_on_429(make_client: Any, script: Any) -> None:
    rec = script(
        httpx.Response(429, json={"message": "Too many requests"}, headers={"Retry-After": "1"}),
        httpx.Response(429, text="slow down"),
        ok(),
    )
    client = make_client(rec, retry_attempts=3)
    conv = await client.create_conversation(create_request())
    assert conv.conversation_id == "c123456"
    assert rec.count == 3


async def test_retry_after_beyond_the_budget_is_not_waited_for(
    make_client: Any, script: Any
) -> None:
    rec = script(httpx.Response(429, headers={"Retry-After": "120"}), ok())
    client = make_client(rec, retry_attempts=3, retry_timeout_s=20)
    with pytest.raises(TavusRateLimited) as info:
        await client.create_conversation(create_request())
    assert rec.count == 1
    assert info.value.retry_after_seconds == 120


async def test_retry_after_is_honoured_exactly(make_client: Any, script: Any) -> None:
    """Real backoff mode: the retry waits Retry-After, not the (huge) exponential backoff."""
    rec = script(httpx.Response(429, headers={"Retry-After": "0.2"}), ok())
    client = make_client(rec, retry_wait_initial_s=30, retry_wait_jitter_s=0)
    with stamina.set_testing(False):
        started = time.monotonic()
        await client.create_conversation(create_request())
        elapsed = time.monotonic() - started
    assert rec.count == 2
    assert 0.2 <= elapsed < 2


# --- idempotent calls are retried ------------------------------------------------------------


IDEMPOTENT_CALLS = {
    "get": lambda c: c.get_conversation("c1"),
    "list": lambda c: c.list_conversations(status=TavusStatus.active),
    "end": lambda c: c.end_conversation("c1"),
    "delete": lambda c: c.delete_conversation("c1"),
    "verify_api_key": lambda c: c.verify_api_key(),
    "get_persona": lambda c: c.get_persona("p1"),
    "get_replica": lambda c: c.get_replica("r1"),
    "list_memory_stores": lambda c: c.list_memory_stores(participant_tag="app:u1"),
    "delete_memory_store": lambda c: c.delete_memory_store("ms1"),
}
SUCCESS = {
    "get": ok({"conversation_id": "c1"}),
    "list": ok({"data": [], "total_count": 0}),
    "end": httpx.Response(200, text="OK"),
    "delete": httpx.Response(204),
    "verify_api_key": ok({"data": [], "total_count": 0}),
    "get_persona": ok({"persona_id": "p1"}),
    "get_replica": ok({"replica_id": "r1"}),
    "list_memory_stores": ok({"data": [], "total_count": 0}),
    "delete_memory_store": httpx.Response(204),
}


@pytest.mark.parametrize("call", sorted(IDEMPOTENT_CALLS))
@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500, json={"message": "Internal Server Error"}),
        httpx.Response(503, text="unavailable"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected"),
        httpx.ConnectError("refused"),
        httpx.Response(429, headers={"Retry-After": "0"}),
    ],
)
async def test_idempotent_calls_are_retried(
    make_client: Any, script: Any, call: str, failure: Any
) -> None:
    rec = script(failure, failure, SUCCESS[call])
    client = make_client(rec, retry_attempts=3)
    await IDEMPOTENT_CALLS[call](client)
    assert rec.count == 3


@pytest.mark.parametrize("call", sorted(IDEMPOTENT_CALLS))
@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (httpx.Response(502, text="bad gateway"), TavusServerError),
        (httpx.ReadTimeout("timed out"), TavusOutcomeUnknown),
        (httpx.ConnectError("refused"), TavusUnavailable),
    ],
)
async def test_idempotent_calls_give_up_after_attempts(
    make_client: Any, script: Any, call: str, failure: Any, expected: type[Exception]
) -> None:
    rec = script(failure)
    client = make_client(rec, retry_attempts=4)
    with pytest.raises(expected):
        await IDEMPOTENT_CALLS[call](client)
    assert rec.count == 4


async def test_unparseable_get_is_retried_then_outcome_unknown(
    make_client: Any, script: Any
) -> None:
    rec = script(httpx.Response(200, text="<html>maintenance</html>"))
    client = make_client(rec, retry_attempts=2)
    with pytest.raises(TavusOutcomeUnknown, match="unparseable 200"):
        await client.get_conversation("c1")
    assert rec.count == 2


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(400, json={"error": "Invalid conversation_id"}), TavusNotFound),
        (httpx.Response(404), TavusNotFound),
        (httpx.Response(401, json={"message": "Invalid access token"}), TavusAuthError),
        (httpx.Response(400, json={"error": "bad request"}), TavusInvalidRequest),
    ],
)
async def test_rejections_are_not_retried(
    make_client: Any, script: Any, answer: httpx.Response, expected: type[Exception]
) -> None:
    rec = script(answer, httpx.Response(204))
    client = make_client(rec, retry_attempts=5)
    with pytest.raises(expected):
        await client.end_conversation("c1")
    assert rec.count == 1


async def test_retry_time_budget_stops_retrying(make_client: Any, script: Any) -> None:
    """Real backoff mode: `retry_timeout_s` ends the retries long before `retry_attempts`."""
    rec = script(httpx.Response(503))
    client = make_client(
        rec,
        retry_attempts=1000,
        retry_timeout_s=0.3,
        retry_wait_initial_s=0.05,
        retry_wait_max_s=0.05,
        retry_wait_jitter_s=0,
    )
    with stamina.set_testing(False):
        started = time.monotonic()
        with pytest.raises(TavusServerError):
            await client.get_conversation("c1")
        elapsed = time.monotonic() - started
    assert 2 <= rec.count < 20
    assert elapsed < 1.5


# --- deadlines and the bulkhead --------------------------------------------------------------


async def test_total_deadline_expiry_is_outcome_unknown(make_client: Any, script: Any) -> None:
    rec = script(slow(5))
    client = make_client(rec, total_timeout_s=0.05, retry_attempts=3)
    started = time.monotonic()
    with pytest.raises(TavusOutcomeUnknown, match="deadline"):
        await client.create_conversation(create_request())
    assert time.monotonic() - started < 1
    assert rec.count == 1  # create: not retried


async def test_deadline_while_still_connecting_is_unavailable(
    make_client: Any, script: Any
) -> None:
    """httpcore reports progress through the `trace` extension; emulate a hanging connect."""

    async def hangs_in_connect(request: httpx.Request) -> httpx.Response:
        trace = request.extensions["trace"]
        await trace("connection.connect_tcp.started", {"host": "tavus.test", "port": 443})
        await asyncio.sleep(5)
        return ok()

    rec = script(hangs_in_connect, ok())
    client = make_client(rec, total_timeout_s=0.05, retry_attempts=3)
    conv = await client.create_conversation(create_request())  # nothing sent -> retried
    assert conv.conversation_id == "c123456"
    assert rec.count == 2


async def test_deadline_after_sending_headers_is_outcome_unknown(
    make_client: Any, script: Any
) -> None:
    async def hangs_after_send(request: httpx.Request) -> httpx.Response:
        trace = request.extensions["trace"]
        await trace("connection.connect_tcp.started", {})
        await trace("connection.connect_tcp.complete", {})
        await trace("http11.send_request_headers.started", {})
        await asyncio.sleep(5)
        return ok()

    rec = script(hangs_after_send, ok())
    client = make_client(rec, total_timeout_s=0.05, retry_attempts=3)
    with pytest.raises(TavusOutcomeUnknown):
        await client.create_conversation(create_request())
    assert rec.count == 1


async def test_bulkhead_full_raises_unavailable_quickly(make_client: Any, script: Any) -> None:
    rec = script(slow(0.3, ok({"conversation_id": "c1"})), ok({"conversation_id": "c1"}))
    client = make_client(rec, max_concurrency=1, connect_timeout_s=0.05, retry_attempts=1)
    first = asyncio.create_task(client.get_conversation("c1"))
    await eventually(lambda: client.bulkhead[0] == 1, what="the first call takes the only slot")

    started = time.monotonic()
    with pytest.raises(TavusUnavailable, match="bulkhead"):
        await client.get_conversation("c2")
    assert time.monotonic() - started < 0.3
    assert rec.count == 1  # the second call never reached the transport

    assert (await first).conversation_id == "c1"
    # The slot is released afterwards.
    assert (await client.get_conversation("c1")).conversation_id == "c1"


async def test_bulkhead_slot_is_released_after_failures(make_client: Any, script: Any) -> None:
    rec = script(httpx.ReadTimeout("timed out"), httpx.Response(500), ok({"conversation_id": "c1"}))
    client = make_client(rec, max_concurrency=1, connect_timeout_s=0.05, retry_attempts=1)
    with pytest.raises(TavusOutcomeUnknown):
        await client.get_conversation("c1")
    with pytest.raises(TavusServerError):
        await client.get_conversation("c1")
    assert (await client.get_conversation("c1")).conversation_id == "c1"


async def test_cancellation_propagates_and_releases_the_slot(make_client: Any, script: Any) -> None:
    rec = script(slow(5), ok({"conversation_id": "c1"}))
    client = make_client(rec, max_concurrency=1, connect_timeout_s=0.05)
    task = asyncio.create_task(client.get_conversation("c1"))
    await eventually(lambda: rec.count == 1, what="the call is in flight")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await client.get_conversation("c1")).conversation_id == "c1"


# --- observability ---------------------------------------------------------------------------


async def test_on_request_hook_called_once_per_attempt(make_client: Any, script: Any) -> None:
    calls: list[tuple[str, str, float]] = []
    rec = script(httpx.Response(503), httpx.ReadTimeout("t"), ok({"conversation_id": "c1"}))
    client = make_client(rec, retry_attempts=3, on_request=lambda *a: calls.append(a))
    await client.get_conversation("c1")
    assert [(e, o) for e, o, _ in calls] == [
        ("get_conversation", "server_error"),
        ("get_conversation", "outcome_unknown"),
        ("get_conversation", "ok"),
    ]
    assert all(seconds >= 0 for _, _, seconds in calls)


async def test_a_failing_on_request_hook_does_not_break_calls(
    make_client: Any, script: Any
) -> None:
    def broken(endpoint: str, outcome: str, seconds: float) -> None:
        raise RuntimeError("metrics backend down")

    client = make_client(script(httpx.Response(204)), on_request=broken)
    with capture_logs() as logs:
        await client.end_conversation("c1")
    assert any(e["event"] == "tavus.on_request_hook_failed" for e in logs)


async def test_one_log_line_per_attempt(make_client: Any, script: Any) -> None:
    rec = script(httpx.Response(502), ok())
    client = make_client(rec, retry_attempts=2)
    with capture_logs() as logs:
        await client.end_conversation("c1")
    lines = [e for e in logs if e["event"] == "tavus.request"]
    assert [(e["attempt"], e["outcome"], e["status"]) for e in lines] == [
        (1, "server_error", 502),
        (2, "ok", 200),
    ]
    assert all(e["endpoint"] == "end_conversation" for e in lines)
    assert all(e["conversation_id"] == "c1" for e in lines)
    assert all(isinstance(e["elapsed_ms"], float) for e in lines)
    assert lines[0]["log_level"] == "warning"
    assert lines[1]["log_level"] == "info"


async def test_logs_and_errors_never_contain_secrets(
    make_client: Any, script: Any, api_key: str
) -> None:
    echoing = httpx.Response(
        400,
        json={
            "message": f"Invalid callback_url {CALLBACK} with context {CONTEXT!r} (key {api_key})"
        },
    )
    rec = script(httpx.ConnectError("refused"), ok(), httpx.ConnectError("refused"), echoing, ok())
    client = make_client(rec, retry_attempts=3)
    with capture_logs() as logs:
        conv = await client.create_conversation(create_request())
        with pytest.raises(TavusInvalidRequest) as info:
            await client.create_conversation(create_request())
        await client.get_conversation(conv.conversation_id)  # answered with CREATED (room url)

    assert logs, "expected log entries"
    assert any(e.get("event") == "stamina.retry_scheduled" for e in logs)
    assert any(e.get("conversation_id") == "c123456" for e in logs)
    rendered = repr(logs) + str(info.value) + repr(info.value) + repr(client)
    for secret in (api_key, TOKEN, CONTEXT, "career notes", ROOM_URL, MEETING_TOKEN):
        assert secret not in rendered


async def test_outcome_unknown_message_does_not_echo_the_body(
    make_client: Any, script: Any
) -> None:
    body = {"conversation_url": ROOM_URL, "meeting_token": MEETING_TOKEN}  # no conversation_id
    client = make_client(script(ok(body)))
    with pytest.raises(TavusOutcomeUnknown) as info:
        await client.create_conversation(create_request())
    assert info.value.__cause__ is None
    for secret in (ROOM_URL, MEETING_TOKEN):
        assert secret not in str(info.value)


# --- construction and lifecycle --------------------------------------------------------------


@pytest.mark.parametrize("key", ["", " tvsk_x", "tvsk_x\n"])
def test_bad_api_key_is_refused(key: str) -> None:
    with pytest.raises(ValueError, match="api_key"):
        TavusClient("https://tavus.test/v2", key)


async def test_client_configuration(make_client: Any, script: Any, api_key: str) -> None:
    client = make_client(
        script(ok()), connect_timeout_s=2.0, read_timeout_s=8.0, total_timeout_s=12.0
    )
    timeout = client._new_lane().timeout
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (2.0, 8.0, 8.0, 2.0)
    assert api_key not in repr(client)


async def test_context_manager_closes(script: Any, api_key: str) -> None:
    async with TavusClient(
        "https://tavus.test/v2", api_key, transport=httpx.MockTransport(script(ok()))
    ) as client:
        await client.create_conversation(create_request())
        assert not client.is_closed
    assert client.is_closed
