"""Chaos: data PostgreSQL cannot store — U+0000 and lone UTF-16 surrogates typed into the room
and posted in callbacks, out-of-range timestamps in cursors, hostile request bodies (issue 10
§4, §10).

Nothing is dropped whole: callbacks are acknowledged (200) and stored with the offending code
points replaced by U+FFFD, the raw body kept in base64; the reconciler's verbose fetch of the
same text works, its pass finishes without errors and recovers a transcript whose callback was
lost; bad cursors and bodies are 4xx problems, never 500.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from facetoface.models import TavusCallbackEvent
from tests.conftest import RunningService
from tests.support.chaos import (
    CHAOS_SETTINGS,
    answered,
    callback_paths,
    conclude,
    converge,
    send,
    sim_state,
)
from tests.support.checker import History, check
from tests.support.factories import create_user, session_rows

JSON = {"content-type": "application/json"}
NUL, SURROGATE = "\x00", "\ud800"
SAID = [f"I typed a NUL{NUL}here", f"and a lone{SURROGATE}surrogate"]
STORED = ["I typed a NUL\ufffdhere", "and a lone\ufffdsurrogate"]


#: No Tavus timeouts are injected here: time enough for a busy machine's simulator to answer.
SETTINGS = {**CHAOS_SETTINGS, "tavus_read_timeout_seconds": 2.0, "tavus_total_timeout_seconds": 2.5}


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return dict(SETTINGS)


def cursor(created_at: str, row_id: str | None = None) -> str:
    raw = json.dumps({"c": created_at, "i": row_id or str(uuid.uuid4())}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def test_unstorable_text_is_stored_replaced_never_dropped(service: RunningService) -> None:
    began = time.monotonic()
    history = History()
    sessions = []
    for _ in range(2):
        user = await create_user(service.db)
        started = answered(
            await send(
                history,
                service.client.post("/v1/sessions", headers=service.auth(user)),
                start=True,
            )
        )
        assert started.status_code == 201, started.text
        sessions.append({**started.json(), "user_id": user})
    delivered, dropped = sessions
    await asyncio.to_thread(service.sim.drain, 5.0)

    # The user types what PostgreSQL cannot store into both rooms, then leaves.
    for body in sessions:
        await asyncio.to_thread(service.sim.join, body["conversation_id"])
        for line in SAID:
            await asyncio.to_thread(service.sim.say, body["conversation_id"], line)
    await asyncio.to_thread(service.sim.leave, delivered["conversation_id"])
    await asyncio.to_thread(service.sim.drain, 5.0)
    # The second transcript's callback is lost: only the reconciler's verbose fetch has it.
    service.sim.set_config(callback_drop_events=["application.transcription_ready"])
    await asyncio.to_thread(service.sim.leave, dropped["conversation_id"])
    await asyncio.to_thread(service.sim.drain, 5.0)

    # Callbacks posted with the same code points as JSON escapes, raw.
    paths = callback_paths(await sim_state(service))
    own_posts = [
        b'{"conversation_id": "%s", "event_type": "application.post_call_action_executed", '
        b'"properties": {"action": "note \\u0000 and \\ud800 and \\udfff\\ud800"}}',
        b'{"conversation_id": "%s", "event_type": "application.something_new", '
        b'"properties": {"k\\u0000ey": ["\\ud800", {"\\udbff": "\\u0000"}]}}',
    ]
    row = uuid.UUID(delivered["mentor_conversation_id"])
    for template in own_posts:
        raw = template % delivered["conversation_id"].encode()
        response = answered(
            await send(
                history,
                service.client.post(paths[delivered["conversation_id"]], content=raw, headers=JSON),
                callback=(row, raw),
            )
        )
        assert response.status_code == 200, response.text
    not_utf8 = answered(
        await send(
            history,
            service.client.post(
                paths[delivered["conversation_id"]], content=b'{"x": "\xff\xfe"}', headers=JSON
            ),
        )
    )
    assert (not_utf8.status_code, not_utf8.json()["code"]) == (400, "malformed_callback")

    # What users send: out-of-range cursor times, unstorable text in a request body.
    owner = service.auth(delivered["user_id"])
    hostile_reads = [
        cursor("0001-01-01T00:00:00+14:00"),  # before year 1 in UTC
        cursor("9999-12-31T23:59:59-14:00"),  # after year 9999 in UTC
        cursor("2026-01-01T00:00:00+00:00", f"{uuid.uuid4()}{NUL}"),
    ]
    for bad in hostile_reads:
        read = answered(
            await send(
                history, service.client.get("/v1/sessions", params={"cursor": bad}, headers=owner)
            )
        )
        assert (read.status_code, read.json()["code"]) == (400, "invalid_cursor"), read.text
    for body in (b'{"mentor_id": "\\u0000"}', b'{"mentor_id": "\\ud800"}', b'{"\\ud800": 1}'):
        refused = answered(
            await send(
                history,
                service.client.post("/v1/sessions", content=body, headers={**owner, **JSON}),
                start=True,
            )
        )
        assert refused.status_code == 422, refused.text

    # Every delivered callback was acknowledged: nothing refused whole.
    state = await sim_state(service)
    outcomes = {
        (c["conversation_id"], d["event_type"]): d["outcome"]
        for c in state["conversations"]
        for d in c["deliveries"]
    }
    transcript_key = (delivered["conversation_id"], "application.transcription_ready")
    assert outcomes[transcript_key] == "delivered", outcomes

    lifted = time.monotonic()
    converge_s, report = await converge(service, lifted)
    recovered = report.actions["recovered:application.transcription_ready"]
    rows = {b["id"]: await session_rows(service.db, b["id"]) for b in sessions}
    texts = {sid: _said(r["conversation"]["transcript"]) for sid, r in rows.items()}
    async with service.db.transaction() as session:
        inbox = (
            await session.execute(
                select(TavusCallbackEvent.raw_body_b64).where(
                    TavusCallbackEvent.mentor_conversation_id == row,
                    TavusCallbackEvent.event_type == "application.transcription_ready",
                )
            )
        ).scalar_one()
    raw_transcript = base64.b64decode(inbox or "")
    detail = answered(
        await send(history, service.client.get(f"/v1/sessions/{delivered['id']}", headers=owner))
    )
    verdict = await check(service.db, service.sim, history, service.name_prefix, verify_events=True)
    conclude(
        "06 hostile data",
        history,
        verdict,
        began=began,
        converge_s=converge_s,
        notes="U+0000 and lone surrogates typed in 2 rooms and posted in 2 callbacks; "
        "1 transcript callback lost, recovered by the verbose fetch; 3 bad cursors, 3 bad bodies",
        expect={
            "the delivered transcript is stored, replaced": texts[delivered["id"]] == STORED,
            "the lost transcript is recovered, replaced": texts[dropped["id"]] == STORED,
            "the reconciler recovered the lost transcript": recovered == 1,
            "the raw callback keeps the escapes": (
                b"\\u0000" in raw_transcript and b"\\ud800" in raw_transcript
            ),
            "the session reads back": detail.status_code == 200
            and "\ufffd" in (detail.json().get("transcript_text") or ""),
            "every session verified, no row error": all(
                r["conversation"]["callbacks_verified_at"] is not None
                and r["conversation"]["reconcile_error"] is None
                for r in rows.values()
            ),
        },
    )


def _said(transcript: Any) -> list[str]:
    """What the user said, in order, from a stored transcript."""
    entries = transcript if isinstance(transcript, list) else []
    return [e["content"] for e in entries if isinstance(e, dict) and e.get("role") == "user"]
