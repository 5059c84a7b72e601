"""`facetoface_delegate`: the service acting for one user, under policies the planner can use.

`facetoface_service` does two kinds of work: for a user (start, end, the reads, data rights:
the transaction carries the caller's claims) and for nobody (callbacks, the reconciler, the
outbox's delivery: no claims). Its policies serve both with one predicate,
`(caller IS NULL OR user_id = caller)`, and that OR hides the user's id from the planner: it
cannot estimate how many rows a user has, so a read of a user's few recent sessions could
read their whole history (bench/README.md, growth).

- `facetoface_delegate` (NOLOGIN NOINHERIT, no BYPASSRLS; created only where absent, like
  0005's roles): the service acting for a user. The release with this migration picks it
  for every service transaction that carries a caller (`facetoface.db.roles.db_role`).
- Its privileges are `facetoface_service`'s, granted explicitly, one GRANT per privilege
  the service holds on a table, column, function or schema of `public`/`facetoface` (read
  from the catalog here, so none is missed or added). It is deliberately NOT a member of
  `facetoface_service`: the service's policies would then apply to it too, and a row visible
  under any permissive policy is visible, so the OR would come back.
- Its policies are the service's with the caller known: `user_id = caller` where the service
  has `caller IS NULL OR user_id = caller` (`daily_sessions`, `mentor_conversations`,
  `idempotency_keys`, `webhook_events`), the same `… = caller` where the service's already
  is, `user_id = caller` on the erasure marks (a start checks its own user's; `purge-user`
  marks and clears its own), the same unconditional ones (the mentor catalogue, the
  installation, the schema markers, the deleted-conversation ids its deletions leave), and
  none where the service acts for nobody only (the callback inbox's writes, the reconciler's
  runs, the outbox's delivery updates).
- Every role that is a member of `facetoface_service` (the application's login role, made
  by `app_login_role_sql`, which now grants both) becomes a member of the new role, so a
  deployment needs no step of its own.
- `facetoface.remember_deleted_conversation` is reinstalled with its comment naming the
  new role (its body is unchanged).
- `facetoface.start_session` (same signature, same results): "since last time" looks each
  session's daily row up by its key. As a join, the daily rows' new policy
  (`user_id = caller`) made the planner expect the join to yield almost nothing, so the
  cursor hashed all of the user's daily sessions (tests/test_query_plans.py).

`facetoface_service`'s own policies are unchanged in this release: the previous release
still runs every service transaction as it. A later release can narrow them to work for
nobody (`caller IS NULL`).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 21:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

from facetoface.migrations.functions import frozen

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Expand only: a new role with its own grants and policies; facetoface_service's privileges
#: and policies, which the previous release runs under, are untouched; two functions
#: reinstalled with their signatures and results unchanged.
backward_compatible = True

SERVICE = "facetoface_service"
DELEGATE = "facetoface_delegate"
#: The caller's id, as 0005's CLAIM_SUB: an initPlan (`(select …)`, evaluated once per
#: statement), so `user_id = CLAIM_SUB` is an index condition.
CLAIM_SUB = (
    "(select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),"
    " (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid)"
)
FOR_USER = f"user_id = {CLAIM_SUB}"
#: Schemas whose objects the service holds privileges on (0005's `auth` grants, which
#: Supabase may refuse, are copied apart below).
SCHEMAS = ("public", "facetoface")
IN_SCHEMAS = ", ".join(f"'{schema}'" for schema in SCHEMAS)

#: (name, schema.table, command, USING, WITH CHECK) of every policy of the delegate.
POLICIES: tuple[tuple[str, str, str, str | None, str | None], ...] = (
    # A start's context, a session's detail, an erasure (0005, 0009, 0013: the service's
    # `… = caller` policies as they are).
    ("profiles_delegate_select", "public.profiles", "SELECT", f"id = {CLAIM_SUB}", None),
    ("profiles_delegate_delete", "public.profiles", "DELETE", f"id = {CLAIM_SUB}", None),
    *(
        (f"{table}_delegate_select", f"public.{table}", "SELECT", FOR_USER, None)
        for table in (
            "onboarding_profiles",
            "ritual_preferences",
            "user_emotional_categories",
            "user_goals",
            "user_personas",
            "user_preferences",
            "mentor_tool_calls",
            "goal_changes",
            "session_reports",
        )
    ),
    ("mentor_avatars_delegate_select", "public.mentor_avatars", "SELECT", "is_active", None),
    # Session state and keys: the service's `caller IS NULL OR user_id = caller`, caller known.
    # (FOR ALL: the delegate holds exactly the service's privileges on them.)
    ("daily_sessions_delegate_all", "public.daily_sessions", "ALL", FOR_USER, FOR_USER),
    (
        "mentor_conversations_delegate_all",
        "public.mentor_conversations",
        "ALL",
        FOR_USER,
        FOR_USER,
    ),
    ("idempotency_keys_delegate_all", "public.idempotency_keys", "ALL", FOR_USER, FOR_USER),
    # The timeline of the caller's own sessions (0009's policy as it is); the inbox's writes
    # act for nobody.
    (
        "tavus_callback_events_delegate_select",
        "public.tavus_callback_events",
        "SELECT",
        "mentor_conversation_id IN (SELECT mc.id FROM public.mentor_conversations mc"  # noqa: S608
        f" WHERE mc.user_id = {CLAIM_SUB})",
        None,
    ),
    # The caller's events (the session trigger, `enqueue` for a user); delivery acts for
    # nobody.
    ("webhook_events_delegate_select", "public.webhook_events", "SELECT", FOR_USER, None),
    ("webhook_events_delegate_insert", "public.webhook_events", "INSERT", None, FOR_USER),
    (
        "facetoface_installation_delegate_select",
        "public.facetoface_installation",
        "SELECT",
        "true",
        None,
    ),
    ("schema_revisions_delegate_select", "public.schema_revisions", "SELECT", "true", None),
    ("erasures_delegate_all", "facetoface.erasures", "ALL", FOR_USER, FOR_USER),
    # Written by the deletion trigger (`INSERT … ON CONFLICT`, which needs the new row
    # visible too); ids only, no user column: 0011's policy as it is.
    (
        "deleted_conversations_delegate_all",
        "facetoface.deleted_conversations",
        "ALL",
        "true",
        None,
    ),
)

#: One GRANT to the delegate for each privilege the service holds, straight from the ACLs.
COPY_PRIVILEGES = f"""
DO $copy$
DECLARE
  g record;
BEGIN
  FOR g IN
    SELECT format('GRANT %s ON %s %s TO {DELEGATE}', a.privilege_type,
                  CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                  c.oid::regclass) AS sql
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     CROSS JOIN LATERAL aclexplode(c.relacl) a
     WHERE n.nspname IN ({IN_SCHEMAS})
       AND a.grantee = '{SERVICE}'::regrole
    UNION ALL
    SELECT format('GRANT %s (%I) ON TABLE %s TO {DELEGATE}', a.privilege_type, t.attname,
                  c.oid::regclass)
      FROM pg_catalog.pg_attribute t
      JOIN pg_catalog.pg_class c ON c.oid = t.attrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     CROSS JOIN LATERAL aclexplode(t.attacl) a
     WHERE n.nspname IN ({IN_SCHEMAS})
       AND NOT t.attisdropped AND a.grantee = '{SERVICE}'::regrole
    UNION ALL
    SELECT format('GRANT %s ON FUNCTION %s TO {DELEGATE}', a.privilege_type,
                  p.oid::regprocedure)
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     CROSS JOIN LATERAL aclexplode(p.proacl) a
     WHERE n.nspname IN ({IN_SCHEMAS})
       AND a.grantee = '{SERVICE}'::regrole
    UNION ALL
    SELECT format('GRANT %s ON SCHEMA %I TO {DELEGATE}', a.privilege_type, n.nspname)
      FROM pg_catalog.pg_namespace n
     CROSS JOIN LATERAL aclexplode(n.nspacl) a
     WHERE n.nspname IN ({IN_SCHEMAS})
       AND a.grantee = '{SERVICE}'::regrole
  LOOP
    EXECUTE g.sql;
  END LOOP;
END
$copy$"""  # noqa: S608 (constants only)

#: Whoever may become the service (the login role) may become the delegate: the new code
#: switches to it, and a deployment ran `app_login_role_sql` once, before this role existed.
GRANT_TO_MEMBERS = f"""
DO $members$
DECLARE
  m record;
BEGIN
  FOR m IN
    SELECT r.rolname
      FROM pg_catalog.pg_auth_members am
      JOIN pg_catalog.pg_roles r ON r.oid = am.member
     WHERE am.roleid = '{SERVICE}'::regrole
       AND NOT pg_has_role(r.oid, '{DELEGATE}'::regrole, 'MEMBER')
  LOOP
    EXECUTE format('GRANT {DELEGATE} TO %I', m.rolname);
  END LOOP;
END
$members$"""  # noqa: S608 (constants only)


def _create_delegate() -> None:
    # Roles are cluster-wide: another database's migration may be creating it right now, and
    # a cluster that ran this migration in another database already has it.
    op.execute(
        f"""
        DO $$
        BEGIN
          IF to_regrole('{DELEGATE}') IS NULL THEN
            BEGIN
              CREATE ROLE {DELEGATE} NOLOGIN NOINHERIT;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
              NULL;
            END;
          END IF;
          IF EXISTS (SELECT FROM pg_catalog.pg_roles
                     WHERE rolname = '{DELEGATE}' AND (rolsuper OR rolbypassrls OR rolcanlogin))
          THEN
            RAISE EXCEPTION '{DELEGATE} must be NOLOGIN, not a superuser, without BYPASSRLS';
          END IF;
          IF pg_has_role('{DELEGATE}', '{SERVICE}', 'MEMBER') THEN
            RAISE EXCEPTION '{DELEGATE} must not be a member of {SERVICE}: its policies would '
              'apply to {DELEGATE} too';
          END IF;
        END
        $$"""
    )


def upgrade() -> None:
    _create_delegate()
    op.execute(COPY_PRIVILEGES)
    # auth.uid() as 0005 gives it the service (diagnostics; the policies read the settings).
    # Supabase's `auth` schema belongs to supabase_admin: where we may not grant, skip.
    op.execute(
        f"""
        DO $$
        BEGIN
          GRANT USAGE ON SCHEMA auth TO {DELEGATE};
          GRANT EXECUTE ON FUNCTION auth.uid(), auth.jwt() TO {DELEGATE};
        EXCEPTION WHEN insufficient_privilege THEN
          RAISE NOTICE 'no grant on schema auth for {DELEGATE}: its policies do not need it';
        END
        $$"""
    )
    for name, table, command, using, check in POLICIES:
        sql = f"CREATE POLICY {name} ON {table} AS PERMISSIVE FOR {command} TO {DELEGATE}"
        if using is not None:
            sql += f" USING ({using})"
        if check is not None:
            sql += f" WITH CHECK ({check})"
        op.execute(sql)
    op.execute(GRANT_TO_MEMBERS)
    op.execute(frozen("0016", "remember_deleted_conversation"))
    op.execute(frozen("0016", "start_session"))


def downgrade() -> None:
    """Drop the delegate's policies and privileges. The role and its memberships are
    cluster-wide (other databases may use them) and stay, holding nothing here."""
    op.execute(frozen("0015", "start_session"))
    op.execute(frozen("0011", "remember_deleted_conversation"))
    for name, table, *_ in reversed(POLICIES):
        op.execute(f"DROP POLICY {name} ON {table}")
    for schema in SCHEMAS:
        op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {DELEGATE}")
        op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {DELEGATE}")
        op.execute(f"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {schema} FROM {DELEGATE}")
        op.execute(f"REVOKE ALL ON SCHEMA {schema} FROM {DELEGATE}")
    op.execute(
        f"""
        DO $$
        BEGIN
          REVOKE ALL ON FUNCTION auth.uid(), auth.jwt() FROM {DELEGATE};
          REVOKE USAGE ON SCHEMA auth FROM {DELEGATE};
        EXCEPTION WHEN insufficient_privilege OR undefined_function OR invalid_schema_name THEN
          NULL;
        END
        $$"""
    )
