"""Engine, the transaction boundary, and the one classification of database failure.

Services never commit: they run their work inside the boundary, which commits on success and
rolls back on any error. There are two ways in, both with the same identity rules, admission
control and failure classification:

- `Database.transaction(identity, role=...)` yields an `AsyncSession` for work of several
  statements (the reconciler, data rights, tests). On PostgreSQL it opens with one round trip
  (`BEGIN` plus the identity, below) and ends with `COMMIT`; no pre-ping, no reset trip.
- `Database.run(sql, params, identity, role=...)` — PostgreSQL's hot paths — sends the
  identity and one statement as a single simple-protocol message: one round trip, one
  implicit transaction (PostgreSQL runs a multi-statement message atomically), parameters
  bound client-side by psycopg. It works through a transaction pooler as it is.

**Identity.** Every transaction takes an optional `Identity` (the verified caller) and an
optional `role`. With row-level security (`DB_ROW_LEVEL_SECURITY`, docs/security.md) they
are applied transaction-locally (safe behind a transaction pooler): a user transaction runs as
`authenticated` with the caller's claims, so Supabase's policies (`(select auth.uid()) =
user_id`) confine it to the caller's rows; a `role="service"` transaction runs as
`facetoface_service`, the service's own role for the writes no user may make (session state,
callbacks, the reconciler) — confined to the caller's rows too when an identity is given.
The role is always one of two constants, never taken from the token.

**Failure.** Every way the database can fail us — connection refused, reset, timed out, hung
(bounded by the connect timeout and a per-transaction deadline that shuts the socket), the
pool saturated (admission control sheds load before it queues), the server shutting down,
serialization failures and deadlocks — becomes `DatabaseUnavailable`: a 503
`database_unavailable` with `Retry-After`, logged and counted by reason. Anything else is a
bug and stays a 500.

**Dead connections** are found without a round trip: before a pooled connection is handed
out, its socket is checked (an idle connection the server closed has its error or EOF
waiting); a dead one is replaced before anything is sent. There is no pre-ping.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import re
import select
import socket
import sqlite3
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any, Literal, Protocol

import psycopg
import structlog
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg import AsyncClientCursor
from psycopg.adapt import Transformer
from sqlalchemy import Connection, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from facetoface.config import Settings
from facetoface.errors import ServiceUnavailable
from facetoface.observability import metrics

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


class _Literals(Protocol):
    """What `Statement.render` needs of psycopg's adapters."""

    def as_literal(self, obj: Any) -> bytes: ...


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


class Statement:
    """SQL text with `%(name)s` placeholders, split once, rendered with client-side literals.

    psycopg binds client-side too, but re-parses long statements on every call (it caches
    only short ones); the hot path's statements are long and run thousands of times, so they
    are parsed here once. Values become literals through psycopg's own adapters (quoting,
    escaping, the type casts), so rendering is as safe as psycopg's client-side binding.
    The text must contain no other `%`.
    """

    __slots__ = ("_chunks", "_names", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        pieces = _PLACEHOLDER.split(text)
        self._chunks = [piece.encode() for piece in pieces[0::2]]
        self._names = pieces[1::2]
        if any(b"%" in chunk for chunk in self._chunks):
            raise ValueError("a statement may contain no `%` but its placeholders")

    def render(self, params: Mapping[str, Any], adapt: _Literals) -> bytes:
        out = [self._chunks[0]]
        for name, chunk in zip(self._names, self._chunks[1:], strict=True):
            value = params[name]
            out.append(b"NULL" if value is None else adapt.as_literal(value))
            out.append(chunk)
        return b"".join(out)


#: The identity (role and claims) and the statement timeout, all transaction-local, in one
#: statement. `set_config('role', …, true)` is `SET LOCAL ROLE`; values are bound parameters.
#: Both claim settings are always written, so a service transaction never sees a stale caller.
IDENTITY_SQL = Statement(
    "SELECT set_config('role', %(_db_role)s, true), "
    "set_config('request.jwt.claims', %(_db_claims)s, true), "
    "set_config('request.jwt.claim.sub', %(_db_sub)s, true), "
    "set_config('statement_timeout', %(_db_timeout)s, true), "
    "set_config('timezone', 'UTC', true)"
)
#: Without row-level security only the statement timeout (and UTC for timestamps) is set.
TIMEOUT_SQL = Statement(
    "SELECT set_config('statement_timeout', %(_db_timeout)s, true), "
    "set_config('timezone', 'UTC', true)"
)
#: How `StatementCounter` recognises the identity statement.
_IDENTITY_PREFIX = "SELECT set_config("

Rows = list[dict[str, Any]]


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"
    title = "Database unavailable"


#: Why a database call failed, as logged and counted (`facetoface_db_unavailable_total`).
UnavailableReason = Literal[
    "refused",
    "connection_lost",
    "timeout",
    "saturated",
    "shutdown",
    "conflict",
    "locked",
]

#: SQLSTATEs that mean "retry later", by reason: serialization failure, deadlock; admin or
#: crash shutdown, cannot connect now, too many connections; statement/lock timeout.
_SQLSTATE_REASONS: dict[str, UnavailableReason] = {
    "40001": "conflict",
    "40P01": "conflict",
    "57P01": "shutdown",
    "57P02": "shutdown",
    "57P03": "shutdown",
    "53300": "saturated",
    "53400": "saturated",
    "57014": "timeout",
    "55P03": "timeout",
}


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and what it wraps: causes, contexts and SQLAlchemy's `.orig`, each once."""
    chain: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending and len(chain) < 12:
        current = pending.pop(0)
        if current is None or any(current is seen for seen in chain):
            continue
        chain.append(current)
        orig = getattr(current, "orig", None)
        pending += [orig if isinstance(orig, BaseException) else None]
        pending += [current.__cause__, current.__context__]
    return chain


def unavailable_reason(exc: BaseException) -> UnavailableReason | None:
    """Why `exc` means the database cannot serve us now — or None when it is not such a
    failure (a constraint violation, a bug: those keep their own handling)."""
    chain = _causes(exc)
    for current in chain:  # the server's own verdict first
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate in _SQLSTATE_REASONS:
            return _SQLSTATE_REASONS[sqlstate]
    for current in chain:
        if isinstance(current, sa_exc.TimeoutError):
            return "saturated"  # the pool's own wait ran out
        if isinstance(current, _DeadlineExceeded | TimeoutError):
            return "timeout"
        if isinstance(current, ConnectionRefusedError):
            return "refused"
        if isinstance(current, sqlite3.OperationalError):
            return "locked" if "locked" in str(current) or "busy" in str(current) else None
        if isinstance(current, psycopg.OperationalError | psycopg.InterfaceError | OSError):
            message = str(current).lower()
            if "refused" in message:
                return "refused"
            if "timeout" in message or "timed out" in message:
                return "timeout"
            return "connection_lost"
        if isinstance(current, sa_exc.DisconnectionError):
            return "connection_lost"
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return "connection_lost"
    return None


def database_unavailable(reason: UnavailableReason) -> DatabaseUnavailable:
    """The 503 for a database failure of `reason` (logged and counted here, once)."""
    log.warning("db.unavailable", reason=reason)
    metrics.record_db_unavailable(reason)
    retry_after = 1 if reason in {"conflict", "saturated", "locked"} else 5
    detail = {
        "conflict": "A concurrent change collided with this request; retry it.",
        "saturated": "The service is at capacity right now; retry shortly.",
    }.get(reason, "The database is not reachable right now; try again shortly.")
    return DatabaseUnavailable(detail, retry_after_seconds=retry_after, extra={"reason": reason})


@contextlib.contextmanager
def _classified() -> Iterator[None]:
    """Turn a database failure raised inside into `DatabaseUnavailable`; anything else (a
    constraint violation, a bug) passes as it is."""
    try:
        yield
    except Exception as exc:
        reason = unavailable_reason(exc)
        if reason is None:
            raise
        raise database_unavailable(reason) from exc


_PING = Statement("SELECT 1")
_TUPLES_OK = psycopg.pq.ExecStatus.TUPLES_OK


class _DeadlineExceeded(Exception):
    """A database call overran its deadline; its connection was shut down."""


#: Set while a request records what Tavus already did (see `recording_tavus_outcome`).
_RECORDING = contextvars.ContextVar("facetoface_db_recording", default=False)


@contextlib.contextmanager
def recording_tavus_outcome() -> Iterator[None]:
    """Database calls made inside record what Tavus already did (a conversation it created
    or ended). Load shedding must not drop them — the work is done and bills; shedding it
    would only throw it away — so they are never shed for a full queue and wait for a slot
    up to the call's deadline. Shedding applies to new work (a start's first call)."""
    token = _RECORDING.set(True)
    try:
        yield
    finally:
        _RECORDING.reset(token)


class Admission:
    """Load shedding in front of the pool: at most `capacity` database calls at once per
    process, a bounded wait for a slot, and a bounded queue. A request that cannot get a slot
    in time — or finds the queue full — is told to retry (503) instead of queueing behind the
    pool until its client gives up. The pool itself then never makes anyone wait. A call
    recording a Tavus outcome (`recording_tavus_outcome`) waits up to `recording_wait_seconds`
    instead and is never shed for the queue's length."""

    def __init__(
        self, capacity: int, wait_seconds: float, recording_wait_seconds: float | None = None
    ) -> None:
        self.capacity = capacity
        self.wait_seconds = wait_seconds
        self.recording_wait_seconds = max(wait_seconds, recording_wait_seconds or 0.0)
        #: Waiters beyond this are shed at once: at a few milliseconds per call, a queue this
        #: deep already takes longer than the wait allowed.
        self.max_waiting = max(16, 4 * capacity)
        self._slots = asyncio.Semaphore(capacity)
        self.waiting = 0

    @property
    def in_use(self) -> int:
        return self.capacity - self._slots._value

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._slots.locked():
            recording = _RECORDING.get()
            if self.waiting >= self.max_waiting and not recording:
                raise database_unavailable("saturated")
            self.waiting += 1
            try:
                async with asyncio.timeout(
                    self.recording_wait_seconds if recording else self.wait_seconds
                ):
                    await self._slots.acquire()
            except TimeoutError:
                raise database_unavailable("saturated") from None
            finally:
                self.waiting -= 1
        else:
            await self._slots.acquire()
        try:
            yield
        finally:
            self._slots.release()


class Database:
    """Owns the engine and hands out transactions; created in the app lifespan."""

    def __init__(self, settings: Settings, *, engine: AsyncEngine | None = None) -> None:
        self.settings = settings
        self.engine = engine or create_engine(settings)
        self.dialect = self.engine.dialect.name
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._timeout = str(settings.db_statement_timeout_ms)
        self._rendered_prefixes: dict[Role | None, bytes] = {}
        #: A call's deadline: the statement timeout plus a margin for the network.
        self._deadline_s = settings.db_statement_timeout_ms / 1000 + 2.0
        self.admission = Admission(
            settings.db_pool_size + settings.db_max_overflow,
            settings.db_admission_wait_seconds,
            recording_wait_seconds=self._deadline_s,
        )

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @property
    def row_level_security(self) -> bool:
        """True when transactions switch database role (PostgreSQL and the setting on)."""
        return self.is_postgres and self.settings.db_row_level_security

    # --- the general path ----------------------------------------------------------------
    @asynccontextmanager
    async def transaction(
        self, identity: Identity | None = None, *, role: Role | None = None
    ) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on error.

        - `transaction(identity)`: the caller's own work, as the caller (`authenticated`).
        - `transaction(identity, role="service")`: the service's writes for the caller;
          `facetoface_service`, confined by its policies to the caller's rows.
        - `transaction(role="service")`: the service's own work for no user (callbacks, the
          reconciler); `facetoface_service` with no claims.
        - `transaction()`: the login role itself, which in production has no table privileges
          (fail closed); administrative connections (migrations, tests) use it as the owner.
        """
        if role == "user" and identity is None:
            raise ValueError("a user transaction needs the caller's identity")
        with _classified():
            async with self.admission.slot(), self._sessions() as session:
                if not self.is_postgres:
                    async with session.begin():
                        yield session
                    return
                async with session.begin():
                    connection = await session.connection()
                    driver = (await connection.get_raw_connection()).driver_connection
                    assert driver is not None, "a checked-out connection has its driver's"
                    watchdog = _Watchdog(driver, self._deadline_s)
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

    # --- the hot path (PostgreSQL) ---------------------------------------------------------
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
        if not self.is_postgres:
            raise RuntimeError("Database.run is the PostgreSQL path; SQLite uses transaction()")
        if role == "user" and identity is None:
            raise ValueError("a user transaction needs the caller's identity")
        prefix, prefix_params = self._prefix(identity, role)
        _notify(self.engine, prefix.text, statement.text, *(s.text for s in then))
        started = time.perf_counter()
        with _classified():
            async with self.admission.slot():
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
                        (rendered, *(s.render(params, adapt) for s in (statement, *then)))
                    )
                    rows = await self._fetch(driver, message)
                except BaseException:
                    await _discard_if_broken(fairy)
                    raise
                finally:
                    await greenlet_spawn(fairy.close)
        metrics.record_db_round_trip(
            operation or metrics.sql_operation(statement.text), time.perf_counter() - started
        )
        return rows

    async def _checkout(self) -> PoolProxiedConnection:
        return await greenlet_spawn(self.engine.sync_engine.pool.connect)

    async def _fetch(self, driver: Any, message: bytes) -> Rows:
        """Send `message` (the prefix, the statement, then any others); the statement's rows.
        psycopg raises for an error in any of them."""
        watchdog = _Watchdog(driver, self._deadline_s)
        try:
            cursor = AsyncClientCursor(driver)
            await cursor.execute(message)
            cursor.nextset()  # past the prefix
            result = cursor.pgresult
            if result is None or result.status != _TUPLES_OK:
                return []
            # Names straight from the result: psycopg's `description` (what `dict_row`
            # reads) builds a typed column object per field, per call.
            names = [result.fname(i).decode() for i in range(result.nfields)]  # type: ignore[union-attr]
            return [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]
        except psycopg.Error as exc:
            if watchdog.fired:
                raise _DeadlineExceeded from exc
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
        params["_db_role"] = _DB_ROLES[role or "user"]
        params["_db_claims"] = identity.claims_json() if identity is not None else ""
        params["_db_sub"] = str(identity.user_id) if identity is not None else ""
        return IDENTITY_SQL, params

    # --- lifecycle -------------------------------------------------------------------------
    async def dispose(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        """One trivial round trip; raises DatabaseUnavailable when the server is unreachable."""
        if self.is_postgres:
            await self.run(_PING, {}, operation="ping")
            return
        async with self.transaction() as session:
            await session.execute(text("SELECT 1"))

    async def migration_state(self) -> tuple[str | None, str | None]:
        """(current revision of the database, head revision of the code)."""
        head = ScriptDirectory.from_config(alembic_config(self.settings)).get_current_head()
        with _classified():
            async with self.engine.connect() as conn:
                current = await conn.run_sync(
                    lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
                )
        return current, head


#: Who wants to see the statements an engine's `Database.run`/`transaction` send themselves
#: (SQLAlchemy's own events see the rest): `StatementCounter`.
_LISTENERS: weakref.WeakKeyDictionary[Any, list[Callable[[str], None]]] = (
    weakref.WeakKeyDictionary()
)


def _notify(engine: AsyncEngine, *statements: str) -> None:
    listeners = _LISTENERS.get(engine.sync_engine)
    if listeners:
        for statement in statements:
            for listener in listeners:
                listener(statement)


class _Watchdog:
    """Shuts a connection's socket down if a call on it outlives its deadline.

    A hung network (a blackholed route, a stalled server) never answers, and psycopg's own
    cancellation waits for the server; shutting the socket makes the pending read fail at
    once, so no request waits past its deadline. The broken connection is then discarded.
    """

    def __init__(self, driver: Any, deadline_s: float) -> None:
        self.fired = False
        self._driver = driver
        self._handle = asyncio.get_running_loop().call_later(deadline_s, self._fire)

    def _fire(self) -> None:
        self.fired = True
        log.warning("db.deadline_exceeded")
        with contextlib.suppress(OSError, ValueError, psycopg.Error):
            fileno = self._driver.pgconn.socket
            with socket.socket(fileno=fileno) as sock:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                finally:
                    sock.detach()  # the fd stays psycopg's

    def cancel(self) -> None:
        self._handle.cancel()


async def _discard_if_broken(fairy: PoolProxiedConnection) -> None:
    driver = fairy.driver_connection
    if driver is None or driver.closed or driver.broken:
        await greenlet_spawn(fairy.invalidate)
        return
    if driver.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        # An error inside an explicit transaction: end it before the connection is reused.
        with contextlib.suppress(psycopg.Error):
            await driver.rollback()


def _socket_is_dead(driver: Any) -> bool:
    """True when an idle connection's socket has anything waiting: the server's goodbye (an
    error before it closed, or EOF). Costs one `select`, never a round trip."""
    if driver.closed or driver.broken:
        return True
    try:
        readable, _, _ = select.select([driver.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


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


def create_engine(settings: Settings) -> AsyncEngine:
    """Build the async engine for `settings` (nothing connects until first use)."""
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 15}, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {
        # libpq: whole seconds, at least 2.
        "connect_timeout": max(2, round(settings.db_connect_timeout_seconds)),
        "application_name": f"facetoface.{settings.deployment_name}",
        # A peer that vanished without a FIN is noticed on idle connections too.
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        # Our statements are bound client-side (one message each); psycopg's automatic
        # server-side preparation must stay off behind a transaction pooler, where each
        # transaction may land on another server connection.
        "prepare_threshold": None,
    }
    engine = create_async_engine(
        url,
        # Errors quote the statement, never its values (transcripts, names) into the logs.
        hide_parameters=True,
        # Our boundary issues BEGIN/COMMIT itself (BEGIN in the same message as the identity),
        # so the driver must not open transactions of its own.
        isolation_level="AUTOCOMMIT",
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args=connect_args,
    )
    _configure_postgres(engine)
    return engine


def _configure_postgres(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(
        dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, proxy: Any
    ) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is not None and _socket_is_dead(driver):
            # The pool replaces it and checks out again: nothing was sent on it.
            metrics.record_db_stale_connection()
            raise sa_exc.DisconnectionError("the server closed this pooled connection")


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
    """Counts statements a `Database` sends (both paths): how tests count statements.

    `count` is the transactions' own work. The identity statement each PostgreSQL
    transaction starts with (role, claims, timeout) is counted apart, in `identity_count`;
    `total` is both. Round trips on the wire are counted by a proxy instead
    (`tests/sessions/test_round_trips.py`): a one-trip message holds both kinds.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        self.identity_count = 0
        self.statements: list[str] = []
        self._engine = engine
        _LISTENERS.setdefault(engine.sync_engine, []).append(self._record)
        event.listen(engine.sync_engine, "before_cursor_execute", self._on_execute)

    @property
    def total(self) -> int:
        return self.count + self.identity_count

    def _on_execute(self, conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        self._record(statement)

    def _record(self, statement: str) -> None:
        if statement.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
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
        _LISTENERS.get(self._engine.sync_engine, []).remove(self._record)
        event.remove(self._engine.sync_engine, "before_cursor_execute", self._on_execute)
