"""The chaos tests' TCP proxy (tests/support/tcp_proxy.py) in front of a real PostgreSQL, with
both drivers the service has used (asyncpg and psycopg 3): every mode does to a real client
what it says, and the proxy serves other processes while the test's own loop is blocked."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import psycopg
import pytest

from tests.support.eventually import eventually
from tests.support.postgres import PostgresServer, fresh_database
from tests.support.tcp_proxy import Mode, TcpProxy


@dataclass(frozen=True)
class Driver:
    """What a test needs of a driver: connect, one query, a drop without a goodbye."""

    name: str
    connect: Callable[[str], Awaitable[Any]]
    query: Callable[[Any, str], Awaitable[Any]]
    drop: Callable[[Any], None]
    #: What a broken connection raises (refused, reset, closed under a query).
    errors: tuple[type[BaseException], ...]


async def _asyncpg_connect(url: str) -> Any:
    return await asyncpg.connect(url, timeout=5)


async def _asyncpg_query(conn: Any, sql: str) -> Any:
    return await conn.fetchval(sql)


async def _psycopg_connect(url: str) -> Any:
    return await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=5)


async def _psycopg_query(conn: Any, sql: str) -> Any:
    row = await (await conn.execute(sql)).fetchone()
    return row[0] if row else None


def _psycopg_drop(conn: Any) -> None:
    conn.pgconn.finish()


DRIVERS = {
    "asyncpg": Driver(
        "asyncpg",
        _asyncpg_connect,
        _asyncpg_query,
        lambda conn: conn.terminate(),
        (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError),
    ),
    "psycopg": Driver(
        "psycopg", _psycopg_connect, _psycopg_query, _psycopg_drop, (psycopg.OperationalError,)
    ),
}


@pytest.fixture(params=list(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Driver:
    return DRIVERS[request.param]


async def _admin(url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def database_url(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh database with one table that records which statements reached the server."""
    with fresh_database(pg_server, "tcpproxy") as name:
        url = pg_server.url(name)
        # Blocking, not `asyncio.run`: async tests on the worker's loop request this.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE probe (marker text PRIMARY KEY)")
        yield url


@pytest.fixture
def proxy(pg_server: PostgresServer) -> Iterator[TcpProxy]:
    with TcpProxy(pg_server.port, pg_server.host).start() as running:
        yield running


async def _reached_server(database_url: str, marker: str) -> dict[str, int]:
    """Did anything with `marker` reach PostgreSQL: rows written, backends that ran it."""
    rows = await _admin(database_url, "SELECT count(*) AS n FROM probe WHERE marker = $1", marker)
    seen = await _admin(
        database_url,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE '%' || $1 || '%' "
        "AND pid <> pg_backend_pid()",
        marker,
    )
    return {"rows": rows[0]["n"], "backends": seen[0]["n"]}


async def test_forward_carries_a_session_and_counts_it(
    driver: Driver, proxy: TcpProxy, database_url: str
) -> None:
    conn = await driver.connect(proxy.url_for(database_url))
    try:
        assert await driver.query(conn, "SELECT 41 + 1") == 42
    finally:
        driver.drop(conn)
    stats = proxy.stats()
    assert stats.mode is Mode.forward
    assert stats.accepted == 1
    assert stats.bytes_up > 0
    assert stats.bytes_down > 0
    assert stats.resets_sent == 0


async def test_refuse_refuses_new_connections_only(
    driver: Driver, proxy: TcpProxy, database_url: str
) -> None:
    url = proxy.url_for(database_url)
    before = await driver.connect(url)
    try:
        with proxy.refused():
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((proxy.host, proxy.port), timeout=2).close()
            started = time.monotonic()
            with pytest.raises(driver.errors):
                await driver.connect(url)
            assert time.monotonic() - started < 2, "a refusal is immediate, not a timeout"
            # An open connection is not affected.
            assert await driver.query(before, "SELECT 1") == 1
        after = await driver.connect(url)  # restored: same port, listening again
        assert await driver.query(after, "SELECT 2") == 2
        driver.drop(after)
    finally:
        driver.drop(before)
    assert proxy.stats().accepted == 2


async def test_reset_breaks_a_running_query_and_new_connections(
    driver: Driver, proxy: TcpProxy, database_url: str
) -> None:
    url = proxy.url_for(database_url)
    marker = f"reset-{uuid.uuid4().hex}"
    conn = await driver.connect(url)
    running = asyncio.create_task(driver.query(conn, f"SELECT pg_sleep(3), '{marker}'"))
    try:

        async def running_at_the_server() -> int:
            return int((await _reached_server(database_url, marker))["backends"])

        # Until PostgreSQL runs it: the reset lands mid-query.
        await eventually(running_at_the_server, what="the query reached the server")
        with proxy.resetting():
            started = time.monotonic()
            with pytest.raises(driver.errors):
                await asyncio.wait_for(running, 2)
            assert time.monotonic() - started < 1
            assert proxy.stats().resets_sent >= 2  # the client's socket and PostgreSQL's
            with pytest.raises(driver.errors):
                await driver.connect(url)
            assert proxy.stats().resets_sent >= 3
        fresh = await driver.connect(url)
        assert await driver.query(fresh, "SELECT 3") == 3
        driver.drop(fresh)
    finally:
        running.cancel()
        driver.drop(conn)


async def test_blackhole_hangs_and_nothing_reaches_the_server(
    driver: Driver, proxy: TcpProxy, database_url: str
) -> None:
    url = proxy.url_for(database_url)
    marker = f"blackhole-{uuid.uuid4().hex}"
    conn = await driver.connect(url)
    proxy.blackhole()
    hung = asyncio.create_task(
        driver.query(conn, f"INSERT INTO probe VALUES ('{marker}') RETURNING 1")
    )
    try:
        # The client's deadline passes with no answer and no error: the hung network.
        done, _ = await asyncio.wait({hung}, timeout=0.5)
        assert not done
        # A new connection is accepted, then silent: connecting times out.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(driver.connect(url), 0.5)
        stats = proxy.stats()
        assert stats.accepted == 2
        assert stats.active == 2
        assert await _reached_server(database_url, marker) == {"rows": 0, "backends": 0}

        proxy.restore()
        # The blackholed connection is reset, not resumed: the client learns at once...
        with pytest.raises(driver.errors):
            await asyncio.wait_for(hung, 2)
        # ...and what it had sent never reaches the server, even now.
        assert await _reached_server(database_url, marker) == {"rows": 0, "backends": 0}
        fresh = await driver.connect(url)
        assert await driver.query(fresh, "SELECT 4") == 4
        driver.drop(fresh)
    finally:
        proxy.restore()
        hung.cancel()
        driver.drop(conn)


async def test_delay_adds_latency_to_every_round_trip(
    driver: Driver, proxy: TcpProxy, database_url: str
) -> None:
    """Every round trip takes at least the delay; the fastest of a few takes about the delay
    (not a multiple of it); restored, the fastest is quicker than the delay. (Fastest of a few:
    one sample can always meet a busy machine's scheduling.)"""

    async def round_trips_ms(conn: Any) -> list[float]:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            assert await driver.query(conn, "SELECT 5") == 5
            times.append((time.perf_counter() - started) * 1000)
        return times

    conn = await driver.connect(proxy.url_for(database_url))
    try:
        await driver.query(conn, "SELECT 1")  # warm
        with proxy.delayed(60):
            assert proxy.stats().delay_ms == 60
            delayed = await round_trips_ms(conn)
        assert min(delayed) >= 60, delayed
        assert min(delayed) < 60 + 200, delayed
        restored = await round_trips_ms(conn)
        assert min(restored) < 60, f"restore removes the delay: {restored}"
    finally:
        driver.drop(conn)


def test_serves_other_processes_while_this_thread_is_blocked(
    proxy: TcpProxy, database_url: str
) -> None:
    """A child process talks to PostgreSQL through the proxy while this thread (and any event
    loop on it) is blocked in `subprocess.run`."""
    script = (
        "import sys, psycopg\n"
        "with psycopg.connect(sys.argv[1], connect_timeout=5) as conn:\n"
        "    print(conn.execute('SELECT 7 * 6').fetchone()[0])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, proxy.url_for(database_url)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"
    assert proxy.stats().accepted == 1


async def test_close_shuts_everything(pg_server: PostgresServer, database_url: str) -> None:
    proxy = TcpProxy(pg_server.port, pg_server.host).start()
    conn = await asyncpg.connect(proxy.url_for(database_url), timeout=5)
    port = proxy.port
    proxy.close()
    proxy.close()  # idempotent
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with pytest.raises(DRIVERS["asyncpg"].errors):
        await conn.fetchval("SELECT 1")
    conn.terminate()
    with pytest.raises(RuntimeError):
        proxy.blackhole()
