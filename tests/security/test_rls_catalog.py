"""The database's security configuration, read from the catalog (OWASP API8).

Every table in `public` has RLS; the application login role is no superuser, has no BYPASSRLS,
owns nothing and can reach no role that has any of those; no view bypasses RLS; no SECURITY
DEFINER function runs with a mutable search_path; every column a policy filters on leads an
index; the privileges of `anon`, `authenticated`, `facetoface_service` and
`facetoface_delegate` are exactly the designed ones, the delegate's the service's, and its
policies plain predicates. Plus the migrations' downgrade, and their behaviour on a Supabase
database.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from alembic import command

from facetoface.db import Database, alembic_config, app_login_role_sql, run_migrations
from tests.security.rls import db_settings, rows
from tests.support.postgres import APP_ROLE, PostgresServer, fresh_database

TABLES = {
    "profiles",
    "onboarding_profiles",
    "ritual_preferences",
    "user_emotional_categories",
    "user_goals",
    "user_personas",
    "mentor_avatars",
    "daily_sessions",
    "mentor_conversations",
    "tavus_callback_events",
    "idempotency_keys",
    "reconcile_runs",
    "alembic_version",
    "facetoface_installation",
    "user_preferences",
    "schema_revisions",
    "webhook_events",
    "mentor_tool_calls",
    "goal_changes",
    "session_reports",
}
#: 47 from 0005, one from 0006 (facetoface_installation), one from 0008 (reconcile_runs), six
#: from 0009 (user_preferences' five; the service reading the caller's own events).
#: One from 0012 (schema_revisions, read by the service); ten from 0013 (the mentor's tool
#: calls, goal changes and reports: three each, and undo's update); four from 0014
#: (webhook_events: the service's only); twenty from 0016 (facetoface_delegate's in public).
POLICIES = 90
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
CRUD = {"SELECT", "INSERT", "UPDATE", "DELETE"}

#: Table-level privileges (a privilege granted on some columns only is listed apart below).
#: `facetoface_delegate` (0016) holds exactly `facetoface_service`'s.
EXPECTED_TABLE_PRIVILEGES: dict[str, dict[str, set[str]]] = {
    "anon": {},
    "authenticated": {
        "profiles": {"SELECT", "DELETE"},
        "onboarding_profiles": CRUD,
        "ritual_preferences": CRUD,
        "user_emotional_categories": CRUD,
        "user_goals": CRUD,
        "user_personas": {"SELECT", "DELETE"},
        "mentor_avatars": {"SELECT"},
        "daily_sessions": {"SELECT"},
        "idempotency_keys": {"SELECT"},
        "user_preferences": CRUD,
        "mentor_tool_calls": {"SELECT", "INSERT"},
        "goal_changes": {"SELECT", "INSERT"},
        "session_reports": {"SELECT", "INSERT"},
    },
    "facetoface_service": {
        "profiles": {"SELECT", "DELETE"},
        "onboarding_profiles": {"SELECT"},
        "ritual_preferences": {"SELECT"},
        "user_emotional_categories": {"SELECT"},
        "user_goals": {"SELECT"},
        "user_personas": {"SELECT"},
        "mentor_avatars": {"SELECT"},
        "daily_sessions": CRUD,
        "mentor_conversations": {"SELECT", "INSERT", "UPDATE"},
        "tavus_callback_events": {"SELECT", "INSERT"},
        "idempotency_keys": CRUD,
        "reconcile_runs": {"SELECT", "INSERT", "DELETE"},
        "alembic_version": {"SELECT"},
        "facetoface_installation": {"SELECT"},
        "user_preferences": {"SELECT"},
        "schema_revisions": {"SELECT"},
        "webhook_events": CRUD,
        "mentor_tool_calls": {"SELECT"},
        "goal_changes": {"SELECT"},
        "session_reports": {"SELECT"},
    },
}
EXPECTED_TABLE_PRIVILEGES["facetoface_delegate"] = EXPECTED_TABLE_PRIVILEGES["facetoface_service"]
#: The service's two roles: acting for nobody, and for one user (0016).
SERVICE_ROLES = ("facetoface_service", "facetoface_delegate")
#: (table, privilege) granted to `authenticated` on some columns only, and columns it lacks.
EXPECTED_COLUMN_PRIVILEGES = {
    ("profiles", "INSERT"): {"subscription_tier"},
    ("profiles", "UPDATE"): {"id", "subscription_tier", "created_at"},
    ("user_personas", "INSERT"): {"tavus_persona_id", "replica_id"},
    ("user_personas", "UPDATE"): {"id", "user_id", "tavus_persona_id", "replica_id", "created_at"},
    # The callback token's hash, a private room's meeting token (the service hands it to the
    # owner, 0009), and the reconciler's and the merge's own bookkeeping.
    ("mentor_conversations", "SELECT"): {
        "callback_token_hash",
        "meeting_token",
        "transcript_digest",
        "recording_digest",
        "callbacks_verified_at",
        "reconcile_error",
    },
    ("tavus_callback_events", "SELECT"): {"payload", "dedupe_key", "raw_body_b64"},
    # Undo marks a change undone; what the change was stays as the mentor made it (0013).
    ("goal_changes", "UPDATE"): {
        "id",
        "user_id",
        "goal_id",
        "session_id",
        "kind",
        "source",
        "before_value",
        "after_value",
        "note",
        "tool_call_id",
        "created_at",
    },
}
#: The same for facetoface_service: retention may redact payloads, nothing else.
EXPECTED_SERVICE_COLUMN_PRIVILEGES = {
    ("tavus_callback_events", "UPDATE"): {"payload", "raw_body_b64"},
}


async def _query(owner: Database, sql: str, **params: Any) -> list[Any]:
    return await rows(owner, sql, params)


async def test_every_table_in_public_has_row_level_security(owner: Database) -> None:
    found = await _query(
        owner, "SELECT tablename, rowsecurity FROM pg_tables WHERE schemaname = 'public'"
    )
    assert {r.tablename for r in found} == TABLES, "a new table needs RLS and grants (0005, 0007)"
    assert [r.tablename for r in found if not r.rowsecurity] == []


async def test_the_application_role_cannot_bypass_row_level_security(owner: Database) -> None:
    [app] = await _query(
        owner,
        "SELECT rolsuper, rolbypassrls, rolinherit, rolcanlogin FROM pg_roles WHERE rolname = :r",
        r=APP_ROLE,
    )
    assert (app.rolsuper, app.rolbypassrls, app.rolinherit, app.rolcanlogin) == (
        False,
        False,
        False,
        True,
    )
    # Every role it can become (SET ROLE): none bypasses RLS, none owns a table.
    reachable = await _query(
        owner,
        "SELECT rolname, rolsuper, rolbypassrls, rolcanlogin FROM pg_roles"
        " WHERE pg_has_role(:r, oid, 'MEMBER') ORDER BY rolname",
        r=APP_ROLE,
    )
    assert [r.rolname for r in reachable] == [
        "authenticated",
        "facetoface_app",
        "facetoface_delegate",
        "facetoface_service",
    ]
    assert [r.rolname for r in reachable if r.rolsuper or r.rolbypassrls] == []
    owned = await _query(
        owner,
        "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"
        " AND pg_has_role(:r, tableowner, 'MEMBER')",
        r=APP_ROLE,
    )
    assert owned == []
    # No FORCE ROW LEVEL SECURITY is needed for that reason, and none is set (the owner runs
    # migrations and administration).
    forced = await _query(
        owner,
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " AND relkind = 'r' AND relforcerowsecurity",
    )
    assert forced == []


async def test_no_view_bypasses_rls_and_no_definer_function_has_a_mutable_search_path(
    owner: Database,
) -> None:
    views = await _query(
        owner,
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname IN ('public', 'auth') AND c.relkind IN ('v', 'm')"
        " AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)",
    )
    assert views == []
    definers = await _query(
        owner,
        "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname IN ('public', 'auth') AND p.prosecdef"
        " AND NOT coalesce('search_path=\"\"' = ANY (p.proconfig), false)",
    )
    assert definers == []


async def test_every_policy_column_leads_an_index(owner: Database) -> None:
    owner_columns = {
        "profiles": "id",
        "onboarding_profiles": "user_id",
        "ritual_preferences": "user_id",
        "user_emotional_categories": "user_id",
        "user_goals": "user_id",
        "user_personas": "user_id",
        "daily_sessions": "user_id",
        "mentor_conversations": "user_id",
        "idempotency_keys": "user_id",
        "tavus_callback_events": "mentor_conversation_id",
        "user_preferences": "user_id",
        "mentor_tool_calls": "user_id",
        "goal_changes": "user_id",
        "session_reports": "user_id",
    }
    policies = await _query(
        owner, "SELECT tablename, qual, with_check FROM pg_policies WHERE schemaname = 'public'"
    )
    for table, column in owner_columns.items():
        mine = [p for p in policies if p.tablename == table]
        assert mine, table
        assert any(column in f"{p.qual} {p.with_check}" for p in mine), table
        leading = await _query(
            owner,
            "SELECT i.indexrelid::regclass::text AS name FROM pg_index i"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
            " WHERE i.indrelid = CAST(:t AS regclass) AND a.attname = :c AND i.indpred IS NULL",
            t=f"public.{table}",
            c=column,
        )
        assert leading, f"{table}.{column} leads no index"


async def test_policies_use_the_supabase_idiom(owner: Database) -> None:
    """`(select auth.uid())` (an initPlan, once per statement), only `TO` named roles."""
    policies = await _query(
        owner,
        "SELECT policyname, roles::text[] AS roles, permissive, coalesce(qual, '') AS qual,"
        " coalesce(with_check, '') AS with_check FROM pg_policies WHERE schemaname = 'public'",
    )
    assert len(policies) == POLICIES
    for p in policies:
        assert p.permissive == "PERMISSIVE"
        text = f"{p.qual} {p.with_check}"
        if "authenticated" in p.roles:
            assert p.roles == ["authenticated"], p.policyname
            assert "auth.uid()" not in text.replace("( SELECT auth.uid() AS uid)", ""), p.policyname
        elif p.policyname != "alembic_version_select":
            assert p.roles in ([role] for role in SERVICE_ROLES), p.policyname


async def test_the_delegates_policies_name_the_user_plainly(owner: Database) -> None:
    """`facetoface_delegate` acts for one user: no policy of its own may read "or nobody"
    (`caller IS NULL OR …`, which hides the user's id from the planner), and it is no member
    of `facetoface_service`, whose policies would otherwise apply to it too."""
    policies = await _query(
        owner,
        "SELECT schemaname, tablename, policyname, coalesce(qual, '') AS qual,"
        " coalesce(with_check, '') AS with_check FROM pg_policies"
        " WHERE 'facetoface_delegate' = ANY (roles)",
    )
    assert policies
    for p in policies:
        assert "IS NULL" not in f"{p.qual} {p.with_check}".upper(), p.policyname
    # Every table the service reaches for a user, the delegate reaches too (by a policy).
    tables = {(p.schemaname, p.tablename) for p in policies}
    served = await _query(
        owner,
        "SELECT DISTINCT schemaname, tablename FROM pg_policies"
        " WHERE 'facetoface_service' = ANY (roles)"
        " AND coalesce(qual, with_check) NOT LIKE '%IS NULL)'",
    )
    assert {(s.schemaname, s.tablename) for s in served} <= tables
    [member] = await _query(
        owner,
        "SELECT pg_has_role('facetoface_delegate', 'facetoface_service', 'MEMBER') AS service,"
        " pg_has_role('facetoface_service', 'facetoface_delegate', 'MEMBER') AS delegate,"
        " (SELECT rolcanlogin OR rolsuper OR rolbypassrls FROM pg_roles"
        "   WHERE rolname = 'facetoface_delegate') AS unsafe",
    )
    assert (member.service, member.delegate, member.unsafe) == (False, False, False)


async def test_the_delegate_holds_exactly_the_services_privileges(owner: Database) -> None:
    """Granted explicitly (0016), one for one, on every table, column, function and schema of
    `public` and `facetoface`: a later migration that grants the service something must grant
    the delegate the same."""
    acl = (
        "SELECT kind, object, privilege FROM ("
        " SELECT 'table' AS kind, c.oid::regclass::text AS object, a.privilege_type AS privilege,"
        "  a.grantee FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a"
        "  WHERE c.relnamespace IN ('public'::regnamespace, 'facetoface'::regnamespace)"
        " UNION ALL"
        " SELECT 'column', c.oid::regclass::text || '.' || t.attname, a.privilege_type, a.grantee"
        "  FROM pg_attribute t JOIN pg_class c ON c.oid = t.attrelid"
        "  CROSS JOIN LATERAL aclexplode(t.attacl) a"
        "  WHERE c.relnamespace IN ('public'::regnamespace, 'facetoface'::regnamespace)"
        " UNION ALL"
        " SELECT 'function', p.oid::regprocedure::text, a.privilege_type, a.grantee"
        "  FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) a"
        "  WHERE p.pronamespace IN ('public'::regnamespace, 'facetoface'::regnamespace)"
        " UNION ALL"
        " SELECT 'schema', n.nspname::text, a.privilege_type, a.grantee"
        "  FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a"
        "  WHERE n.nspname IN ('public', 'facetoface', 'auth')"
        ") g WHERE g.grantee = CAST(:role AS regrole)"
    )
    service = {tuple(r) for r in await _query(owner, acl, role="facetoface_service")}
    delegate = {tuple(r) for r in await _query(owner, acl, role="facetoface_delegate")}
    assert ("function", "facetoface.start_session", "EXECUTE") in {
        (kind, name.split("(")[0], privilege) for kind, name, privilege in delegate
    }
    assert delegate == service


async def test_privileges_are_exactly_the_designed_ones(owner: Database) -> None:
    for role, expected in EXPECTED_TABLE_PRIVILEGES.items():
        for table in sorted(TABLES):
            found = await _query(
                owner,
                "SELECT p AS privilege FROM unnest(CAST(:privs AS text[])) AS p"
                " WHERE has_table_privilege(:role, CAST(:t AS regclass), p)",
                privs=list(PRIVILEGES),
                role=role,
                t=f"public.{table}",
            )
            assert {r.privilege for r in found} == expected.get(table, set()), (role, table)
    # anon: not even on a single column.
    for table in sorted(TABLES):
        [anon] = await _query(
            owner,
            "SELECT has_any_column_privilege('anon', CAST(:t AS regclass), 'SELECT, INSERT,"
            " UPDATE, REFERENCES') AS any",
            t=f"public.{table}",
        )
        assert anon.any is False, table
    for (table, privilege), missing in EXPECTED_COLUMN_PRIVILEGES.items():
        columns = await _query(
            owner,
            "SELECT attname, has_column_privilege('authenticated', attrelid, attnum, :p) AS ok"
            " FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) AND attnum > 0"
            " AND NOT attisdropped",
            p=privilege,
            t=f"public.{table}",
        )
        assert {c.attname for c in columns if not c.ok} == missing, (table, privilege)
    for role in SERVICE_ROLES:
        for (table, privilege), allowed in EXPECTED_SERVICE_COLUMN_PRIVILEGES.items():
            columns = await _query(
                owner,
                "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:t AS regclass)"
                " AND attnum > 0 AND NOT attisdropped"
                " AND has_column_privilege(:role, attrelid, attnum, :p)",
                role=role,
                p=privilege,
                t=f"public.{table}",
            )
            assert {c.attname for c in columns} == allowed, (role, table, privilege)


async def test_only_the_service_may_run_the_merge_functions(owner: Database) -> None:
    """`facetoface.*` (the one-round-trip merge and start) run with the caller's rights, but
    only the service's roles (`facetoface_service`, `facetoface_delegate`) may call them: not
    a signed-in user through Supabase's REST API, not anon, not the login role itself."""
    functions = await _query(
        owner,
        "SELECT p.oid::regprocedure::text AS name, p.prosecdef AS definer,"
        " array_to_string(p.proconfig, ',') AS config"
        " FROM pg_proc p WHERE p.pronamespace = 'facetoface'::regnamespace",
    )
    assert {f.name.split("(")[0] for f in functions} == {
        "facetoface.apply_delta",
        "facetoface.claim_end",
        "facetoface.enqueue_session_events",
        "facetoface.forget_meeting_token",
        "facetoface.remember_deleted_conversation",
        "facetoface.session_json",
        "facetoface.start_session",
    }
    for function in functions:
        assert function.definer is False, function.name  # SECURITY INVOKER: RLS applies
        assert "search_path=" in function.config, function.name
        for role, allowed in (
            ("facetoface_service", True),
            ("facetoface_delegate", True),
            ("authenticated", False),
            ("anon", False),
            (APP_ROLE, False),
        ):
            [grant] = await _query(
                owner,
                "SELECT has_function_privilege(:role, CAST(:f AS regprocedure), 'EXECUTE') AS ok",
                role=role,
                f=function.name,
            )
            assert grant.ok is allowed, (role, function.name)
    for role in ("anon", "authenticated"):
        [usage] = await _query(
            owner, "SELECT has_schema_privilege(:r, 'facetoface', 'USAGE') AS ok", r=role
        )
        assert usage.ok is False, role


# --- the migration --------------------------------------------------------------------------
def _state(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        [row] = conn.execute(
            "SELECT"
            " (SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND rowsecurity) AS rls,"
            " (SELECT count(*) FROM pg_policies WHERE schemaname = 'public') AS policies,"
            " (SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure('auth.uid()')) AS uid,"
            " (SELECT to_regnamespace('auth') IS NOT NULL) AS schema,"
            " (SELECT count(*) FROM information_schema.role_table_grants"
            "   WHERE grantee IN ('anon', 'authenticated', 'facetoface_service',"
            "   'facetoface_delegate')"
            "   AND table_schema = 'public') AS grants"
        ).fetchall()
        assert row is not None
        return dict(zip(("rls", "policies", "uid", "schema", "grants"), row, strict=True))


def test_downgrade_removes_rls_and_the_shim_and_upgrade_restores_them(
    pg_server: PostgresServer,
) -> None:
    with fresh_database(pg_server, "rls_migration") as name:
        url = pg_server.url(name)
        settings = db_settings(url)
        run_migrations(settings, "0004")
        before = _state(url)
        run_migrations(settings)
        after = _state(url)
        command.downgrade(alembic_config(settings), "0004")
        down = _state(url)
        run_migrations(settings)
        again = _state(url)
    assert before == {"rls": 0, "policies": 0, "uid": None, "schema": False, "grants": 0}
    assert after["rls"] == len(TABLES)
    assert after["policies"] == POLICIES
    assert after["schema"] is True
    assert "request.jwt.claim.sub" in after["uid"]
    assert down == before
    assert again == after


SUPABASE_UID = "select nullif(current_setting('request.jwt.claim.sub', true), '')::uuid"

#: What a Supabase database already has: an `auth` schema with Supabase's functions.
SUPABASE_AUTH = f"""
CREATE SCHEMA auth;
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$ {SUPABASE_UID} $$;
CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE
  AS $$ select nullif(current_setting('request.jwt.claims', true), '')::jsonb $$;
CREATE TABLE auth.users (id uuid PRIMARY KEY);
"""


def _execute(url: str, sql: str) -> None:
    """Run `sql` (several statements: the simple query protocol) on `url`."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.encode())


def test_supabase_auth_functions_are_left_alone(pg_server: PostgresServer) -> None:
    with fresh_database(pg_server, "rls_supabase") as name:
        url = pg_server.url(name)
        settings = db_settings(url)
        _execute(url, SUPABASE_AUTH)
        run_migrations(settings)
        up = _state(url)
        command.downgrade(alembic_config(settings), "0004")
        down = _state(url)
    assert up["uid"].strip() == SUPABASE_UID
    assert up["rls"] == len(TABLES)
    assert down["uid"].strip() == SUPABASE_UID
    assert down["schema"] is True


def test_a_login_role_set_up_before_the_delegate_may_take_it_after_migrating(
    pg_server: PostgresServer,
) -> None:
    """A deployment ran `app_login_role_sql` once, when it granted `authenticated` and
    `facetoface_service` only: migration 0016 makes that login role a member of
    `facetoface_delegate` too, so the new code's first transaction for a user can switch to
    it; the downgrade leaves the role holding nothing, and upgrading again is idempotent."""
    login = f"rls_login_{uuid.uuid4().hex[:10]}"
    with fresh_database(pg_server, "rls_delegate") as name:
        url = pg_server.url(name)
        settings = db_settings(url)
        run_migrations(settings, "0015")
        _execute(url, f"CREATE ROLE {login} LOGIN NOINHERIT")
        try:
            _execute(url, f"GRANT authenticated, facetoface_service TO {login}")
            run_migrations(settings)
            with psycopg.connect(url) as conn:
                conn.execute(f"SET ROLE {login}")
                conn.execute(f"SET ROLE {DELEGATE}")  # as the login role may now
                [runs] = conn.execute(
                    "SELECT bool_and(has_function_privilege(oid, 'EXECUTE')) FROM pg_proc"
                    " WHERE pronamespace = 'facetoface'::regnamespace"
                ).fetchall()
            assert runs == (True,)
            command.downgrade(alembic_config(settings), "0015")
            assert _delegate_grants(url) == 0
            run_migrations(settings)
            assert _delegate_grants(url) > 0
        finally:
            _execute(url, f"DROP OWNED BY {login}; DROP ROLE {login}")


DELEGATE = "facetoface_delegate"


def _delegate_grants(url: str) -> int:
    """The delegate's table and function grants and its policies in the database at `url`."""
    with psycopg.connect(url) as conn:
        [row] = conn.execute(
            "SELECT (SELECT count(*) FROM information_schema.role_table_grants"
            "        WHERE grantee = %(r)s)"
            " + (SELECT count(*) FROM information_schema.role_routine_grants"
            "    WHERE grantee = %(r)s)"
            " + (SELECT count(*) FROM pg_policies WHERE %(r)s = ANY (roles))",
            {"r": DELEGATE},
        ).fetchall()
    return int(row[0])


# --- the operator's helper ------------------------------------------------------------------
def test_login_role_helper_is_idempotent_and_refuses_unsafe_roles(pg_database_url: str) -> None:
    _execute(pg_database_url, app_login_role_sql(APP_ROLE))  # already set up: nothing changes
    _execute(pg_database_url, app_login_role_sql(APP_ROLE))
    with pytest.raises(psycopg.Error, match="superuser or has BYPASSRLS"):
        _execute(pg_database_url, app_login_role_sql("postgres"))
    with pytest.raises(ValueError, match="role name"):
        app_login_role_sql("app'; DROP TABLE profiles; --")
