"""psycopg 3 against asyncpg on the hot path's kind of statement, directly and through
PgBouncer in transaction mode (issue 20, item 1: choose the driver by measurement).

    .venv/bin/python -m bench.drivers [--n 2000]

Both drivers run as a transaction pooler allows — no named prepared statements: psycopg with
`prepare_threshold=None`, once with the service's client-side binding (`AsyncClientCursor`,
values inlined: one simple-protocol message) and once with server-side binding (extended
protocol, unnamed statement); asyncpg with `statement_cache_size=0` (unnamed statements).
Each statement is what a hot-path round trip looks like: the identity prefix (five
`set_config` calls) and then a read of one session-shaped row by key, or an update of it
returning the row, in one transaction. Sequential, one connection per driver, in a fresh
database of its own (dropped afterwards); the figures are the p50 wall time per round trip and
this process's CPU per round trip (the driver's cost, what the service's one event loop pays).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
from psycopg import AsyncClientCursor

from bench.support import free_port, percentile

_SCHEMA = """
CREATE TABLE s (
  id uuid PRIMARY KEY, user_id uuid NOT NULL, status text NOT NULL, conversation_id text,
  conversation_url text, conversation_name text, start_time timestamptz, end_time timestamptz,
  shutdown_reason text, failure_code text, mentor_name text, mentor_avatar_url text,
  created_at timestamptz NOT NULL, version integer NOT NULL, facts jsonb);
INSERT INTO s SELECT md5('s' || i)::uuid, md5('u' || i)::uuid, 'active', 'c' || i,
  'https://tavus.daily.co/c' || i, 'facetoface-bench-' || i, now(), NULL, NULL, NULL, 'Sage',
  'https://example.com/a.png', now(), 0, '{"replica_joined": true}'
  FROM generate_series(1, 1000) i;
"""
_PREFIX = (
    "SELECT set_config('role', 'postgres', true), set_config('request.jwt.claims', '{}', true), "
    "set_config('request.jwt.claim.sub', '', true), "
    "set_config('statement_timeout', '5000', true), set_config('timezone', 'UTC', true)"
)
_READ = "SELECT * FROM s WHERE id = {id} AND user_id = {user}"
_UPDATE = "UPDATE s SET version = version + 1, end_time = now() WHERE id = {id} RETURNING *"


def _ids(i: int) -> tuple[uuid.UUID, uuid.UUID]:
    import hashlib

    n = 1 + i % 1000
    return (
        uuid.UUID(hashlib.md5(f"s{n}".encode()).hexdigest()),  # noqa: S324 - ids, not security
        uuid.UUID(hashlib.md5(f"u{n}".encode()).hexdigest()),  # noqa: S324
    )


@contextlib.contextmanager
def pgbouncer(pg_port: int) -> Iterator[int]:
    """PgBouncer in transaction mode in front of 127.0.0.1:`pg_port`; yields its port."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    workdir = Path(tempfile.mkdtemp(prefix="facetoface-drivers-"))
    port = free_port()
    (workdir / "users.txt").write_text('"postgres" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        f"[databases]\n* = host=127.0.0.1 port={pg_port}\n[pgbouncer]\nlisten_addr = 127.0.0.1\n"
        f"listen_port = {port}\nunix_socket_dir =\nauth_type = trust\n"
        f"auth_file = {workdir}/users.txt\npool_mode = transaction\ndefault_pool_size = 4\n"
        f"ignore_startup_parameters = extra_float_digits,application_name\n"
        f"logfile = {workdir}/pgbouncer.log\n"
    )
    prefix: list[str] = []
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        for path in (workdir, *workdir.iterdir()):
            shutil.chown(path, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    child = subprocess.Popen([*prefix, binary, str(workdir / "pgbouncer.ini")])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                __import__("socket").create_connection(("127.0.0.1", port), timeout=0.2),
            ):
                break
            time.sleep(0.05)
        yield port
    finally:
        child.terminate()
        child.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


async def _measure(n: int, one: Callable[[int], Awaitable[Any]]) -> dict[str, float]:
    for i in range(50):  # warm-up
        await one(i)
    walls: list[float] = []
    cpu0 = time.process_time()
    for i in range(n):
        t0 = time.perf_counter()
        await one(i)
        walls.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0
    walls.sort()
    return {
        "p50_us": round(1e6 * percentile(walls, 0.5), 1),
        "p99_us": round(1e6 * percentile(walls, 0.99), 1),
        "cpu_us": round(1e6 * cpu / n, 1),
    }


async def _psycopg(url: str, n: int, client_side: bool) -> dict[str, dict[str, float]]:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=None)
    out: dict[str, dict[str, float]] = {}
    try:
        if client_side:
            # The service's way (db/database.py): prefix and statement in one message.
            async def run(sql: str, i: int) -> Any:
                sid, uid = _ids(i)
                cur = AsyncClientCursor(conn)
                text = "BEGIN; " + _PREFIX + "; " + sql.format(id="%(id)s", user="%(user)s")
                await cur.execute((text + "; COMMIT").encode(), {"id": sid, "user": uid})
                cur.nextset()
                cur.nextset()
                return await cur.fetchall()
        else:

            async def run(sql: str, i: int) -> Any:
                sid, uid = _ids(i)
                async with conn.transaction():
                    await conn.execute(_PREFIX)
                    cur = await conn.execute(
                        sql.format(id="%(id)s", user="%(user)s"), {"id": sid, "user": uid}
                    )
                    return await cur.fetchall()

        for name, sql in (("read", _READ), ("update", _UPDATE)):
            out[name] = await _measure(n, lambda i, sql=sql: run(sql, i))  # type: ignore[misc]
    finally:
        await conn.close()
    return out


async def _asyncpg(dsn: str, n: int) -> dict[str, dict[str, float]]:
    conn = await asyncpg.connect(dsn, statement_cache_size=0)
    out: dict[str, dict[str, float]] = {}
    try:

        async def run(sql: str, i: int) -> Any:
            sid, uid = _ids(i)
            async with conn.transaction():
                await conn.execute(_PREFIX)
                return await conn.fetch(sql.format(id="$1", user="$2"), sid, uid)

        async def run_update(i: int) -> Any:
            sid, _ = _ids(i)
            async with conn.transaction():
                await conn.execute(_PREFIX)
                return await conn.fetch(_UPDATE.format(id="$1"), sid)

        out["read"] = await _measure(n, lambda i: run(_READ, i))
        out["update"] = await _measure(n, run_update)
    finally:
        await conn.close()
    return out


async def main(n: int, pg_port: int) -> dict[str, Any]:
    name = f"facetoface_drivers_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{pg_port}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    results: dict[str, Any] = {}
    try:
        setup = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{pg_port}/{name}")
        await setup.execute(_SCHEMA)
        await setup.execute("VACUUM ANALYZE s")
        await setup.close()
        with pgbouncer(pg_port) as bouncer_port:
            for where, port in (("direct", pg_port), ("pgbouncer", bouncer_port)):
                url = f"postgresql://postgres@127.0.0.1:{port}/{name}"
                results[where] = {
                    "psycopg client-side (service)": await _psycopg(url, n, True),
                    "psycopg server-side": await _psycopg(url, n, False),
                    "asyncpg": await _asyncpg(url, n),
                }
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return results


def render(results: dict[str, Any]) -> str:
    lines = [f"{'path':<10}{'driver':<32}{'stmt':<8}{'p50 us':>9}{'p99 us':>9}{'CPU us':>9}"]
    for where, drivers in results.items():
        for driver, stmts in drivers.items():
            for stmt, f in stmts.items():
                lines.append(
                    f"{where:<10}{driver:<32}{stmt:<8}{f['p50_us']:>9}{f['p99_us']:>9}"
                    f"{f['cpu_us']:>9}"
                )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench.drivers", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="round trips per figure")
    parser.add_argument("--pg-port", type=int, default=5432)
    args = parser.parse_args()
    print(render(asyncio.run(main(args.n, args.pg_port))))
