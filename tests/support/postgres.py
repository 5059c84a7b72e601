"""The tests' PostgreSQL: the server on 127.0.0.1:5432 when one answers, else the project's own
embedded PostgreSQL (`facetoface.db.embedded`, the same one `make run` uses) in a temporary
directory. No system PostgreSQL, `initdb` or `pg_ctl` is needed.

Each test run (each xdist worker) gets its own freshly created database, dropped at the end.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

from facetoface.db.embedded import EmbeddedPostgres
from facetoface.db.roles import DEFAULT_APP_LOGIN_ROLE, app_login_role_sql

#: The application's login role in the tests: what production connects as (docs/security.md).
APP_ROLE = DEFAULT_APP_LOGIN_ROLE


@dataclass
class PostgresServer:
    """Where the tests' server listens, and the passwords of its logins (none: trust)."""

    host: str
    port: int
    user: str = "postgres"
    passwords: dict[str, str] = field(default_factory=dict)
    #: "local" (the machine's server on :5432) or "embedded".
    kind: str = "local"

    def url(self, database: str, user: str | None = None) -> str:
        """A `postgresql://` URL of `database` for `user` (default: the superuser)."""
        user = user or self.user
        password = self.passwords.get(user)
        credentials = f"{user}:{quote(password, safe='')}" if password else user
        return f"postgresql://{credentials}@{self.host}:{self.port}/{database}"

    def as_user(self, url: str, user: str) -> str:
        """`url` (this server's, or a proxy's in front of it) for another of its logins."""
        parts = urlsplit(url)
        password = self.passwords.get(user)
        credentials = f"{user}:{quote(password, safe='')}" if password else user
        return urlunsplit(parts._replace(netloc=f"{credentials}@{parts.hostname}:{parts.port}"))


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


@contextlib.contextmanager
def embedded_server() -> Iterator[PostgresServer]:
    """The project's embedded PostgreSQL in a temporary directory, removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="facetoface-pg-"))
    workdir.chmod(0o755)  # as root the server runs as another user, who must reach its data
    server = EmbeddedPostgres(workdir / "postgres", port=0)
    try:
        with server.running() as running:
            yield PostgresServer(
                running.host,
                running.port,
                passwords={"postgres": running.credentials.superuser, APP_ROLE: "app-test"},
                kind="embedded",
            )
    finally:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """The local server when it answers, else the embedded one."""
    if _answers("127.0.0.1", 5432):
        yield PostgresServer("127.0.0.1", 5432)
        return
    with embedded_server() as server:
        yield server


def _admin(server: PostgresServer, sql: str, database: str = "postgres") -> None:
    """Run `sql` as the superuser (blocking: fixtures run it inside or outside the loop)."""
    with psycopg.connect(server.url(database), autocommit=True) as conn:
        conn.execute(sql.encode())


@contextlib.contextmanager
def fresh_database(server: PostgresServer, label: str) -> Iterator[str]:
    """Create a uniquely named database; drop it (and its connections) afterwards."""
    name = f"facetoface_test_{label}_{uuid.uuid4().hex[:10]}"
    _admin(server, f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        for _ in range(3):
            try:
                _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                break
            except psycopg.Error:
                time.sleep(0.5)


def create_app_role(server: PostgresServer, database: str) -> str:
    """Set up the application login role for a migrated `database` (with the helper operators
    run, `facetoface.db.roles.app_login_role_sql`); returns the URL that connects as it."""
    sql = app_login_role_sql(APP_ROLE)
    password = server.passwords.get(APP_ROLE)
    if password:
        sql += f"\nALTER ROLE {APP_ROLE} PASSWORD '{password}';"
    _admin(server, sql, database)
    return server.url(database, user=APP_ROLE)
