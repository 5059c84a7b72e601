"""`Database`: the transaction boundary, on PostgreSQL.

Services never commit: they run their work inside the boundary, which commits on success and
rolls back on any error. There are two ways in, both with the same identity rules
(`facetoface.db.roles`), admission control (`admission`) and failure classification
(`failures`):

- `Database.transaction(identity, role=...)` yields an `AsyncSession` for work of several
  statements (the reconciler, data rights, tests). It opens with one round trip (`BEGIN`
  plus the identity) and ends with `COMMIT`; no pre-ping, no reset trip.
- `Database.run(sql, params, identity, role=...)` — the hot paths — sends the identity and
  one statement as a single simple-protocol message: one round trip, one implicit
  transaction (PostgreSQL runs a multi-statement message atomically), parameters bound
  client-side. It works through a transaction pooler as it is.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from alembic.runtime.migration import MigrationContext
from psycopg import AsyncClientCursor
from psycopg.adapt import Transformer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from facetoface.config import Settings
from facetoface.db.admission import Admission
from facetoface.db.compatibility import (
    MARKERS_EXIST_SQL,
    MARKERS_SQL,
    Marker,
    SchemaVerdict,
    judge,
)
from facetoface.db.connections import Watchdog, create_engine, discard_if_broken
from facetoface.db.failures import DeadlineExceeded, classified
from facetoface.db.migrations import head_revision, known_revisions
from facetoface.db.roles import Identity, Role, db_role
from facetoface.db.statements import IDENTITY_SQL, TIMEOUT_SQL, Rows, Statement
from facetoface.observability import metrics, timing

_PING = Statement("SELECT 1")
_TUPLES_OK = psycopg.pq.ExecStatus.TUPLES_OK

#: Who wants to see the statements an engine's `run`/`transaction` send themselves
#: (SQLAlchemy's own events see the rest): see `listen_statements`.
_LISTENERS: weakref.WeakKeyDictionary[Any, list[Callable[[str], None]]] = (
    weakref.WeakKeyDictionary()
)


def listen_statements(engine: AsyncEngine, listener: Callable[[str], None]) -> None:
    """Call `listener` with the text of each statement `Database` sends on `engine` itself
    (the identity prefix included); remove it with `unlisten_statements`."""
    _LISTENERS.setdefault(engine.sync_engine, []).append(listener)


def unlisten_statements(engine: AsyncEngine, listener: Callable[[str], None]) -> None:
    """Stop calling `listener` (see `listen_statements`)."""
    _LISTENERS.get(engine.sync_engine, []).remove(listener)


def _notify(engine: AsyncEngine, *statements: str) -> None:
    listeners = _LISTENERS.get(engine.sync_engine)
    if listeners:
        for statement in statements:
            for listener in listeners:
                listener(statement)


async def _rows(cursor: AsyncClientCursor[Any]) -> Rows:
    """The current result's rows as dicts (none for a statement that returns no rows)."""
    result = cursor.pgresult
    if result is None or result.status != _TUPLES_OK:
        return []
    # Names straight from the result: psycopg's `description` (what `dict_row` reads)
    # builds a typed column object per field, per call.
    names = [result.fname(i).decode() for i in range(result.nfields)]  # type: ignore[union-attr]
    return [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]


class Database:
    """Owns the engine and hands out transactions; created in the app lifespan."""

    def __init__(self, settings: Settings, *, engine: AsyncEngine | None = None) -> None:
        self.settings = settings
        self.engine = engine or create_engine(settings)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._timeout = str(settings.db_statement_timeout_ms)
        self._rendered_prefixes: dict[Role | None, bytes] = {}
        #: A call's deadline: the statement timeout plus a margin for the network (none when
        #: the statement timeout is off, 0).
        timeout_s = settings.db_statement_timeout_ms / 1000
        self._deadline_s: float | None = timeout_s + 2.0 if timeout_s > 0 else None
        self.admission = Admission(
            settings.db_pool_size + settings.db_max_overflow,
            settings.db_admission_wait_seconds,
            recording_wait_seconds=self._deadline_s,
        )

    @property
    def row_level_security(self) -> bool:
        """True when transactions switch database role (`DB_ROW_LEVEL_SECURITY`)."""
        return self.settings.db_row_level_security

    # --- the general path ----------------------------------------------------------------
    @asynccontextmanager
    async def transaction(
        self,
        identity: Identity | None = None,
        *,
        role: Role | None = None,
        deadline: bool = True,
    ) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on error.

        - `transaction(identity)`: the caller's own work, as the caller (`authenticated`).
        - `transaction(identity, role="service")`: the service's writes for the caller;
          `facetoface_delegate`, confined by its policies to the caller's rows.
        - `transaction(role="service")`: the service's own work for no user (callbacks, the
          reconciler); `facetoface_service` with no claims.
        - `transaction()`: the login role itself, which in production has no table privileges
          (fail closed); administrative connections (migrations, tests) use it as the owner.

        The whole transaction is bounded by the call deadline (a hung network cannot hold it);
        `deadline=False` lifts that for long administrative work (adopting a database), which
        bounds itself with the server's `statement_timeout`/`lock_timeout`.
        """
        if role == "user" and identity is None:
            raise ValueError("a user transaction needs the caller's identity")
        with classified():
            async with self.admission.slot(), self._sessions() as session, session.begin():
                connection = await session.connection()
                driver = (await connection.get_raw_connection()).driver_connection
                assert driver is not None, "a checked-out connection has its driver's"
                watchdog = Watchdog(driver, self._deadline_s if deadline else None)
                try:
                    prefix, params = self._prefix(identity, role)
                    _notify(self.engine, "BEGIN", prefix.text)
                    adapt = Transformer(driver)
                    await AsyncClientCursor(driver).execute(
                        b"BEGIN; " + prefix.render(params, adapt)
                    )
                    yield session
                finally:
                    watchdog.cancel()

    # --- the hot path ----------------------------------------------------------------------
    async def run(
        self,
        statement: Statement,
        params: Mapping[str, Any],
        identity: Identity | None = None,
        *,
        role: Role | None = None,
        then: Sequence[Statement] = (),
        operation: str | None = None,
    ) -> Rows:
        """Run `statement` (and `then`, with the same parameters) as one transaction in one
        round trip; the rows of `statement`.

        The identity and statement timeout go in the same message (PostgreSQL runs a
        multi-statement message as one implicit transaction, so they end with it); `then`
        runs after `statement` and sees its changes. `operation` labels the round trip in the
        metrics (default: `<verb>:<main table>` of `statement`).
        """
        if role == "user" and identity is None:
            raise ValueError("a user transaction needs the caller's identity")
        statements = [(statement, params), *((later, params) for later in then)]
        (rows,) = await self._round_trip(
            statements, identity, role, operation or metrics.sql_operation(statement.text), 1
        )
        return rows

    async def run_each(
        self,
        statements: Sequence[tuple[Statement, Mapping[str, Any]]],
        *,
        role: Role | None = None,
        operation: str,
    ) -> list[Rows]:
        """Run each statement with its own parameters, in order, as one transaction in one
        round trip (one commit for all: `db.group_commit`); the rows of each. An error in
        any rolls all of them back. Work for no user only: one prefix serves them all."""
        if role == "user":
            raise ValueError("a user transaction needs the caller's identity")
        return await self._round_trip(statements, None, role, operation, len(statements))

    async def _round_trip(
        self,
        statements: Sequence[tuple[Statement, Mapping[str, Any]]],
        identity: Identity | None,
        role: Role | None,
        operation: str,
        results: int,
    ) -> list[Rows]:
        """The prefix and `statements` in one message; the rows of the first `results`."""
        prefix, prefix_params = self._prefix(identity, role)
        _notify(self.engine, prefix.text, *(statement.text for statement, _ in statements))
        started = time.perf_counter()
        with classified():
            async with self.admission.slot():
                admitted = time.perf_counter()
                fairy = await self._checkout()
                try:
                    driver = fairy.driver_connection
                    assert driver is not None, "a checked-out connection has its driver's"
                    adapt = Transformer(driver)
                    # Without a caller the prefix never changes: rendered once per role.
                    rendered = self._rendered_prefixes.get(role) if identity is None else None
                    if rendered is None:
                        rendered = prefix.render(prefix_params, adapt)
                        if identity is None:
                            self._rendered_prefixes[role] = rendered
                    message = b"; ".join(
                        (rendered, *(s.render(params, adapt) for s, params in statements))
                    )
                    rows = await self._fetch(driver, message, results)
                    # The request's `db` span: checkout and round trip, not the slot's wait.
                    timing.add("db", time.perf_counter() - admitted)
                except BaseException:
                    await discard_if_broken(fairy)
                    raise
                finally:
                    await greenlet_spawn(fairy.close)
        metrics.record_db_round_trip(operation, time.perf_counter() - started)
        return rows

    async def _checkout(self) -> PoolProxiedConnection:
        return await greenlet_spawn(self.engine.sync_engine.pool.connect)

    async def _fetch(self, driver: Any, message: bytes, results: int) -> list[Rows]:
        """Send `message` (the prefix, then the statements); the rows of the first `results`
        statements. psycopg raises for an error in any of them."""
        watchdog = Watchdog(driver, self._deadline_s)
        try:
            cursor = AsyncClientCursor(driver)
            await cursor.execute(message)
            out: list[Rows] = []
            for _ in range(results):
                cursor.nextset()  # past the prefix, then past each statement read
                out.append(await _rows(cursor))
            return out
        except psycopg.Error as exc:
            if watchdog.fired:
                raise DeadlineExceeded from exc
            raise
        finally:
            watchdog.cancel()

    def _prefix(
        self, identity: Identity | None, role: Role | None
    ) -> tuple[Statement, dict[str, Any]]:
        """The identity statement (or the bare timeout) and its parameters."""
        params: dict[str, Any] = {"_db_timeout": self._timeout}
        if not self.row_level_security or (identity is None and role is None):
            return TIMEOUT_SQL, params
        params["_db_role"] = db_role(role or "user", for_user=identity is not None)
        params["_db_claims"] = identity.claims_json() if identity is not None else ""
        params["_db_sub"] = str(identity.user_id) if identity is not None else ""
        return IDENTITY_SQL, params

    # --- lifecycle -------------------------------------------------------------------------
    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    async def ping(self) -> None:
        """One trivial round trip; raises DatabaseUnavailable when the server is unreachable."""
        await self.run(_PING, {}, operation="ping")

    async def migration_state(self) -> tuple[str | None, str | None]:
        """(current revision of the database, head revision of the code)."""
        head = head_revision()
        with classified():
            async with self.engine.connect() as conn:
                current = await conn.run_sync(
                    lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
                )
        return current, head

    async def schema_verdict(self) -> SchemaVerdict:
        """Whether this code may serve the database's schema (`db.compatibility`): at its
        head, or ahead by backward-compatible revisions only."""
        current, head = await self.migration_state()
        markers: dict[str, Marker] = {}
        known = known_revisions()
        if current is not None and current != head and current not in known:
            markers = await self._schema_markers()
        return judge(current, head, known, markers)

    async def _schema_markers(self) -> dict[str, Marker]:
        """`schema_revisions` (empty when the table does not exist), read as the service's
        role: the login role is granted no table of its own beyond `alembic_version`."""
        async with self.transaction(role="service") as session:
            if not await session.scalar(text(MARKERS_EXIST_SQL)):
                return {}
            rows = (await session.execute(text(MARKERS_SQL))).all()
        return {
            row.revision: Marker(row.down_revision, bool(row.backward_compatible)) for row in rows
        }
