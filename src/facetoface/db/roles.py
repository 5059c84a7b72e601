"""Who a transaction acts as: the verified caller (`Identity`) and one of three database roles.

With row-level security the identity is applied transaction-locally (safe behind a transaction
pooler): a user transaction runs as Supabase's `authenticated` with the caller's claims, so the
policies (`(select auth.uid()) = user_id`) confine it to the caller's rows. The service's own
work — the writes no user may make — runs as one of two roles with the same privileges:
`facetoface_delegate` when it acts for a user (start, end, reads, data rights; its policies
are plain `user_id = caller`, so the planner sees the user's id and reads that user's rows
only), `facetoface_service` when it acts for nobody (callbacks, the reconciler, the outbox's
delivery). The role is always one of these constants, chosen by `db_role`, never taken from a
token.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class Identity:
    """The verified caller a transaction acts for (from the access token, never the body)."""

    user_id: uuid.UUID
    claims: dict[str, Any] = field(default_factory=dict)

    def claims_json(self) -> str:
        """The claims as PostgREST puts them in `request.jwt.claims` (`sub` is always ours)."""
        claims = {**self.claims, "sub": str(self.user_id)}
        return json.dumps(claims, separators=(",", ":"), default=str)


#: Who a transaction acts as: `user` (the caller, as Supabase's `authenticated` role) or
#: `service` (this service's own work: `db_role` picks the database role).
Role = Literal["user", "service"]

#: The database roles behind `Role`. Constants: a token never chooses the role.
USER_DB_ROLE = "authenticated"
#: The service acting for nobody (no claims): its policies let it reach any user's rows.
SERVICE_DB_ROLE = "facetoface_service"
#: The service acting for one user (the caller's claims): its policies are `user_id = caller`
#: (migration 0016). Not a member of `facetoface_service`, or that role's policies — whose
#: `caller IS NULL OR user_id = caller` hides the user's id from the planner — would apply
#: to it too.
DELEGATE_DB_ROLE = "facetoface_delegate"
#: Every role the login role switches to per transaction (it must be a member of each).
SWITCHED_DB_ROLES = (USER_DB_ROLE, DELEGATE_DB_ROLE, SERVICE_DB_ROLE)


def db_role(role: Role, *, for_user: bool) -> str:
    """The database role a transaction of `role` runs as — the one place the choice is made.

    `for_user`: the transaction carries a caller's claims. The service acting for a user runs
    as `facetoface_delegate`, acting for nobody as `facetoface_service`; a user transaction
    always has a caller.
    """
    if role == "user":
        return USER_DB_ROLE
    return DELEGATE_DB_ROLE if for_user else SERVICE_DB_ROLE


#: The login role docs/security.md suggests; any lower-case identifier works.
DEFAULT_APP_LOGIN_ROLE = "facetoface_app"
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def app_login_role_sql(login_role: str = DEFAULT_APP_LOGIN_ROLE) -> str:
    """Idempotent SQL that makes `login_role` the application's login role (run it as the
    database owner, after `facetoface migrate`; docs/security.md prints the same SQL).

    It creates the role if missing (LOGIN NOINHERIT, no password — set one separately), makes
    it a member of `authenticated`, `facetoface_delegate` and `facetoface_service` so it can
    `SET LOCAL ROLE` to each (NOINHERIT: it holds none of their privileges itself, so a
    transaction that names no role can touch no table), lets it read the schema version, and
    refuses a role that is a superuser, has BYPASSRLS or owns a table: row-level security
    would not apply to those.
    """
    if not _ROLE_NAME.fullmatch(login_role):
        raise ValueError(f"not a plain lower-case role name: {login_role!r}")
    switched = ", ".join(f"'{name}'" for name in SWITCHED_DB_ROLES)
    # The name is checked above and only ever used quoted (%I, and as a literal).
    return f"""DO $app_role$
DECLARE
  app CONSTANT text := '{login_role}';
  switched CONSTANT text[] := ARRAY[{switched}];
  target text;
BEGIN
  FOREACH target IN ARRAY switched LOOP
    IF to_regrole(target) IS NULL THEN
      RAISE EXCEPTION 'role % missing: run facetoface migrate first', target;
    END IF;
  END LOOP;
  IF to_regrole(app) IS NULL THEN
    BEGIN
      EXECUTE format('CREATE ROLE %I LOGIN NOINHERIT', app);
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;  -- created concurrently
    END;
  END IF;
  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = app AND (rolsuper OR rolbypassrls))
  THEN
    RAISE EXCEPTION 'role % is a superuser or has BYPASSRLS: RLS would not apply to it', app;
  END IF;
  IF EXISTS (SELECT FROM pg_catalog.pg_tables WHERE schemaname = 'public' AND tableowner = app)
  THEN
    RAISE EXCEPTION 'role % owns tables in public: RLS would not apply to it', app;
  END IF;
  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = app AND rolinherit) THEN
    EXECUTE format('ALTER ROLE %I NOINHERIT', app);
  END IF;
  FOREACH target IN ARRAY switched LOOP
    IF NOT pg_has_role(app, target, 'MEMBER') THEN
      BEGIN
        EXECUTE format('GRANT %I TO %I', target, app);
      EXCEPTION WHEN unique_violation THEN
        NULL;
      END;
    END IF;
  END LOOP;
  EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', app);
  EXECUTE format('GRANT SELECT ON public.alembic_version TO %I', app);
END
$app_role$;"""  # noqa: S608
