"""A PostgreSQL server for the tests: the local one on 127.0.0.1:5432, or a throwaway cluster.

Each test run (each xdist worker) gets its own freshly created database, dropped at the end.
Where no server can be had, PostgreSQL tests skip with a loud reason; under `CI=true` they
fail instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from facetoface.db.roles import DEFAULT_APP_LOGIN_ROLE, app_login_role_sql

#: The application's login role in the tests: what production connects as (docs/security.md).
APP_ROLE = DEFAULT_APP_LOGIN_ROLE


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str = "postgres"

    def url(self, database: str, user: str | None = None) -> str:
        return f"postgresql://{user or self.user}@{self.host}:{self.port}/{database}"


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def _find_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[PostgresServer]:
    """initdb + pg_ctl a private cluster on a free port; removed afterwards."""
    initdb, pg_ctl = _find_tool("initdb"), _find_tool("pg_ctl")
    if not (initdb and pg_ctl):
        raise RuntimeError("no PostgreSQL on 127.0.0.1:5432 and no initdb/pg_ctl to start one")
    workdir = Path(tempfile.mkdtemp(prefix="facetoface-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root; run the cluster as the postgres system user.
        shutil.chown(workdir, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    data = workdir / "data"
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *prefix,
            pg_ctl,
            "-D",
            str(data),
            "-l",
            str(workdir / "log"),
            "-w",
            "start",
            "-o",
            f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield PostgresServer("127.0.0.1", port)
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """The local server when it answers, else a throwaway cluster."""
    if _answers("127.0.0.1", 5432):
        yield PostgresServer("127.0.0.1", 5432)
        return
    with throwaway_cluster() as server:
        yield server


async def _admin(server: PostgresServer, sql: str, database: str = "postgres") -> None:
    conn = await asyncpg.connect(server.url(database))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def fresh_database(server: PostgresServer, label: str) -> Iterator[str]:
    """Create a uniquely named database; drop it (and its connections) afterwards."""
    name = f"facetoface_test_{label}_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        for _ in range(3):
            try:
                asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                break
            except asyncpg.PostgresError:
                time.sleep(0.5)


def create_app_role(server: PostgresServer, database: str) -> str:
    """Set up the application login role for a migrated `database` (with the helper operators
    run, `facetoface.db.app_login_role_sql`); returns the URL that connects as it."""
    asyncio.run(_admin(server, app_login_role_sql(APP_ROLE), database))
    return server.url(database, user=APP_ROLE)
