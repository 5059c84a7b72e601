"""Row-level security in Supabase's idiom, and least-privilege roles (PostgreSQL only).

- The `auth` shim (schema, `auth.uid()`, `auth.jwt()`) and the roles `anon`, `authenticated`,
  `service_role` are created only where Supabase's are absent, so one migration serves both.
- `facetoface_service` (NOLOGIN, no BYPASSRLS): the service's own writes that no user may make
  (session rows and state, callbacks, the reconciler), with exactly the privileges they need.
- Every table in `public` gets RLS. `anon` gets nothing. `authenticated` — which Supabase's REST
  API hands to every signed-in user — may read its own rows everywhere and write its own rows
  of the profile-type tables, never session state (status, durations, transcripts, Tavus ids),
  its subscription tier, or the Tavus persona/replica of its mentor.
- No view, no SECURITY DEFINER function.

The application's login role is not created here (no passwords in migrations): see
`facetoface.db.app_login_role_sql` and docs/security.md.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 17:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Row-level security and revoked privileges: code from before it connected as the
# tables' owner and wrote without `facetoface_service`.
backward_compatible = False

SERVICE = "facetoface_service"
#: Marks the objects this migration created (so the downgrade drops only those).
SHIM_COMMENT = "facetoface 0005: Supabase-compatible shim (absent Supabase Auth)"

#: The caller, as Supabase's RLS docs write it: an initPlan, evaluated once per statement.
UID = "(select auth.uid())"
#: The caller's id for facetoface_service's policies, read like `auth.uid()` but straight from
#: the settings, so the role needs no privilege on Supabase's `auth` schema. NULL when the
#: service acts for nobody (callbacks, reconciler).
CLAIM_SUB = (
    "(select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),"
    " (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid)"
)
#: The service acting for a user is confined to that user's rows; acting for nobody, not.
SERVICE_ROWS = f"({CLAIM_SUB} is null or user_id = {CLAIM_SUB})"

#: Per-user tables and the column naming their owner.
OWNER_COLUMN = {
    "profiles": "id",
    "onboarding_profiles": "user_id",
    "ritual_preferences": "user_id",
    "user_emotional_categories": "user_id",
    "user_goals": "user_id",
    "user_personas": "user_id",
    "daily_sessions": "user_id",
    "mentor_conversations": "user_id",
    "idempotency_keys": "user_id",
}
#: Profile-type tables a user fully manages (own rows).
USER_WRITABLE = (
    "onboarding_profiles",
    "ritual_preferences",
    "user_emotional_categories",
    "user_goals",
)
#: What facetoface_service writes: session rows and state (start, end, callbacks, reconciler),
#: idempotency keys, and deletions on a user's request (a session; everything of a user).
SERVICE_WRITES = {
    "daily_sessions": "SELECT, INSERT, UPDATE, DELETE",
    "mentor_conversations": "SELECT, INSERT, UPDATE",
    "idempotency_keys": "SELECT, INSERT, UPDATE, DELETE",
}
#: Every table in `public` at this revision (the test suite checks none is missed).
TABLES = (
    *OWNER_COLUMN,
    "mentor_avatars",
    "tavus_callback_events",
    "alembic_version",
)

# Column lists for column-level grants (the columns at this revision; a later migration that
# adds a column a user may read or write grants it explicitly).
PROFILE_INSERT = (
    "id, email, full_name, avatar_url, language, onboarding_completed, timezone, "
    "created_at, updated_at"
)  # not subscription_tier: a user must not make themselves `paid`
PROFILE_UPDATE = (
    "email, full_name, avatar_url, language, onboarding_completed, timezone, updated_at"
)
PERSONA_INSERT = (
    "id, user_id, name, specialization, mentor_avatar_id, is_active, created_at, updated_at"
)
PERSONA_UPDATE = "name, specialization, mentor_avatar_id, is_active, updated_at"
# not tavus_persona_id / replica_id: they pick the Tavus replica billed for the user, and
# would bypass the premium check that goes by the mentor avatar.
CONVERSATION_SELECT = (
    "id, user_id, daily_session_id, user_persona_id, tavus_conversation_id, conversation_name, "
    "conversation_url, persona_id, replica_id, mentor_name, mentor_avatar_url, session_type, "
    "status, start_time, end_time, duration_seconds, shutdown_reason, failure_code, "
    "replica_joined_at, shutdown_at, created_at, updated_at, closed_at, transcript, recording, "
    "perception_analysis, post_call_actions, version, reconcile_lease_until, reconcile_attempts"
)  # not callback_token_hash
EVENT_SELECT = "id, mentor_conversation_id, conversation_id, event_type, event_timestamp, outcome, received_at"  # not the raw payload or the dedupe key


def _create_role_if_missing(name: str, attributes: str) -> None:
    # Roles are cluster-wide: another database's migration may be creating it right now.
    op.execute(
        f"""
        DO $$
        BEGIN
          IF to_regrole('{name}') IS NULL THEN
            BEGIN
              CREATE ROLE {name} {attributes};
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
              NULL;
            END;
          END IF;
        END
        $$"""
    )


def _policies() -> list[tuple[str, str, str, str, str | None, str | None]]:
    """(name, table, command, role, USING, WITH CHECK) of every policy this migration owns."""
    own = f"{UID} = user_id"
    profile_own = f"{UID} = id"
    policies: list[tuple[str, str, str, str, str | None, str | None]] = [
        # profiles: the owner only (the origin let every signed-in user read every profile).
        ("profiles_select_own", "profiles", "SELECT", "authenticated", profile_own, None),
        ("profiles_insert_own", "profiles", "INSERT", "authenticated", None, profile_own),
        ("profiles_update_own", "profiles", "UPDATE", "authenticated", profile_own, profile_own),
        ("profiles_delete_own", "profiles", "DELETE", "authenticated", profile_own, None),
    ]
    # The user's own data (and mentors; column grants keep the Tavus ids out of reach).
    for table in (*USER_WRITABLE, "user_personas"):
        policies += [
            (f"{table}_select_own", table, "SELECT", "authenticated", own, None),
            (f"{table}_insert_own", table, "INSERT", "authenticated", None, own),
            (f"{table}_update_own", table, "UPDATE", "authenticated", own, own),
            (f"{table}_delete_own", table, "DELETE", "authenticated", own, None),
        ]
    policies += [
        # The mentor catalogue: active mentors.
        (
            "mentor_avatars_select_active",
            "mentor_avatars",
            "SELECT",
            "authenticated",
            "is_active",
            None,
        ),
        # Sessions: read own; every write is the service's.
        ("daily_sessions_select_own", "daily_sessions", "SELECT", "authenticated", own, None),
        (
            "mentor_conversations_select_own",
            "mentor_conversations",
            "SELECT",
            "authenticated",
            own,
            None,
        ),
        # A session's event timeline (the history API shows it). The inbox has no user column,
        # so this is the one policy with a subquery; both sides are indexed
        # (mentor_conversation_id leads an index; mentor_conversations by its user_id index).
        (
            "tavus_callback_events_select_own",
            "tavus_callback_events",
            "SELECT",
            "authenticated",
            "mentor_conversation_id IN (SELECT mc.id FROM public.mentor_conversations mc"  # noqa: S608
            f" WHERE mc.user_id = {UID})",
            None,
        ),
        ("idempotency_keys_select_own", "idempotency_keys", "SELECT", "authenticated", own, None),
    ]
    # facetoface_service reads a user's context only while acting for that user (start).
    for table in ("profiles", *USER_WRITABLE, "user_personas"):
        column = OWNER_COLUMN[table]
        policies.append(
            (f"{table}_service_select", table, "SELECT", SERVICE, f"{column} = {CLAIM_SUB}", None)
        )
    policies.append(
        ("mentor_avatars_service_select", "mentor_avatars", "SELECT", SERVICE, "is_active", None)
    )
    # Session state: the caller's rows, or any row when acting for nobody (callbacks,
    # reconciler). Deleting (a user's data-rights request) only while acting for that user.
    for table in ("daily_sessions", "mentor_conversations"):
        policies += [
            (f"{table}_service_select", table, "SELECT", SERVICE, SERVICE_ROWS, None),
            (f"{table}_service_insert", table, "INSERT", SERVICE, None, SERVICE_ROWS),
            (f"{table}_service_update", table, "UPDATE", SERVICE, SERVICE_ROWS, SERVICE_ROWS),
        ]
    for_the_user = f"user_id = {CLAIM_SUB}"
    policies += [
        ("daily_sessions_service_delete", "daily_sessions", "DELETE", SERVICE, for_the_user, None),
        ("profiles_service_delete", "profiles", "DELETE", SERVICE, f"id = {CLAIM_SUB}", None),
        # Keys: the caller's, or expired ones of anybody (the purge acts for nobody).
        (
            "idempotency_keys_service_all",
            "idempotency_keys",
            "ALL",
            SERVICE,
            SERVICE_ROWS,
            SERVICE_ROWS,
        ),
    ]
    # The inbox is written by callbacks and the reconciler (and redacted by its retention
    # pass), which act for nobody.
    nobody = f"{CLAIM_SUB} is null"
    policies += [
        (
            "tavus_callback_events_service_all",
            "tavus_callback_events",
            "ALL",
            SERVICE,
            nobody,
            nobody,
        ),
        # The schema version: readable by whoever is granted SELECT on it (the service, and
        # the login role through `app_login_role_sql`), never by anon/authenticated.
        ("alembic_version_select", "alembic_version", "SELECT", "PUBLIC", "true", None),
    ]
    return policies


def _grants() -> list[str]:
    """Every privilege this migration grants on the tables (all else is revoked)."""
    grants = [
        "GRANT SELECT, DELETE ON public.profiles TO authenticated",
        f"GRANT INSERT ({PROFILE_INSERT}) ON public.profiles TO authenticated",
        f"GRANT UPDATE ({PROFILE_UPDATE}) ON public.profiles TO authenticated",
        *[
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON public.{table} TO authenticated"
            for table in USER_WRITABLE
        ],
        "GRANT SELECT, DELETE ON public.user_personas TO authenticated",
        f"GRANT INSERT ({PERSONA_INSERT}) ON public.user_personas TO authenticated",
        f"GRANT UPDATE ({PERSONA_UPDATE}) ON public.user_personas TO authenticated",
        "GRANT SELECT ON public.mentor_avatars TO authenticated",
        "GRANT SELECT ON public.daily_sessions TO authenticated",
        f"GRANT SELECT ({CONVERSATION_SELECT}) ON public.mentor_conversations TO authenticated",
        f"GRANT SELECT ({EVENT_SELECT}) ON public.tavus_callback_events TO authenticated",
        "GRANT SELECT ON public.idempotency_keys TO authenticated",
        *[
            f"GRANT SELECT ON public.{table} TO {SERVICE}"
            for table in ("profiles", *USER_WRITABLE, "user_personas", "mentor_avatars")
        ],
        # Erasing a user: the profile row; every per-user table cascades from it.
        f"GRANT DELETE ON public.profiles TO {SERVICE}",
        *[
            f"GRANT {privileges} ON public.{table} TO {SERVICE}"
            for table, privileges in SERVICE_WRITES.items()
        ],
        f"GRANT SELECT, INSERT ON public.tavus_callback_events TO {SERVICE}",
        # Retention redacts old payloads; event types and outcomes are never rewritten.
        f"GRANT UPDATE (payload) ON public.tavus_callback_events TO {SERVICE}",
        f"GRANT SELECT ON public.alembic_version TO {SERVICE}",
    ]
    return grants


def _auth_shim() -> None:
    """Supabase's `auth` schema functions, only where they are absent (plain PostgreSQL)."""
    op.execute(
        f"""
        DO $$
        BEGIN
          IF to_regnamespace('auth') IS NULL THEN
            CREATE SCHEMA auth;
            COMMENT ON SCHEMA auth IS '{SHIM_COMMENT}';
          END IF;
          IF to_regprocedure('auth.uid()') IS NULL THEN
            -- supabase/auth migrations/20220224000811_update_auth_functions.up.sql
            CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $f$
              SELECT coalesce(
                nullif(current_setting('request.jwt.claim.sub', true), ''),
                (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
              )::uuid
            $f$;
            COMMENT ON FUNCTION auth.uid() IS '{SHIM_COMMENT}';
            GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
            GRANT EXECUTE ON FUNCTION auth.uid() TO anon, authenticated, service_role;
          END IF;
          IF to_regprocedure('auth.jwt()') IS NULL THEN
            -- supabase/auth migrations/20220531120530_add_auth_jwt_function.up.sql
            CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $f$
              SELECT coalesce(
                nullif(current_setting('request.jwt.claim', true), ''),
                nullif(current_setting('request.jwt.claims', true), '')
              )::jsonb
            $f$;
            COMMENT ON FUNCTION auth.jwt() IS '{SHIM_COMMENT}';
            GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
            GRANT EXECUTE ON FUNCTION auth.jwt() TO anon, authenticated, service_role;
          END IF;
        END
        $$"""
    )


def upgrade() -> None:
    # --- roles (Supabase's where absent, and the service's own) -----------------------------
    _create_role_if_missing("anon", "NOLOGIN NOINHERIT")
    _create_role_if_missing("authenticated", "NOLOGIN NOINHERIT")
    _create_role_if_missing("service_role", "NOLOGIN NOINHERIT BYPASSRLS")
    _create_role_if_missing(SERVICE, "NOLOGIN NOINHERIT")
    op.execute(
        f"""
        DO $$
        BEGIN
          IF EXISTS (SELECT FROM pg_catalog.pg_roles
                     WHERE rolname = '{SERVICE}' AND (rolsuper OR rolbypassrls OR rolcanlogin))
          THEN
            RAISE EXCEPTION '{SERVICE} must be NOLOGIN, not a superuser, without BYPASSRLS';
          END IF;
        END
        $$"""
    )
    _auth_shim()
    # auth.uid() for the service too (diagnostics; its policies read the settings directly).
    # Supabase's `auth` schema belongs to supabase_admin: where we may not grant, skip.
    op.execute(
        f"""
        DO $$
        BEGIN
          GRANT USAGE ON SCHEMA auth TO {SERVICE};
          GRANT EXECUTE ON FUNCTION auth.uid(), auth.jwt() TO {SERVICE};
        EXCEPTION WHEN insufficient_privilege THEN
          RAISE NOTICE 'no grant on schema auth for {SERVICE}: its policies do not need it';
        END
        $$"""
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO anon, authenticated, {SERVICE}")

    # --- deny by default, then grant deliberately -------------------------------------------
    for table in TABLES:
        op.execute(f"ALTER TABLE public.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"REVOKE ALL ON public.{table} FROM PUBLIC, anon, authenticated, {SERVICE}")
    for grant in _grants():
        op.execute(grant)
    for name, table, command, role, using, check in _policies():
        sql = f"CREATE POLICY {name} ON public.{table} AS PERMISSIVE FOR {command} TO {role}"
        if using is not None:
            sql += f" USING ({using})"
        if check is not None:
            sql += f" WITH CHECK ({check})"
        op.execute(sql)


def downgrade() -> None:
    """Drop the policies and grants and disable RLS. Roles are cluster-wide (other databases,
    and Supabase, use them) and stay; anon/authenticated keep no privileges on these tables."""
    for name, table, *_ in _policies():
        op.execute(f"DROP POLICY IF EXISTS {name} ON public.{table}")
    for table in TABLES:
        op.execute(f"ALTER TABLE public.{table} DISABLE ROW LEVEL SECURITY")
        op.execute(f"REVOKE ALL ON public.{table} FROM anon, authenticated, {SERVICE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {SERVICE}")
    op.execute(
        f"""
        DO $$
        BEGIN
          REVOKE ALL ON FUNCTION auth.uid(), auth.jwt() FROM {SERVICE};
          REVOKE USAGE ON SCHEMA auth FROM {SERVICE};
        EXCEPTION WHEN insufficient_privilege OR undefined_function OR invalid_schema_name THEN
          NULL;
        END
        $$"""
    )
    op.execute(
        f"""
        DO $$
        BEGIN
          IF obj_description(to_regprocedure('auth.uid()'), 'pg_proc') = '{SHIM_COMMENT}' THEN
            DROP FUNCTION auth.uid();
          END IF;
          IF obj_description(to_regprocedure('auth.jwt()'), 'pg_proc') = '{SHIM_COMMENT}' THEN
            DROP FUNCTION auth.jwt();
          END IF;
          IF obj_description(to_regnamespace('auth'), 'pg_namespace') = '{SHIM_COMMENT}' THEN
            BEGIN
              DROP SCHEMA auth;  -- only if nothing else lives in it
            EXCEPTION WHEN dependent_objects_still_exist THEN
              NULL;
            END;
          END IF;
        END
        $$"""
    )
