#!/usr/bin/env python
"""facetoface-db-init: prepare a PostgreSQL database for `facetoface serve`, as its owner.

Installed in the image as `facetoface-db-init`; the one-shot migration step of the compose
stack and the Kubernetes Job run it before any replica starts. It does, idempotently, what
docs/security.md asks of the operator:

1. `facetoface migrate` (to head), connected as the tables' owner (`DATABASE_URL`);
2. the application login role: `facetoface.db.app_login_role_sql()` (creates `APP_DB_USER`,
   default `facetoface_app`: LOGIN NOINHERIT, neither superuser nor BYPASSRLS, owning nothing,
   a member of `authenticated` and `facetoface_service`);
3. that role's password, from `APP_DB_PASSWORD`.

Environment: `DATABASE_URL` (the owner's), `APP_DB_PASSWORD`, optionally `APP_DB_USER`. The
replicas then connect as `APP_DB_USER`: they never hold the owner's password.
"""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

# Only the package's public helper: this script lives outside the package and must keep
# working as its insides move.
from facetoface.db import app_login_role_sql

#: The role docs/security.md and the deploy kits name.
DEFAULT_ROLE = "facetoface_app"


def _libpq_url(database_url: str) -> str:
    """The owner's URL as libpq takes it, read as the service reads `DATABASE_URL`: Supabase's
    `postgres://`, a `+driver` suffix, asyncpg's `ssl=` for libpq's `sslmode=`."""
    parts = urlsplit(database_url)
    if parts.scheme.split("+")[0] not in {"postgres", "postgresql"}:
        raise SystemExit("facetoface-db-init: DATABASE_URL must name a PostgreSQL database")
    query = parse_qsl(parts.query)
    names = {name for name, _ in query}
    if "ssl" in names and "sslmode" not in names:
        query = [("sslmode" if name == "ssl" else name, value) for name, value in query]
    query = [(name, value) for name, value in query if name != "ssl"]
    return urlunsplit(parts._replace(scheme="postgresql", query=urlencode(query)))


def _say(message: str, *, error: bool = False) -> None:
    """One line of the command's output (on stderr when it is an error)."""
    (sys.stderr if error else sys.stdout).write(f"facetoface-db-init: {message}\n")


def main() -> int:
    """Migrate, then create (or bring up to date) the login role and set its password."""
    database_url = os.environ.get("DATABASE_URL", "")
    password = os.environ.get("APP_DB_PASSWORD", "")
    role = os.environ.get("APP_DB_USER", DEFAULT_ROLE)
    if not database_url or not password:
        _say("set DATABASE_URL (the owner's) and APP_DB_PASSWORD", error=True)
        return 2
    if len(password) < 16:
        _say("APP_DB_PASSWORD is shorter than 16 characters", error=True)
        return 2
    role_sql = app_login_role_sql(role)  # refuses a name that is not a plain role name

    # The CLI, as an operator would run it: the same output, the same exit status.
    migrated = subprocess.run(["facetoface", "migrate"], check=False)  # noqa: S607
    if migrated.returncode != 0:
        return migrated.returncode

    with psycopg.connect(_libpq_url(database_url), autocommit=True) as conn:
        conn.execute(role_sql)
        # Hashed here by libpq (SCRAM, or whatever the server's password_encryption says), so
        # the clear password never reaches the server, its logs or pg_stat_statements.
        verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), None)
        conn.execute(
            sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(verifier.decode())
            )
        )
    _say(f"login role {role}: ready (not superuser, no BYPASSRLS, owns nothing), password set")
    return 0


if __name__ == "__main__":
    sys.exit(main())
