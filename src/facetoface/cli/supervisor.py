"""The supervisor of `serve --workers N`: uvicorn's, and it takes a dead worker's gauges out of
the merged metrics.

Each worker writes its samples to files of its own in `PROMETHEUS_MULTIPROC_DIR`; a gauge
merged over live processes (`livesum`: requests in progress) still reads a worker's files
after the worker died, unless they are removed. A worker that exits cleanly leaves nothing in
progress, but a SIGKILLed (or OOM-killed) one leaves whatever it was serving — a gauge stuck
above zero for good. So whenever the supervisor finds a worker gone (and starts another), or
replaces them all (SIGHUP), it marks the old process dead (`mark_process_dead`), which removes
its live gauges; its counters stay (they happened).
"""

from __future__ import annotations

from prometheus_client import multiprocess
from uvicorn.supervisors import Multiprocess

from facetoface.cli.common import log


class Supervisor(Multiprocess):
    """uvicorn's process supervisor that forgets the live gauges of workers it replaced."""

    def keep_subprocess_alive(self) -> None:
        before = self._pids()
        super().keep_subprocess_alive()
        self._forget(before - self._pids())

    def restart_all(self) -> None:
        before = self._pids()
        super().restart_all()
        self._forget(before - self._pids())

    def _pids(self) -> set[int]:
        return {process.pid for process in self.processes if process.pid is not None}

    def _forget(self, gone: set[int]) -> None:
        for pid in gone:
            multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
            log.info("serve.worker_replaced", pid=pid)
