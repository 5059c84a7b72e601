"""The engine and its connections: creation, liveness without a round trip, deadlines.

**Dead connections** are found without a round trip: before a pooled connection is handed
out, its socket is polled (an idle connection the server closed has its error or EOF
waiting); a dead one is replaced before anything is sent. There is no pre-ping. `poll()`
works for any descriptor number — `select()` cannot take one of 1024 or more, which every
busy process reaches.

**Deadlines**: a call that outlives its deadline has its socket shut down by a `Watchdog`,
so a hung network never holds a request longer than the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
from typing import Any

import psycopg
import structlog
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from facetoface.config import Settings
from facetoface.observability import metrics

log = structlog.get_logger(__name__)

#: Anything waiting on an idle connection's socket means the server said goodbye.
_GOODBYE = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLNVAL


def create_engine(settings: Settings) -> AsyncEngine:
    """Build the async engine for `settings` (nothing connects until first use)."""
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
        settings.sqlalchemy_url,
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
    event.listen(engine.sync_engine, "checkout", _replace_dead_connection)
    return engine


def _replace_dead_connection(
    dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, proxy: Any
) -> None:
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and socket_is_dead(driver):
        # The pool replaces it and checks out again: nothing was sent on it.
        metrics.record_db_stale_connection()
        raise sa_exc.DisconnectionError("the server closed this pooled connection")


def socket_is_dead(driver: Any) -> bool:
    """True when an idle connection's socket has anything waiting: the server's goodbye (an
    error before it closed, or EOF). One `poll()` with no wait, never a round trip."""
    if driver.closed or driver.broken:
        return True
    try:
        poller = select.poll()
        poller.register(driver.pgconn.socket, _GOODBYE)
        return bool(poller.poll(0))
    except (OSError, ValueError, psycopg.Error):
        return True


class Watchdog:
    """Shuts a connection's socket down if a call on it outlives its deadline.

    A hung network (a blackholed route, a stalled server) never answers, and psycopg's own
    cancellation waits for the server; shutting the socket makes the pending read fail at
    once, so no request waits past its deadline. The broken connection is then discarded.
    """

    def __init__(self, driver: Any, deadline_s: float | None) -> None:
        self.fired = False
        self._driver = driver
        self._handle = (
            asyncio.get_running_loop().call_later(deadline_s, self._fire)
            if deadline_s is not None
            else None
        )

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
        """The call finished in time."""
        if self._handle is not None:
            self._handle.cancel()


async def discard_if_broken(fairy: PoolProxiedConnection) -> None:
    """After a failed call: drop a broken connection, or end an open transaction on it."""
    driver = fairy.driver_connection
    if driver is None or driver.closed or driver.broken:
        await greenlet_spawn(fairy.invalidate)
        return
    if driver.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        # An error inside an explicit transaction: end it before the connection is reused.
        with contextlib.suppress(psycopg.Error):
            await driver.rollback()
