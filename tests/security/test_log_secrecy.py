"""Nothing sensitive reaches the logs, on the happy path or any failure path.

Everything the process prints is captured — the service's structlog events, the standard
library's loggers (uvicorn, SQLAlchemy, psycopg, httpx), the Tavus client and the simulator,
rendered by the formatters `configure_logging` installs, in both formats, at DEBUG (the most an
operator can turn on) — while a whole session runs through the real HTTP path: start, the
callbacks (the simulator's and ours), reads, a conflict, a replay, the end; then forged,
misbound and malformed callbacks, bad tokens, Tavus refusing a create, and an unexpected
database error (PostgreSQL refusing the stored callback). Then none of the secrets or personal
data may appear in the captured text, while the expected events must.

Every sensitive value is a distinctive marker, and the test first checks that each marker did
travel through the service (Tavus got the context, the API returns the transcript), so an
absence from the logs means something.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
import structlog
from sqlalchemy import update

from facetoface.models import Profile, UserGoal
from facetoface.observability.logging import configure_logging
from tests.conftest import RunningService
from tests.support.eventually import eventually
from tests.support.factories import create_user

FIRST_NAME, LAST_NAME = "Quillonz", "Vexmarrowq"
FULL_NAME = f"{FIRST_NAME} {LAST_NAME}"
EMAIL = "quillonz.vexmarrowq.7731@example.com"
GOAL = "Swim the Zanzibarque strait with my estranged brother"
TRANSCRIPT = "Honestly I keep hiding xylophonique receipts from my therapist"
PERCEPTION = "user glanced at a turquoisette aquarium while sighing"
TAVUS_API_KEY = "tvk-live-9b1f0c6e2d7a4f3e8c5b1a0d9e8f7c6b"
HS256_SECRET = "hs256-secret-5f4e3d2c1b0a99887766554433221100ffeeddcc"

#: Events the flow must produce (so the capture cannot pass by being empty).
EXPECTED_EVENTS = [
    "app.started",
    "http.request",
    "session.starting",
    "session.started",
    "session.start_failed",
    "tavus.request",
    "callback.misbound",
    "auth.rejected",
    "request.unhandled_error",
    "tavus_sim.callback.delivered",
]


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"tavus_api_key": TAVUS_API_KEY, "supabase_jwt_secret": HS256_SECRET}


class Capture(logging.Handler):
    """Keeps every record as the production formatter renders it."""

    def __init__(self, formatters: list[logging.Formatter]) -> None:
        super().__init__(logging.DEBUG)
        self.formatters = formatters
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.extend(formatter.format(record) for formatter in self.formatters)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _production_handlers() -> list[logging.Handler]:
    return [
        handler
        for handler in logging.getLogger().handlers
        if isinstance(handler.formatter, structlog.stdlib.ProcessorFormatter)
    ]


def _formatter(fmt: str) -> logging.Formatter:
    """The formatter `configure_logging` installs for `fmt`."""
    configure_logging("DEBUG", fmt, cache=False)
    [handler] = _production_handlers()
    assert handler.formatter is not None
    return handler.formatter


@contextmanager
def _keeping_pytest_handlers() -> Iterator[None]:
    """`configure_logging` (dictConfig) drops every root handler, pytest's too: put those
    back, for its report."""
    root = logging.getLogger()
    others = [h for h in root.handlers if h not in _production_handlers()]
    yield
    for handler in others:
        root.addHandler(handler)


@pytest.fixture
def logs() -> Iterator[Capture]:
    """All log output, as `facetoface serve` with LOG_LEVEL=DEBUG prints it (both formats)."""
    root = logging.getLogger()
    with _keeping_pytest_handlers():
        capture = Capture([_formatter("console"), _formatter("json")])
        # Ours instead of the production stream handler (it would print the same lines).
        for handler in _production_handlers():
            root.removeHandler(handler)
        root.addHandler(capture)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        with _keeping_pytest_handlers():
            configure_logging("WARNING", "console", cache=False)  # as tests/conftest.py left it


def _envelope(conversation_id: str, event_type: str, **properties: Any) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "event_type": event_type,
        "message_type": "application",
        "timestamp": "2026-11-25T10:00:05.000000Z",
        "properties": properties,
    }


async def test_a_whole_session_and_its_failures_log_no_secret(
    logs: Capture, service: RunningService
) -> None:
    client = service.client
    service.sim.set_config(api_key=TAVUS_API_KEY)
    user_id = await create_user(service.db, full_name=FULL_NAME, language="en")
    async with service.db.transaction() as session:
        await session.execute(update(Profile).where(Profile.id == user_id).values(email=EMAIL))
        session.add(UserGoal(user_id=user_id, goal_text=GOAL, progress_percentage=10))
    token = service.token(user_id, email=EMAIL)
    auth = {"Authorization": f"Bearer {token}"}
    sent_authorization = [auth["Authorization"]]

    # --- the happy path ------------------------------------------------------------------
    started = await client.post("/v1/sessions", headers={**auth, "Idempotency-Key": "k-1"})
    assert started.status_code == 201, started.text
    body = started.json()
    sid, cid = body["id"], body["conversation_id"]
    conversation = service.sim.conversation(cid)
    callback_url: str = conversation["callback_url"]
    callback_path = callback_url.removeprefix(service.url)
    callback_token = callback_path.rsplit("/", 1)[1]
    # The personal data really went to Tavus (so its absence from the logs means something).
    context = conversation["conversational_context"]
    assert FULL_NAME in context or FIRST_NAME in context, context
    assert GOAL in context, context

    async def joined() -> bool:
        detail = (await client.get(f"/v1/sessions/{sid}", headers=auth)).json()
        return bool(detail["status"] == "in_progress")

    await eventually(joined, what="the simulator's replica_joined callback came back")
    transcript = [
        {"role": "assistant", "content": f"Hi {FIRST_NAME}, how is the swim training going?"},
        {"role": "user", "content": TRANSCRIPT},
    ]
    for payload in (
        _envelope(cid, "application.transcription_ready", transcript=transcript),
        _envelope(cid, "application.perception_analysis", analysis=PERCEPTION),
    ):
        response = await client.post(callback_path, json=payload)
        assert response.status_code == 200, response.text

    detail = await client.get(f"/v1/sessions/{sid}", headers=auth)
    assert TRANSCRIPT in detail.text
    assert PERCEPTION in detail.text
    assert (await client.get("/v1/sessions", headers=auth)).status_code == 200
    preview = await client.get("/v1/me/context", headers=auth)
    assert GOAL in preview.text

    conflict = await client.post("/v1/sessions", headers={**auth, "Idempotency-Key": "k-2"})
    assert conflict.status_code == 409, conflict.text
    replay = await client.post("/v1/sessions", headers={**auth, "Idempotency-Key": "k-1"})
    assert replay.headers.get("idempotent-replayed") == "true", replay.text

    # --- forged, misbound and malformed callbacks ---------------------------------------
    row_id = callback_path.rsplit("/", 2)[1]
    forged_token = "forgedtoken" + uuid.uuid4().hex
    leaky = _envelope(cid, "application.transcription_ready", transcript=TRANSCRIPT)
    for path, payload, status in (
        (f"/v1/callbacks/tavus/{row_id}/{forged_token}", leaky, 404),
        (f"/v1/callbacks/tavus/{uuid.uuid4()}/{callback_token}", leaky, 404),
        (callback_path, {**leaky, "conversation_id": "c0ther0conversation"}, 404),
        (callback_path, {**leaky, "event_type": 7}, 400),
        (callback_path, {**leaky, "timestamp": f"yesterday, {TRANSCRIPT}"}, 400),
    ):
        response = await client.post(path, json=payload)
        assert response.status_code == status, (path, response.text)
    not_json = await client.post(callback_path, content=f"transcript: {TRANSCRIPT}".encode())
    assert not_json.status_code == 400

    # --- bad tokens ------------------------------------------------------------------------
    header, payload_part, _signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    bad_tokens = [
        f"Bearer {service.token(user_id, email=EMAIL, ttl_seconds=-3600)}",  # expired
        f"Bearer {header}.{payload_part}.{'A' * 43}",  # wrong signature
        "Bearer " + jwt.encode(claims, "another-secret-of-32-bytes-at-least!", "HS256"),
        "Bearer " + jwt.encode(claims, HS256_SECRET, "HS384"),  # right key, other alg
        f"Bearer not.a.jwt{FIRST_NAME}",
        f"Basic {token}",
    ]
    for value in bad_tokens:
        response = await client.get("/v1/sessions", headers={"Authorization": value})
        assert response.status_code == 401, (value, response.text)
    sent_authorization += bad_tokens

    # --- the end; the simulator's post-call callbacks ----------------------------------------
    ended = await client.post(f"/v1/sessions/{sid}/end", headers=auth)
    assert ended.status_code == 200, ended.text

    async def delivered() -> bool:
        deliveries = service.sim.conversation(cid).get("deliveries", [])
        return len([d for d in deliveries if d.get("outcome") == "delivered"]) >= 4

    await eventually(delivered, what="the simulator delivered its post-call callbacks")

    # --- Tavus refuses a create (and echoes what it was sent), then fails -------------------
    service.sim.add_fault(
        kind="status",
        endpoint="create",
        status=400,
        body={"message": f"conversational_context rejected: {FULL_NAME}, {EMAIL}, {GOAL}"},
    )
    refused = await client.post("/v1/sessions", headers=auth)
    assert refused.status_code == 502, refused.text
    service.sim.add_fault(kind="status", endpoint="create", status=500, count=5)
    failed = await client.post("/v1/sessions", headers=auth)
    assert failed.status_code == 503, failed.text

    # --- an unexpected database error while a callback with a transcript is stored ---------
    # A constraint the schema does not have (added, as the owner, for this request only):
    # PostgreSQL refuses the inbox row, an error the service has no handling for.
    refuse_actions = (
        "ALTER TABLE tavus_callback_events ADD CONSTRAINT injected_failure"
        " CHECK (event_type <> 'application.post_call_action_executed') NOT VALID"
    )
    async with service.db.transaction() as session:
        await session.execute(sa.text(refuse_actions))
    try:
        action = _envelope(
            cid,
            "application.post_call_action_executed",
            action="send_summary",
            summary=f"{FULL_NAME} said: {TRANSCRIPT}",
        )
        broken = await client.post(callback_path, json=action)
    finally:
        async with service.db.transaction() as session:
            await session.execute(
                sa.text("ALTER TABLE tavus_callback_events DROP CONSTRAINT injected_failure")
            )
    assert broken.status_code == 500, broken.text
    assert TRANSCRIPT not in broken.text

    # --- what was printed ----------------------------------------------------------------
    text = logs.text
    assert len(logs.lines) > 50, text
    missing = [name for name in EXPECTED_EVENTS if name not in text]
    assert not missing, (missing, text)
    json_lines = [json.loads(line) for line in logs.lines if line.startswith("{")]
    routes = {line.get("route") for line in json_lines if line.get("event") == "http.request"}
    assert "/v1/callbacks/tavus/{mentor_conversation_id}/{token}" in routes, routes
    # A callback logs one line: its request's, carrying what it did.
    assert any(
        line.get("event") == "http.request" and line.get("callback_outcome") == "applied"
        for line in json_lines
    )
    assert not any(line.get("event") == "callback.ingested" for line in json_lines)

    secrets = {
        "bearer token": token,
        "token signature": token.rsplit(".", 1)[1],
        "callback URL token": callback_token,
        "forged callback token": forged_token,
        "Tavus API key": TAVUS_API_KEY,
        "HS256 secret": HS256_SECRET,
        "transcript sentence": TRANSCRIPT,
        "transcript word": "xylophonique",
        "perception phrase": PERCEPTION,
        "perception word": "turquoisette",
        "goal text": GOAL,
        "goal word": "Zanzibarque",
        "full name": FULL_NAME,
        "first name": FIRST_NAME,
        "last name": LAST_NAME,
        "email": EMAIL,
        "email local part": EMAIL.split("@", 1)[0],
        "system prompt": "\n".join(context.splitlines()[:2]),
    }
    for number, value in enumerate(sent_authorization):
        secrets[f"Authorization header #{number}"] = value
        secrets[f"Authorization credentials #{number}"] = value.split(" ", 1)[-1]
    leaked = {name: _around(text, value) for name, value in secrets.items() if value in text}
    assert not leaked, "\n".join(f"{name} in: {line}" for name, line in leaked.items())


def _around(text: str, value: str, width: int = 160) -> str:
    """The first log line holding `value`, for the failure message."""
    at = text.index(value)
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    return text[start : end if end != -1 else None][: width * 4]


@pytest.mark.parametrize(
    "service_overrides",
    [{"session_private_rooms": True, "tavus_memory": "participant"}],
)
async def test_a_private_rooms_meeting_token_never_reaches_the_logs(
    logs: Capture, service: RunningService
) -> None:
    """Every place the token travels — the start's answer and its replay, the 409, the live
    session read, the origin's start (a join URL), the room, the end — and it is in none of
    the printed lines."""
    client = service.client
    user_id = await create_user(service.db, full_name=FULL_NAME)
    auth = service.auth(user_id)

    started = await client.post("/v1/sessions", headers={**auth, "Idempotency-Key": "k-room"})
    assert started.status_code == 201, started.text
    body = started.json()
    token = body["meeting_token"]
    replay = await client.post("/v1/sessions", headers={**auth, "Idempotency-Key": "k-room"})
    conflict = await client.post("/v1/sessions", headers=auth)
    detail = await client.get(f"/v1/sessions/{body['id']}", headers=auth)
    assert token in replay.text
    assert token in conflict.text
    assert token in detail.text
    room = body["conversation_id"]
    await asyncio.to_thread(service.sim.join, room, FIRST_NAME, token=token)
    await asyncio.to_thread(service.sim.say, room, TRANSCRIPT)
    ended = await client.post(f"/v1/sessions/{body['id']}/end", headers=auth)
    assert ended.status_code == 200

    origin = await client.post("/functions/v1/start-tavus-session", json={}, headers=auth)
    assert origin.status_code == 200, origin.text
    join_url = origin.json()["conversation_url"]
    origin_token = join_url.rsplit("t=", 1)[1]
    await client.post(
        "/functions/v1/end-tavus-session",
        json={"daily_session_id": origin.json()["daily_session_id"]},
        headers=auth,
    )

    text = logs.text
    assert "session.started" in text
    assert "tavus.request" in text
    for name, value in {
        "meeting token": token,
        "origin's meeting token": origin_token,
        "join URL": join_url,
        "transcript sentence": TRANSCRIPT,
    }.items():
        assert value not in text, f"{name} in: {_around(text, value)}"
