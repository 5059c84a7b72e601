"""The `facetoface` command as people run it: a process of its own, its environment given, its
output read back; `serve` in the background until it answers; a data directory where the
embedded PostgreSQL may live (`facetoface.db.embedded`).

Every run is a process of its own, forked from one that imported the command once
(tests/support/command_server.py): a `python -m facetoface` spends 2-3 s of CPU importing
before it does anything, which made the CLI tests most of the suite's CPU time.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from facetoface.db.embedded import EmbeddedPostgres
from tests.support.eventually import eventually_blocking
from tests.support.signing import TEST_CALLBACK_SIGNING_SECRET

#: Variables of the test process that would change what a command does.
_OURS = ("TAVUS_", "DATABASE_", "SUPABASE_", "DB_", "SESSION_", "PROMETHEUS_", "CALLBACK_")
#: The callback URLs' signing secret of every test service and command (required outside
#: development): one deployment, whichever process gave a URL out.
_SETTINGS = {"ENVIRONMENT", "DATA_DIR", "PUBLIC_BASE_URL", "PORT", "HOST", "LOG_LEVEL"}
_SERVER_SCRIPT = Path(__file__).with_name("command_server.py")


def clean_environment(**values: str) -> dict[str, str]:
    """The test process's environment without any of the service's settings, plus `values`."""
    kept = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_OURS) and key not in _SETTINGS
    }
    # Required outside development (a test environment too): one for every command.
    return {**kept, "CALLBACK_SIGNING_SECRET": TEST_CALLBACK_SIGNING_SECRET, **values}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Commands:
    """This test process's command server (started on first use, ended at exit)."""

    _instance: _Commands | None = None

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process = subprocess.Popen(
            [sys.executable, "-P", str(_SERVER_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._read()  # {"ready": pid}: the imports are done
        atexit.register(self.close)

    @classmethod
    def get(cls) -> _Commands:
        if cls._instance is None or cls._instance._process.poll() is not None:
            cls._instance = _Commands()
        return cls._instance

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the command server ended ({self._process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, **request: Any) -> dict[str, Any]:
        with self._lock:
            assert self._process.stdin is not None
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            return self._read()

    def close(self) -> None:
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            self._process.wait(timeout=10)


@dataclass
class Run:
    """One run of the command."""

    pid: int
    stdout_path: Path
    stderr_path: Path
    returncode: int | None = None

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def poll(self) -> int | None:
        """The exit status, or None while it runs."""
        if self.returncode is None:
            self.returncode = _Commands.get().ask(poll=self.pid)["status"]
        return self.returncode

    def wait(self, timeout: float) -> int:
        """The exit status, once it ends (killed, and the test failed, after `timeout` s)."""
        if self.returncode is None:
            status = _Commands.get().ask(wait=self.pid, timeout=timeout)["status"]
            if status is None:
                raise AssertionError(f"facetoface (pid {self.pid}) ran over {timeout} s")
            self.returncode = status
        return self.returncode


def _start(
    args: tuple[str, ...], env: dict[str, str], cwd: Path, *, background: bool, timeout: float
) -> Run:
    cwd.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkstemp(prefix="stdout-", dir=cwd)[1])
    err = Path(tempfile.mkstemp(prefix="stderr-", dir=cwd)[1])
    answer = _Commands.get().ask(
        args=list(args),
        env=env,
        cwd=str(cwd),
        stdout=str(out),
        stderr=str(err),
        background=background,
        timeout=timeout,
    )
    run = Run(answer["pid"], out, err, answer.get("status"))
    if not background and run.returncode is None:
        raise AssertionError(f"facetoface {' '.join(args)} ran over {timeout} s")
    return run


def cli(*args: str, env: dict[str, str], cwd: Path, check: bool = True) -> Run:
    """`facetoface ARGS` run to its end in `cwd` (where its output files go too); `check`:
    fail the test on a non-zero exit."""
    run = _start(args, env, cwd, background=False, timeout=120)
    if check and run.returncode != 0:
        raise AssertionError(f"facetoface {' '.join(args)} exited {run.returncode}:\n{run.stderr}")
    return run


@contextlib.contextmanager
def serving(
    env: dict[str, str],
    *args: str,
    url: str,
    logs: Path,
    ready: str = "/healthz",
    within: float = 60,
) -> Iterator[Run]:
    """`facetoface serve ARGS` (working in `logs`, its output there) until the block ends,
    then Ctrl-C (SIGINT); the block starts once `url` answers `ready` with 200 (the test
    fails after `within` s)."""
    served = _start(("serve", *args), env, logs, background=True, timeout=0)
    try:

        def answers() -> bool:
            if served.poll() is not None:
                raise AssertionError(f"serve exited early ({served.returncode}):\n{served.stderr}")
            try:
                return httpx.get(f"{url}{ready}", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        eventually_blocking(answers, within=within, what=f"serve answering {ready}")
        yield served
    finally:
        if served.poll() is None:
            os.kill(served.pid, signal.SIGINT)
        served.wait(timeout=30)


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
