"""Engine and the transaction boundary.

Services never commit: they run their work inside `Database.transaction()`, which commits on
success and rolls back on any error. A request that must talk to Tavus between two database
writes (start, end) uses two short transactions instead of holding one open across the call.

Every transaction takes an optional `Identity`: the verified caller. On PostgreSQL with
row-level security it is applied inside the transaction (`SET LOCAL ROLE authenticated` and
the claims via `set_config(..., true)`), so per-request identity needs no change to callers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

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
        return json.dumps(self.claims, separators=(",", ":"), default=str)


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

    @asynccontextmanager
    async def transaction(self, identity: Identity | None = None) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on error.

        Connection-level failures (server gone, connection dropped) become a 503 problem; the
        transaction is rolled back by the server, so the database stays consistent.
        """
        try:
            async with self._sessions() as session, session.begin():
                if identity is not None:
                    await self._apply_identity(session, identity)
                yield session
        except (OperationalError, InterfaceError) as exc:
            raise _unavailable(exc) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise _unavailable(exc) from exc
            raise

    async def _apply_identity(self, session: AsyncSession, identity: Identity) -> None:
        """Hook for per-request identity inside the transaction.

        The service's own queries always filter by `identity.user_id`. Running them under the
        caller's database role as well (PostgreSQL row-level security) is added here, inside
        the transaction, so no caller changes when it is switched on.
        """
        return None

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


def _unavailable(exc: Exception) -> DatabaseUnavailable:
    log.warning("db.unavailable", error_type=type(exc).__name__)
    return DatabaseUnavailable("The database is not reachable right now; try again shortly.")


def create_engine(settings: Settings) -> AsyncEngine:
    """Build the async engine for `settings` (nothing connects until first use)."""
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 15})
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
    """Counts statements sent on an engine: how tests and the benchmark count round trips."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        self.statements: list[str] = []
        self._engine = engine
        event.listen(engine.sync_engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("BEGIN"):
            return
        self.count += 1
        self.statements.append(statement)

    def reset(self) -> None:
        self.count = 0
        self.statements.clear()

    def close(self) -> None:
        event.remove(self._engine.sync_engine, "before_cursor_execute", self._on_execute)
