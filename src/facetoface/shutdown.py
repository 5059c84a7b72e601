"""Graceful drain: what SIGTERM does to a `serve` process (README "Shutdown").

1. At once: `/readyz` answers 503 `draining` (load balancers that poll readiness stop sending)
   and the reconciler stops — the pass in progress finishes the row it is on and releases the
   leases of the rows it claimed and did not reach, so another replica takes them now rather
   than when the lease runs out.
2. After `SHUTDOWN_READINESS_DELAY_SECONDS` uvicorn's own shutdown: the listening socket
   closes (new connections are refused), idle keep-alive connections close, and the requests
   in flight finish — a start inside Tavus's create records its outcome — until what is left
   of the grace. Tavus calls are cut off a moment before that (`tavus_cutoff`): a create
   still unanswered then is an unknown outcome, answered `503 session_outcome_unknown`
   naming the session, which the reconciler resolves.
3. The app's lifespan ends: the reconciler's loop is awaited, pools are closed.
4. A watchdog ends the process at `SHUTDOWN_GRACE_SECONDS` whatever is still running.

A second SIGTERM skips the readiness delay.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import structlog

from facetoface.config import Settings

log = structlog.get_logger(__name__)

#: Of the grace, what the lifespan's own shutdown (the reconciler's last writes, closing the
#: pools) keeps after uvicorn stops waiting for requests.
_LIFESPAN_MARGIN_S = 2.0
#: Of what requests get, what a start keeps after Tavus's cut-off to record its outcome and
#: answer.
_RECORD_MARGIN_S = 1.0


class Shutdown:
    """A process's drain, as the parts that must react to it see it."""

    def __init__(self) -> None:
        self._since: float | None = None
        self._hooks: list[Callable[[], None]] = []

    @property
    def draining(self) -> bool:
        """Whether the process is shutting down (readiness answers 503)."""
        return self._since is not None

    def on_drain(self, hook: Callable[[], None]) -> None:
        """Call `hook` when the drain begins (at once if it has)."""
        self._hooks.append(hook)
        if self.draining:
            hook()

    def begin(self) -> bool:
        """Start draining: run the hooks. False when the drain had begun already."""
        if self._since is not None:
            return False
        self._since = time.monotonic()
        for hook in self._hooks:
            try:
                hook()
            except Exception:  # one part failing to stop must not keep the others running
                log.exception("shutdown.hook_failed")
        return True


def readiness_delay(settings: Settings) -> float:
    """Seconds `/readyz` says `draining` before the listener closes (at most half the grace)."""
    return min(settings.shutdown_readiness_delay_seconds, settings.shutdown_grace_seconds / 2)


def requests_timeout(settings: Settings) -> float:
    """uvicorn's `timeout_graceful_shutdown`: how long requests in flight may still run once
    the listener closed — what the readiness delay and the lifespan's margin leave."""
    left = settings.shutdown_grace_seconds - readiness_delay(settings) - _LIFESPAN_MARGIN_S
    return max(left, settings.shutdown_grace_seconds / 4)


def tavus_cutoff(settings: Settings) -> float:
    """Seconds from the drain's start after which no Tavus call may still run: a start
    inside Tavus's create then records its outcome (unknown: the reconciler resolves it)
    and answers before uvicorn stops waiting for it."""
    return max(
        readiness_delay(settings) + requests_timeout(settings) - _RECORD_MARGIN_S,
        readiness_delay(settings),
    )


def install_sigterm_drain(shutdown: Shutdown, settings: Settings) -> None:
    """Put the drain in front of uvicorn's SIGTERM handler. Call from the app's lifespan
    startup: uvicorn installs its handlers before it, and restores the previous ones after
    serving. Only the main thread may handle signals (a server run elsewhere is left alone)."""
    if threading.current_thread() is not threading.main_thread():
        return
    stop_serving = signal.getsignal(signal.SIGTERM)
    if not callable(stop_serving):
        return
    loop = asyncio.get_running_loop()

    def begin(signum: int, frame: FrameType | None) -> None:
        if not shutdown.begin():
            stop_serving(signum, frame)  # a second SIGTERM: close the listener now
            return
        delay = readiness_delay(settings)
        log.info(
            "serve.draining",
            readiness_delay_s=delay,
            grace_s=settings.shutdown_grace_seconds,
        )
        _watchdog(settings.shutdown_grace_seconds)
        loop.call_later(delay, stop_serving, signum, frame)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        # A signal handler runs between two bytecodes of whatever the loop was doing: hand
        # the work to the loop.
        loop.call_soon_threadsafe(begin, signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def _watchdog(grace_s: float) -> None:
    """End the process at the grace's end, whatever is still running (a daemon thread: it
    dies with a process that exited in time)."""

    def overrun(*_: Any) -> None:
        log.error("serve.drain_overrun", grace_s=grace_s)
        os._exit(1)

    timer = threading.Timer(grace_s, overrun)
    timer.daemon = True
    timer.start()
