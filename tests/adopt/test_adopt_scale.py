"""`--adopt` at scale and on impossible rows (issue 17 item 7).

2,000 origin conversations (generated in SQL) are linked set-based: the adoption sends as many
statements for 2,000 rows as for 80 (it was a Python loop over candidate pairs — quadratic —
plus two statements per unlinked row, so any size above 80 tells the two apart). Among them the
rows that used to lock a user out or break the end paths: a live conversation whose Tavus id is
not one (`conv 42/../x`), and one started 100 years ahead (kept as "the newest", it closed the
user's genuinely younger live row). Both are listed and closed; then `serve` runs on the adopted
database and those users start and end sessions with no 409-forever and no 500.

The times for 2,000 / 8,000 / 10,000 rows are measured by `bench/adopt_scale.py`, not here.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event

from bench.adopt_scale import generated
from facetoface.auth.dev_issuer import mint_token
from facetoface.migrations.adopt import adopt_database
from tavus_sim import SimServer
from tests.adopt.origin_db import fetch, settings
from tests.adopt.origin_db import origin_schema as origin
from tests.adopt.test_adopt import serve
from tests.support.postgres import PostgresServer, create_app_role, fresh_database

pytestmark = [pytest.mark.e2e]


BAD_ID_USER = "0dd00000-0000-4000-8000-000000000001"
FUTURE_USER = "0dd00000-0000-4000-8000-000000000002"
BAD_ID_ROW = "0dd0c000-0000-4000-8000-000000000001"
FUTURE_ROW = "0dd0c000-0000-4000-8000-000000000002"
YOUNGER_ROW = "0dd0c000-0000-4000-8000-000000000003"


ODD_ROWS = f"""
INSERT INTO auth.users (id, email) VALUES ('{BAD_ID_USER}', 'bad-id@example.com'),
  ('{FUTURE_USER}', 'future@example.com');
INSERT INTO public.mentor_conversations (id, user_id, tavus_conversation_id, session_type, status,
  start_time) VALUES
  ('{BAD_ID_ROW}', '{BAD_ID_USER}', 'conv 42/../x', 'extended', 'active',
   now() - interval '5 minutes'),
  ('{FUTURE_ROW}', '{FUTURE_USER}', 'cfuture000001', 'extended', 'active',
   now() + interval '100 years'),
  ('{YOUNGER_ROW}', '{FUTURE_USER}', 'cyounger00001', 'extended', 'active',
   now() - interval '5 minutes');
"""


def adopt_counting(url: str) -> tuple[int, str]:
    """Adopt the database at `url`; (statements the adoption sent, its report)."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        report = adopt_database(settings(url)).render()
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    return len(sent), report


def test_adoption_is_set_based(pg_server: PostgresServer) -> None:
    """As many statements for 2,000 conversations as for 80 (the upgrade after the adoption
    included)."""
    counts = {}
    for users in (20, 500):
        with fresh_database(pg_server, f"adopt-scale-{users}") as name:
            url = pg_server.url(name)
            origin(url, generated(users, 4))
            counts[users], _ = adopt_counting(url)
            [row] = fetch(
                url,
                "SELECT count(*) AS conversations, count(daily_session_id) AS linked"
                " FROM mentor_conversations",
            )
            assert row["conversations"] == row["linked"] == users * 4
    assert counts[20] == counts[500], counts


def test_impossible_rows_are_listed_and_closed_and_nobody_is_locked_out(
    pg_server: PostgresServer, sim: SimServer, tmp_path: Path
) -> None:
    with fresh_database(pg_server, "adopt-odd") as name:
        url = pg_server.url(name)
        origin(url, generated(100, 4), ODD_ROWS)
        _, report = adopt_counting(url)

        assert f"mentor_conversations {BAD_ID_ROW}: tavus_conversation_id is not a Tavus id" in (
            report
        )
        assert f"mentor_conversations {BAD_ID_ROW}: live with an invalid Tavus id" in report
        assert f"mentor_conversations {FUTURE_ROW}: started" in report
        assert "in the future (impossible)" in report
        rows = {
            str(r["id"]): (r["status"], r["failure_code"], r["tavus_conversation_id"])
            for r in fetch(
                url,
                "SELECT id, status, failure_code, tavus_conversation_id FROM mentor_conversations"
                f" WHERE user_id IN ('{BAD_ID_USER}', '{FUTURE_USER}')",
            )
        }
        assert rows == {
            BAD_ID_ROW: ("ended", "closed_by_adoption", None),
            FUTURE_ROW: ("ended", "closed_by_adoption", "cfuture000001"),
            # The genuinely younger live row stays the user's live one.
            YOUNGER_ROW: ("active", None, "cyounger00001"),
        }
        [kept] = fetch(
            url,
            "SELECT row_data->>'tavus_conversation_id' AS id FROM facetoface_adopt.quarantined_rows"
            f" WHERE row_id = '{BAD_ID_ROW}'",
        )
        assert kept["id"] == "conv 42/../x"

        app_url = create_app_role(pg_server, name)
        with serve(app_url, sim, tmp_path) as (base, served):
            answers: list[httpx.Response] = []

            def call(method: str, path: str, user: str, **kwargs: Any) -> httpx.Response:
                token = mint_token(served, user_id=uuid.UUID(user))
                response = client.request(
                    method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
                )
                answers.append(response)
                return response

            with httpx.Client(base_url=base, timeout=15) as client:
                # The user whose live row had a broken id starts (not 409 forever) and ends.
                start = call("POST", "/functions/v1/start-tavus-session", BAD_ID_USER)
                assert start.status_code == 200, start.text
                end = call(
                    "POST",
                    "/functions/v1/end-tavus-session",
                    BAD_ID_USER,
                    json={"tavus_conversation_id": start.json()["conversation_id"]},
                )
                assert end.status_code == 200, end.text
                # Every session of theirs can be asked to end, the closed ones included.
                for user in (BAD_ID_USER, FUTURE_USER):
                    for item in call("GET", "/v1/sessions", user).json()["items"]:
                        call("POST", f"/v1/sessions/{item['id']}/end", user)
                # The other user's younger row was kept live: rejoin it, then it is ended.
                rejoin = call("POST", "/functions/v1/start-tavus-session", FUTURE_USER)
                assert rejoin.status_code in (200, 409), rejoin.text
            assert not [r for r in answers if r.status_code >= 500], [
                (r.request.url.path, r.status_code, r.text) for r in answers
            ]
