"""Engine and the transaction boundary.

Services never commit: they run their work inside `Database.transaction()`, which commits on
success and rolls back on any error. A request that must talk to Tavus between two database
writes (start, end) uses two short transactions instead of holding one open across the call.

Every transaction takes an optional `Identity` (the verified caller) and an optional `role`.
On PostgreSQL with row-level security (`DB_ROW_LEVEL_SECURITY`, docs/security.md) they are
applied as the transaction's first statement, transaction-local (safe behind a transaction
pooler): a user transaction runs as `authenticated` with the caller's claims, so Supabase's
policies (`(select auth.uid()) = user_id`) confine it to the caller's rows; a `role="service"`
transaction runs as `facetoface_service`, the service's own role for the writes no user may
make (session state, callbacks, the reconciler) — confined to the caller's rows too when an
identity is given. The role is always one of two constants, never taken from the token.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any, Literal

import structlog
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from facetoface.config import Settings
from facetoface.errors import ServiceUnavailable

log = structlog.get_logger(__name__)

MIGRATIONS_PATH = str(files("facetoface") / "migrations")


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
_DB_ROLES: dict[Role, str] = {"user": USER_DB_ROLE, "service": SERVICE_DB_ROLE}

#: Role and claims in one statement (one round trip), all transaction-local. `set_config('role',
#: …, true)` is `SET LOCAL ROLE`; the claims are bound parameters, never interpolated. Both claim
#: settings are always written, so a service transaction never sees a stale caller.
IDENTITY_SQL = (
    "SELECT set_config('role', :role, true), "
    "set_config('request.jwt.claims', :claims, true), "
    "set_config('request.jwt.claim.sub', :sub, true)"
)
_IDENTITY_STATEMENT = text(IDENTITY_SQL)
#: How `StatementCounter` recognises the identity statement (as the driver receives it).
_IDENTITY_PREFIX = "SELECT set_config('role', "


#: deadlock_detected, serialization_failure
_RETRYABLE_SQLSTATES = {"40P01", "40001"}


class DatabaseConflict(ServiceUnavailable):
    code = "database_conflict"
    title = "Concurrent change; retry"


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"
    title = "Database unavailable"


class Database:
    """Owns the engine and hands out transactions; created in the app lifespan."""

    def __init__(self, settings: Settings, *, engine: AsyncEngine | None = None) -> None:
        self.settings = settings
        self.engine = engine or create_engine(settings)
        self.dialect = self.engine.dialect.name
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @property
    def row_level_security(self) -> bool:
        """True when transactions switch database role (PostgreSQL and the setting on)."""
        return self.is_postgres and self.settings.db_row_level_security

    @asynccontextmanager
    async def transaction(
        self, identity: Identity | None = None, *, role: Role | None = None
    ) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on error.

        - `transaction(identity)`: the caller's own work, as the caller (`authenticated`).
        - `transaction(identity, role="service")`: the service's writes for the caller (session
          rows and state); `facetoface_service`, confined by its policies to the caller's rows.
        - `transaction(role="service")`: the service's own work for no user (callbacks, the
          reconciler, metrics); `facetoface_service` with no claims.
        - `transaction()`: the login role itself, which in production has no table privileges
          (fail closed); administrative connections (migrations, tests) use it as the owner.

        Connection-level failures (server gone, connection dropped) become a 503 problem; the
        transaction is rolled back by the server, so the database stays consistent.
        """
        if role == "user" and identity is None:
            raise ValueError("a user transaction needs the caller's identity")
        try:
            async with self._sessions() as session, session.begin():
                if identity is not None or role is not None:
                    await self._apply_identity(session, identity, role or "user")
                yield session
        except (OperationalError, InterfaceError) as exc:
            raise _unavailable(exc) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise _unavailable(exc) from exc
            if getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES:
                # Deadlock or serialization failure: PostgreSQL rolled back; a retry works.
                log.warning("db.conflict", sqlstate=getattr(exc.orig, "sqlstate", None))
                raise DatabaseConflict(
                    "A concurrent change collided with this request; retry it.",
                    retry_after_seconds=1,
                ) from exc
            raise

    async def _apply_identity(
        self, session: AsyncSession, identity: Identity | None, role: Role
    ) -> None:
        """Switch the transaction to `role`'s database role, with the caller's claims.

        One statement, transaction-local (`set_config(..., true)`): it ends with the transaction,
        so nothing leaks to the next user of the pooled connection, and it is safe behind a
        transaction pooler. A no-op on SQLite and with `DB_ROW_LEVEL_SECURITY=false`; the
        service's queries still filter by `identity.user_id` themselves — this is the second
        wall, enforced by PostgreSQL.
        """
        if not self.row_level_security:
            return
        params = {
            "role": _DB_ROLES[role],
            "claims": identity.claims_json() if identity is not None else "",
            "sub": str(identity.user_id) if identity is not None else "",
        }
        await session.execute(_IDENTITY_STATEMENT, params)

    async def dispose(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        """One trivial round trip; raises DatabaseUnavailable when the server is unreachable."""
        async with self.transaction() as session:
            await session.execute(text("SELECT 1"))

    async def migration_state(self) -> tuple[str | None, str | None]:
        """(current revision of the database, head revision of the code)."""
        head = ScriptDirectory.from_config(alembic_config(self.settings)).get_current_head()
        async with self.engine.connect() as conn:
            current = await conn.run_sync(
                lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
            )
        return current, head


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


def _unavailable(exc: Exception) -> DatabaseUnavailable:
    log.warning("db.unavailable", error_type=type(exc).__name__)
    return DatabaseUnavailable("The database is not reachable right now; try again shortly.")


def create_engine(settings: Settings) -> AsyncEngine:
    """Build the async engine for `settings` (nothing connects until first use)."""
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 15}, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {
        "timeout": settings.db_connect_timeout_seconds,
        "command_timeout": settings.db_statement_timeout_ms / 1000 or None,
        "server_settings": {"application_name": f"facetoface.{settings.deployment_name}"},
    }
    if settings.db_pooler_mode == "transaction":
        # A transaction pooler hands each transaction to another server connection: named
        # prepared statements and session settings would leak or vanish between them.
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_name_func"] = _unnamed_statement
        connect_args.pop("server_settings")
    elif settings.db_statement_timeout_ms:
        connect_args["server_settings"]["statement_timeout"] = str(settings.db_statement_timeout_ms)
    return create_async_engine(
        url,
        # Errors quote the statement, never its values (transcripts, names) into the logs.
        hide_parameters=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args=connect_args,
    )


def _unnamed_statement() -> str:
    return ""


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        # Let us issue BEGIN ourselves (below) instead of the driver's deferred BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front: two writers queue on busy_timeout instead
        # of deadlocking on a read→write lock upgrade (SQLITE_BUSY without waiting).
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(settings: Settings) -> AlembicConfig:
    """Alembic configuration pointing at the packaged migrations and `settings`' database."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", MIGRATIONS_PATH)
    cfg.set_main_option("sqlalchemy.url", settings.sqlalchemy_url.replace("%", "%%"))
    return cfg


def run_migrations(settings: Settings, revision: str = "head") -> None:
    """Apply migrations up to `revision` (blocking; call from the CLI or a thread)."""
    from alembic import command

    if settings.sqlalchemy_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings), revision)


class StatementCounter:
    """Counts statements sent on an engine: how tests and the benchmark count round trips.

    `count` is the transactions' own work. The one identity statement each PostgreSQL
    transaction with an identity or role starts with (role + claims, `Database._apply_identity`)
    is counted apart, in `identity_count`; `total` is both — every statement sent.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        self.identity_count = 0
        self.statements: list[str] = []
        self._engine = engine
        event.listen(engine.sync_engine, "before_cursor_execute", self._on_execute)

    @property
    def total(self) -> int:
        return self.count + self.identity_count

    def _on_execute(self, conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("BEGIN"):
            return
        if statement.startswith(_IDENTITY_PREFIX):
            self.identity_count += 1
            return
        self.count += 1
        self.statements.append(statement)

    def reset(self) -> None:
        self.count = 0
        self.identity_count = 0
        self.statements.clear()

    def close(self) -> None:
        event.remove(self._engine.sync_engine, "before_cursor_execute", self._on_execute)
