"""The `facetoface` command, imported once, forked for every run (tests/support/cli.py).

Each run is still a process of its own, started the way the shell starts one: its own pid,
environment, working directory, standard streams (files), signals and exit status; Python's
exit (atexit handlers, flushed streams) at its end. What it does not pay is the imports —
2-3 s of CPU for every `python -m facetoface`, most of the cost of a CLI test.

Driven over stdin/stdout, one JSON object a line each way:

- `{"args": [...], "env": {...}, "cwd": ..., "stdout": path, "stderr": path, "timeout": s}`:
  run to the end; answers `{"pid": ..., "status": exit status}` (`-N`: killed by signal N;
  `null`: still running after `timeout` s, then killed).
- the same with `"background": true`: answers `{"pid": ...}` at once;
- `{"wait": pid, "timeout": s}`: the exit status of a background run (as above);
- `{"poll": pid}`: its exit status, or `null` while it runs.

Run as `python -P tests/support/command_server.py` (-P: this directory is not put on
`sys.path`). Nothing runs on import: a `serve --workers` child's workers are spawned
interpreters that import this file as `__mp_main__`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from typing import Any, NoReturn

#: The modules the commands use, imported before the first fork.
_WARM = (
    "facetoface.cli",
    "facetoface.app",
    "facetoface.demo",
    "facetoface.doctor",
    "facetoface.db.migrations",
    "facetoface.migrations.adopt",
    "alembic.command",
    "tavus_sim",
    "uvicorn",
)


def _run(request: dict[str, Any], reply_fd: int) -> NoReturn:
    """In the forked child: become the command, then exit as Python would."""
    code: int = 1
    try:
        os.close(reply_fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for fd, path, flags in (
            (0, os.devnull, os.O_RDONLY),
            (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
            (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        ):
            opened = os.open(path, flags, 0o644)
            os.dup2(opened, fd)
            os.close(opened)
        sys.argv = ["facetoface", *request["args"]]
        from facetoface.cli import main

        main()
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            sys.stderr.write(f"{exc.code}\n")
            code = 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        import atexit

        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed stream: nothing left to write
                stream.flush()
        os._exit(code)


#: Exit statuses of the runs that ended (a pid is reaped once).
_ENDED: dict[int, int] = {}


def _status(pid: int, timeout: float | None) -> int | None:
    """`pid`'s exit status once it ends (killed after `timeout` s); None: still running (at
    once when `timeout` is None)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while pid not in _ENDED:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            _ENDED[pid] = os.waitstatus_to_exitcode(status)
            break
        if deadline is None:
            return None
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            _ENDED[pid] = -9
            return None
        time.sleep(0.005)
    return _ENDED[pid]


def main() -> None:
    import importlib
    import threading

    for name in _WARM:
        importlib.import_module(name)
    # Answers go to a copy of stdout; the real one (what children inherit) is /dev/null.
    reply = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    reply.write(json.dumps({"ready": os.getpid()}) + "\n")
    reply.flush()
    for line in sys.stdin:
        request = json.loads(line)
        if "wait" in request:
            answer: dict[str, Any] = {"status": _status(request["wait"], request["timeout"])}
        elif "poll" in request:
            answer = {"status": _status(request["poll"], None)}
        else:
            # Forking copies only the calling thread: nothing else may be running.
            assert threading.active_count() == 1, threading.enumerate()
            pid = os.fork()
            if pid == 0:
                _run(request, reply.fileno())
            answer = {"pid": pid}
            if not request.get("background"):
                answer["status"] = _status(pid, request["timeout"])
        reply.write(json.dumps(answer) + "\n")
        reply.flush()


if __name__ == "__main__":
    main()
