"""The service under row-level security: which role each path runs as, and what it costs."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from facetoface.db import Database, Identity, Role
from facetoface.db.statements import IDENTITY_SQL
from tests.conftest import RunningService
from tests.security.rls import db_settings, rows
from tests.support.factories import create_user
from tests.support.statements import StatementCounter


async def test_the_service_connects_as_the_application_role(service: RunningService) -> None:
    """The whole PostgreSQL suite runs the app as `facetoface_app`, not as the owner, and
    switches per transaction: the caller as `authenticated`, the service acting for a caller
    as `facetoface_delegate` (plain `user_id = caller` policies), acting for nobody as
    `facetoface_service`."""
    user_id = await create_user(service.db)
    identity = Identity(user_id)
    checks: list[tuple[Identity | None, Role | None, str]] = [
        (None, None, "facetoface_app"),
        (None, "service", "facetoface_service"),
        (identity, "service", "facetoface_delegate"),
        (identity, "user", "authenticated"),
        (identity, None, "authenticated"),
    ]
    for who, role, expected in checks:
        [row] = await rows(
            service.state.db,
            "SELECT current_user AS role, session_user AS login",
            identity=who,
            role=role,
        )
        assert (row.role, row.login) == (expected, "facetoface_app"), (who, role)


async def test_every_transaction_of_start_and_end_pays_one_identity_statement(
    service: RunningService,
) -> None:
    """The price of the second wall: every round trip carries one identity statement in the
    same message (role, claims, timeout). Start = 2 statements + 2 identity statements (its
    two round trips), end = 2 + 2 (the claim reads the session back in the same statement,
    `facetoface.claim_end`), a read 1 + 1. `StatementCounter.count` leaves the identity
    statements out; `total` has them; the wire (tests/sessions/test_round_trips.py) sees one
    round trip per message."""
    user_id = await create_user(service.db)
    headers = service.auth(user_id)
    service.sim.set_config(callback_drop_probability=1.0)
    await service.client.get("/v1/sessions/00000000-0000-0000-0000-000000000000", headers=headers)

    counter = StatementCounter(service.db.engine)
    try:
        started = await service.client.post("/v1/sessions", headers=headers)
        start = (counter.count, counter.identity_count, counter.total)
        start_statements = list(counter.statements)
        counter.reset()
        ended = await service.client.post(
            f"/v1/sessions/{started.json()['id']}/end", headers=headers
        )
        end = (counter.count, counter.identity_count, counter.total)
        counter.reset()
        listed = await service.client.get("/v1/sessions", headers=headers)
        read = (counter.count, counter.identity_count, counter.total)
    finally:
        counter.close()

    assert (started.status_code, ended.status_code, listed.status_code) == (201, 200, 200)
    assert start == (2, 2, 4), start_statements
    assert end == (2, 2, 4)
    assert read == (1, 1, 2)


async def test_another_users_session_is_invisible_over_http(service: RunningService) -> None:
    """End to end under RLS: Bob gets 404 for Alice's session (read and end), Alice's session
    stays live; the app's check and the database's agree."""
    alice, bob = await create_user(service.db), await create_user(service.db)
    service.sim.set_config(callback_drop_probability=1.0)
    started = await service.client.post("/v1/sessions", headers=service.auth(alice))
    assert started.status_code == 201
    sid = started.json()["id"]
    for method, path in (("GET", f"/v1/sessions/{sid}"), ("POST", f"/v1/sessions/{sid}/end")):
        response = await service.client.request(method, path, headers=service.auth(bob))
        assert response.status_code == 404, (method, path)
    mine = await service.client.get(f"/v1/sessions/{sid}", headers=service.auth(alice))
    assert mine.json()["status"] == started.json()["status"]


def test_identity_is_one_statement_with_bound_parameters() -> None:
    assert IDENTITY_SQL.text.count("SELECT") == 1
    assert ";" not in IDENTITY_SQL.text
    for name in ("_db_role", "_db_claims", "_db_sub", "_db_timeout"):
        assert f"%({name})s" in IDENTITY_SQL.text


async def test_the_setting_turns_role_switching_off(pg_database_url: str) -> None:
    """`DB_ROW_LEVEL_SECURITY=false`: transactions run as the login role (here the owner),
    with no identity statement (only the statement timeout) — and a user transaction still
    needs the caller's identity."""
    db = Database(db_settings(pg_database_url, db_row_level_security=False))
    counter = StatementCounter(db.engine)
    try:
        assert db.row_level_security is False
        [row] = await rows(
            db,
            "SELECT current_user AS role, current_setting('request.jwt.claim.sub', true) AS sub",
            identity=Identity(uuid.uuid4()),
            role="service",
        )
        assert row.role == "postgres"
        assert row.sub in ("", None)
        # The transaction's own statement, and its prefix: the statement timeout alone.
        assert (counter.count, counter.identity_count) == (1, 1)
        with pytest.raises(ValueError, match="identity"):
            async with db.transaction(role="user"):
                pass
    finally:
        counter.close()
        await db.dispose()


def test_the_documented_login_role_sql_is_the_helpers() -> None:
    """docs/security.md prints the SQL operators run; it must be what the tests run."""
    from facetoface.db import app_login_role_sql

    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    block = re.search(r"<!-- app-login-role-sql:[^\n]*-->\n```sql\n(.*?)\n```", doc, re.S)
    assert block is not None, "docs/security.md lost the login role SQL"
    assert block.group(1) == app_login_role_sql()
