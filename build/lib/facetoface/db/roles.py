"""Who a transaction acts as: the verified caller (`Identity`) and one of two database roles.

With row-level security the identity is applied transaction-locally (safe behind a transaction
pooler): a user transaction runs as Supabase's `authenticated` with the caller's claims, so the
policies (`(select auth.uid()) = user_id`) confine it to the caller's rows; a service
transaction runs as `facetoface_service`, the service's own role for the writes no user may
make. The role is always one of two constants, never taken from a token.
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
#: `service` (this service's own writes, as `facetoface_service`).
Role = Literal["user", "service"]

#: The database roles behind `Role`. Constants: a token never chooses the role.
USER_DB_ROLE = "authenticated"
SERVICE_DB_ROLE = "facetoface_service"
DB_ROLES: dict[Role, str] = {"user": USER_DB_ROLE, "service": SERVICE_DB_ROLE}

#: The login role docs/security.md suggests; any lower-case identifier works.
DEFAULT_APP_LOGIN_ROLE = "facetoface_app"
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def app_login_role_sql(login_role: str = DEFAULT_APP_LOGIN_ROLE) -> str:
    """Idempotent SQL that makes `login_role` the application's login role (run it as the
    database owner, after `facetoface migrate`; docs/security.md prints the same SQL).

    It creates the role if missing (LOGIN NOINHERIT, no password — set one separately), makes
    it a member of `authenticated` and `facetoface_service` so it can `SET LOCAL ROLE` to
    either (NOINHERIT: it holds none of their privileges itself, so a transaction that names no
    role can touch no table), lets it read the schema version, and refuses a role that is a
    superuser, has BYPASSRLS or owns a table: row-level security would not apply to those.
    """
    if not _ROLE_NAME.fullmatch(login_role):
        raise ValueError(f"not a plain lower-case role name: {login_role!r}")
    # The name is checked above and only ever used quoted (%I, and as a literal).
    return f"""DO $app_role$
DECLARE
  app CONSTANT text := '{login_role}';
BEGIN
  IF to_regrole('{SERVICE_DB_ROLE}') IS NULL OR to_regrole('{USER_DB_ROLE}') IS NULL THEN
    RAISE EXCEPTION 'roles {USER_DB_ROLE}/{SERVICE_DB_ROLE} missing: run facetoface migrate first';
  END IF;
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
  IF NOT pg_has_role(app, '{USER_DB_ROLE}', 'MEMBER') THEN
    BEGIN
      EXECUTE format('GRANT {USER_DB_ROLE} TO %I', app);
    EXCEPTION WHEN unique_violation THEN
      NULL;
    END;
  END IF;
  IF NOT pg_has_role(app, '{SERVICE_DB_ROLE}', 'MEMBER') THEN
    BEGIN
      EXECUTE format('GRANT {SERVICE_DB_ROLE} TO %I', app);
    EXCEPTION WHEN unique_violation THEN
      NULL;
    END;
  END IF;
  EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', app);
  EXECUTE format('GRANT SELECT ON public.alembic_version TO %I', app);
END
$app_role$;"""  # noqa: S608
