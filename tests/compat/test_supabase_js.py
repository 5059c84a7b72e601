"""The origin app's calls with the real `@supabase/supabase-js` (Node), against the running
service: start, the 409 rejoin, both end shapes, someone else's session, a foreign `user_id`,
and no user token. What `functions.invoke` returned is kept in
`test-artifacts/supabase-js/<database>.json` (`postgresql`, or `pgbouncer`: the transaction
pooler in between)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import THROUGH_PGBOUNCER, RunningService
from tests.support.factories import create_user, session_rows
from tests.support.node import NODE_DIR
from tests.support.supabase import anon_key

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "supabase-js"

#: `functions.invoke`'s error for any non-2xx answer; the body is on `error.context`.
HTTP_ERROR = {
    "name": "FunctionsHttpError",
    "message": "Edge Function returned a non-2xx status code",
}


async def run_invoke_script(node: str, config: dict[str, Any]) -> dict[str, Any]:
    # Async: the service answers on this same event loop.
    process = await asyncio.create_subprocess_exec(
        node,
        "invoke.mjs",
        json.dumps(config),
        cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode()[-4000:]
    results: dict[str, Any] = json.loads(stdout)
    return results


def http_error(result: dict[str, Any], status: int, code: str) -> dict[str, Any]:
    assert "data" not in result, result
    error = result["error"]
    assert {k: error[k] for k in ("name", "message")} == HTTP_ERROR
    assert error["status"] == status, error
    body: dict[str, Any] = error["body"]
    assert body["code"] == code, body
    assert body["error"]
    assert body["request_id"]
    return body


@THROUGH_PGBOUNCER
async def test_the_origin_apps_calls_through_supabase_js(
    service: RunningService, node: str, request: pytest.FixtureRequest
) -> None:
    alice = await create_user(service.db, full_name="Alice Example")
    bob = await create_user(service.db, full_name="Bob Example")
    config = {
        "url": service.url,
        "anonKey": anon_key(service.settings),
        "aliceId": str(alice),
        "bobId": str(bob),
        "aliceToken": service.token(alice),
        "bobToken": service.token(bob),
    }

    results = await run_invoke_script(node, config)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    label = request.node.callspec.id
    (ARTIFACTS / f"{label}.json").write_text(json.dumps(results, indent=2) + "\n")

    # start: the origin's answer, for the token's user.
    start = results["start"]["data"]
    assert start["success"] is True
    assert set(start) == {
        "success",
        "conversation_url",
        "conversation_id",
        "mentor_conversation_id",
        "daily_session_id",
        "persona_name",
    }
    rows = await session_rows(service.db, start["daily_session_id"])
    assert rows["daily"]["user_id"] == alice

    # 409 with what the app needs to rejoin.
    rejoin = http_error(results["rejoin"], 409, "session_already_active")
    for field in ("conversation_url", "conversation_id", "mentor_conversation_id"):
        assert rejoin[field] == start[field]
    assert rejoin["daily_session_id"] == start["daily_session_id"]

    # The shipped page's end (only the Tavus id) works.
    ended = results["end_tavus_id_only"]["data"]
    assert ended["success"] is True
    assert ended["message"] == "Session ended successfully"
    assert isinstance(ended["duration_seconds"], int)
    assert service.sim.conversation(start["conversation_id"])["status"] == "ended"

    # A new start, someone else's end (404, the conversation keeps running), all four ids.
    again = results["start_again"]["data"]
    assert again["conversation_id"] != start["conversation_id"]
    http_error(results["end_someone_elses"], 404, "session_not_found")
    assert results["end_all_four_ids"]["data"]["success"] is True
    assert service.sim.conversation(again["conversation_id"])["status"] == "ended"

    # The origin's hole: Alice asking for Bob. And nobody signed in (anon key as the bearer).
    http_error(results["foreign_user_id"], 403, "user_mismatch")
    http_error(results["no_user_token"], 401, "unauthorized")
    created = service.sim.conversations()["conversations"]
    assert len(created) == 2  # the two starts; nothing for the refused calls
    assert all(str(bob) not in c["conversation_name"] for c in created)
    bob_sessions = await service.client.get("/v1/sessions", headers=service.auth(bob))
    assert bob_sessions.json()["items"] == []
    assert uuid.UUID(start["daily_session_id"])
