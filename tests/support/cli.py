"""The `facetoface` command as people run it: a process of its own, its environment given, its
output read back; `serve` in the background until it answers; a data directory where the
embedded PostgreSQL may live (`facetoface.db.embedded`).

Each command is a fresh interpreter (a second or two of imports), so tests that need one keep
their number of commands small.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from facetoface.db.embedded import EmbeddedPostgres
from tests.support.eventually import eventually_blocking

#: Variables of the test process that would change what a command does.
_OURS = ("TAVUS_", "DATABASE_", "SUPABASE_", "DB_", "SESSION_", "PROMETHEUS_")
_SETTINGS = {"ENVIRONMENT", "DATA_DIR", "PUBLIC_BASE_URL", "PORT", "HOST", "LOG_LEVEL"}


def clean_environment(**values: str) -> dict[str, str]:
    """The test process's environment without any of the service's settings, plus `values`."""
    kept = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_OURS) and key not in _SETTINGS
    }
    return {**kept, **values}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(
    *args: str, env: dict[str, str], cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`facetoface ARGS` run to its end; `check`: fail the test on a non-zero exit."""
    result = subprocess.run(
        [sys.executable, "-m", "facetoface", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"facetoface {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
        )
    return result


@dataclass
class Served:
    """A `facetoface serve` running in the background."""

    url: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def output(self) -> tuple[str, str]:
        """(stdout, stderr) so far."""
        return self.stdout.read_text(errors="replace"), self.stderr.read_text(errors="replace")


@contextlib.contextmanager
def serving(
    env: dict[str, str], *args: str, url: str, logs: Path, ready: str = "/healthz"
) -> Iterator[Served]:
    """`facetoface serve ARGS` until the block ends (then SIGINT, as Ctrl-C), once `url`
    answers `ready` with 200. Its output goes to files in `logs` (a pipe nobody reads
    could fill and stall it)."""
    logs.mkdir(parents=True, exist_ok=True)
    stdout, stderr = logs / "serve.stdout", logs / "serve.stderr"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "facetoface", "serve", *args],
            env=env,
            cwd=logs,
            stdout=out,
            stderr=err,
        )
    served = Served(url, process, stdout, stderr)
    try:

        def answers() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{served.output()[1]}")
            try:
                return httpx.get(f"{url}{ready}", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        eventually_blocking(answers, within=60, what=f"serve answering {ready}")
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def embedded_data_dir() -> Iterator[Path]:
    """A `DATA_DIR` for the embedded PostgreSQL; removed afterwards, with any server a failed
    test left running in it stopped first.

    Not under pytest's `tmp_path`: as root the server runs as another user, who must be able
    to reach its data (every directory above it searchable by others)."""
    data = Path(tempfile.mkdtemp(prefix="facetoface-cli-"))
    data.chmod(0o755)
    try:
        yield data
    finally:
        if embedded_server_running(data):
            # Its starter is gone: `start` adopts it, and the adopter stops it.
            server = EmbeddedPostgres(data / "postgres")
            server.start()
            server.stop()
        shutil.rmtree(data, ignore_errors=True)


def embedded_server_running(data_dir: Path) -> bool:
    """Whether an embedded PostgreSQL runs on `data_dir` (its postmaster.pid names a live
    process; `pg_ctl stop` removes the file)."""
    pidfile = data_dir / "postgres" / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
