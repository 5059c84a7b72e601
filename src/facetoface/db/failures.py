"""The one classification of database failure.

Every way the database can fail us — connection refused, reset, timed out, hung (bounded by
the connect timeout and a per-call deadline that shuts the socket), the pool saturated
(admission control sheds load before it queues), the server shutting down, serialization
failures and deadlocks — becomes `DatabaseUnavailable`: a 503 `database_unavailable` with
`Retry-After`, logged and counted by reason. Anything else is a bug and stays a 500.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal, get_args

import psycopg
import structlog
from sqlalchemy import exc as sa_exc

from facetoface.errors import ServiceUnavailable
from facetoface.observability import metrics

log = structlog.get_logger(__name__)


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot serve this request now (503 with Retry-After)."""

    code = "database_unavailable"
    title = "Database unavailable"


class DeadlineExceeded(Exception):
    """A database call overran its deadline; its connection was shut down."""


#: Why a database call failed, as logged and counted (`facetoface_db_unavailable_total`).
UnavailableReason = Literal[
    "refused",
    "connection_lost",
    "timeout",
    "saturated",
    "shutdown",
    "conflict",
]
UNAVAILABLE_REASONS: frozenset[str] = frozenset(get_args(UnavailableReason))

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
        if isinstance(current, DeadlineExceeded | TimeoutError):
            return "timeout"
        if isinstance(current, ConnectionRefusedError):
            return "refused"
        if isinstance(current, psycopg.OperationalError | psycopg.InterfaceError | OSError):
            message = str(current).lower()
            if "refused" in message:
                return "refused"
            if "timeout" in message or "timed out" in message:
                return "timeout"
            return "connection_lost"
        if isinstance(current, sa_exc.DisconnectionError | sa_exc.ResourceClosedError):
            # ResourceClosedError: the pool handed back a connection it had just closed (a
            # checkout that found the socket dead, retried): the connection is gone.
            return "connection_lost"
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return "connection_lost"
        if isinstance(current, sa_exc.InvalidRequestError) and _names_a_closed_connection(current):
            return "connection_lost"
    return None


#: What SQLAlchemy says when the pool gave up on a connection (its checkout retries found
#: every socket dead: "This connection is closed") or a connection was invalidated under an
#: open transaction ("Can't reconnect until invalid transaction is rolled back").
_CLOSED_CONNECTION_MESSAGES = ("connection is closed", "can't reconnect", "invalid transaction")


def _names_a_closed_connection(exc: sa_exc.InvalidRequestError) -> bool:
    """True for the pool's "this connection is gone" errors; other `InvalidRequestError`s
    are misuse of the API (bugs) and keep their 500."""
    if isinstance(exc, sa_exc.PendingRollbackError):
        return True
    message = str(exc).lower()
    return any(words in message for words in _CLOSED_CONNECTION_MESSAGES)


def database_unavailable(reason: UnavailableReason) -> DatabaseUnavailable:
    """The 503 for a database failure of `reason` (logged and counted here, once)."""
    log.warning("db.unavailable", reason=reason)
    metrics.record_db_unavailable(reason)
    retry_after = 1 if reason in {"conflict", "saturated"} else 5
    detail = {
        "conflict": "A concurrent change collided with this request; retry it.",
        "saturated": "The service is at capacity right now; retry shortly.",
    }.get(reason, "The database is not reachable right now; try again shortly.")
    return DatabaseUnavailable(detail, retry_after_seconds=retry_after, extra={"reason": reason})


@contextlib.contextmanager
def classified() -> Iterator[None]:
    """Turn a database failure raised inside into `DatabaseUnavailable`; anything else (a
    constraint violation, a bug) passes as it is."""
    try:
        yield
    except Exception as exc:
        reason = unavailable_reason(exc)
        if reason is None:
            raise
        raise database_unavailable(reason) from exc
