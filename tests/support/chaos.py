"""Shared parts of the chaos suite (tests/reliability/test_chaos_*.py): waiting for the
simulator, converging with one reconciler pass, and the per-scenario report.

Each scenario ends with `conclude(...)`: it writes the scenario's row to
`test-artifacts/chaos-report.md` (a table, one row per scenario, merged across xdist workers
and across runs: a scenario run again replaces its row) and then asserts the checker's
verdict, so a failing scenario is in the report too.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from facetoface.reconcile.service import ReconcileReport
from tests.conftest import RunningService
from tests.support.checker import History, Verdict
from tests.support.postgres import PostgresServer
from tests.support.sessions import EAGER_RECONCILER
from tests.support.tcp_proxy import TcpProxy

REPORT_DIR = Path(__file__).resolve().parents[2] / "test-artifacts"
REPORT = REPORT_DIR / "chaos-report.md"
_ROWS = REPORT_DIR / "chaos-report.json"
_LOCK = REPORT_DIR / ".chaos-report.lock"

#: Settings every chaos scenario runs the service with: one reconciler pass acts on
#: everything at once, Tavus faults never open the breaker (they are deliberate), the
#: database's statement timeout is small so a hung call is bounded quickly, and Tavus shuts
#: a room as soon as the user leaves.
CHAOS_SETTINGS: dict[str, Any] = {
    **EAGER_RECONCILER,
    "tavus_breaker_threshold": 1000,
    "session_participant_left_timeout_seconds": 0,
    "db_statement_timeout_ms": 1500,
    "db_connect_timeout_seconds": 2,
}


async def wait_until(predicate: Callable[[], Awaitable[bool]], *, within: float, what: str) -> None:
    """Poll `predicate` every 20 ms until it holds; fail the test after `within` s."""
    deadline = time.monotonic() + within
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)


async def sim_state(service: RunningService) -> dict[str, Any]:
    """The simulator's whole state (`GET /_sim/conversations`), off the event loop."""
    return await asyncio.to_thread(service.sim.conversations)


async def created_total(service: RunningService) -> int:
    """How many conversations the simulator has created so far."""
    return int((await sim_state(service))["created_total"])


async def conversation_at_tavus(service: RunningService, name: str) -> dict[str, Any]:
    """The one simulator conversation named `name`."""
    matching = [
        c for c in (await sim_state(service))["conversations"] if c["conversation_name"] == name
    ]
    assert len(matching) == 1, f"{len(matching)} conversations named {name}"
    return matching[0]


async def converge(
    service: RunningService, lifted_at: float, *, errors: int = 0
) -> tuple[float, ReconcileReport]:
    """Let callbacks land, run one reconciler pass, let its effects' callbacks land: the
    seconds from `lifted_at` (when the fault was lifted) to then, and the pass's report
    (which must have had exactly `errors` isolated row errors)."""
    await asyncio.to_thread(service.sim.drain, 5.0)
    report = await service.reconciler.run_once()
    await asyncio.to_thread(service.sim.drain, 5.0)
    assert report.errors == errors, f"the reconciler pass: {report}"
    return round(time.monotonic() - lifted_at, 2), report


@dataclass
class Row:
    """One scenario's line of the report."""

    scenario: str
    sent: int
    answers: dict[str, int]
    duplicates: int
    orphans: int
    lost_callbacks: int
    converge_s: float | None
    seconds: float
    verdict: str
    notes: str
    at: str


def conclude(
    scenario: str,
    history: History,
    verdict: Verdict,
    *,
    began: float,
    converge_s: float | None,
    notes: str = "",
    expect: Mapping[str, bool] | None = None,
) -> None:
    """Write the scenario's report row, then assert the checker's verdict and the
    scenario's own claims (`expect`: what each claim says → whether it held)."""
    failed = [claim for claim, held in (expect or {}).items() if not held]
    row = Row(
        scenario=scenario,
        sent=history.sent,
        answers=dict(sorted(history.answers.items())),
        duplicates=verdict.duplicates,
        orphans=verdict.orphans,
        lost_callbacks=verdict.lost_callbacks + verdict.unrecovered_events,
        converge_s=converge_s,
        seconds=round(time.monotonic() - began, 1),
        verdict="PASS" if verdict.ok and not failed else "FAIL",
        notes="; ".join([*(f"FAILED: {claim}" for claim in failed), notes]).strip("; "),
        at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
    )
    _write(row)
    assert verdict.ok, verdict
    assert not failed, f"claims that did not hold: {failed}"


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    with _LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers write at once
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write(row: Row) -> None:
    with _locked():
        rows: dict[str, dict[str, Any]] = {}
        if _ROWS.exists():
            with contextlib.suppress(ValueError):
                rows = json.loads(_ROWS.read_text())
        rows[row.scenario] = asdict(row)
        _ROWS.write_text(json.dumps(rows, indent=1, sort_keys=True))
        REPORT.write_text(render(rows))


def render(rows: dict[str, dict[str, Any]]) -> str:
    """The report: one table row per scenario, in scenario order."""
    lines = [
        "# Chaos suite report",
        "",
        "Written by `tests/reliability/test_chaos_*.py` (`make test`). Answers are counted by "
        "status and problem `code`; *converge* is the seconds from the fault's end until one "
        "reconciler pass left nothing unresolved. Lost callbacks count callbacks acknowledged "
        "with a 2xx but not stored, and events Tavus holds for an ended session that we lack.",
        "",
        "| scenario | requests | answers | duplicates | orphans | lost callbacks "
        "| converge (s) | scenario (s) | verdict | run at (UTC) | notes |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for name in sorted(rows):
        r = rows[name]
        answers = ", ".join(f"{label} ×{count}" for label, count in r["answers"].items())
        converge = "—" if r["converge_s"] is None else f"{r['converge_s']:.2f}"
        lines.append(
            f"| {name} | {r['sent']} | {answers} | {r['duplicates']} | {r['orphans']} "
            f"| {r['lost_callbacks']} | {converge} | {r['seconds']:.1f} | {r['verdict']} "
            f"| {r['at']} | {r['notes']} |"
        )
    return "\n".join(lines) + "\n"


@pytest.fixture
def proxy(pg_server: PostgresServer) -> Iterator[TcpProxy]:
    """A TCP proxy in front of the test PostgreSQL server (see tcp_proxy.py)."""
    with TcpProxy(pg_server.port, pg_server.host).start() as running:
        yield running


async def send(
    history: History,
    request: Awaitable[httpx.Response],
    *,
    start: bool = False,
    callback: tuple[uuid.UUID, bytes] | None = None,
    silence_expected: bool = False,
) -> httpx.Response | None:
    """Await one request and record its answer (or that it got none) in `history`."""
    try:
        response = await request
    except httpx.TransportError as exc:
        history.record_unanswered(exc, expected=silence_expected)
        return None
    history.record(response, start=start, callback=callback)
    return response


def callback_paths(state: dict[str, Any]) -> dict[str, str]:
    """Each simulator conversation's callback path (no scheme or host), by conversation id."""
    return {
        c["conversation_id"]: "/" + c["callback_url"].split("/", 3)[3]
        for c in state["conversations"]
        if c.get("callback_url")
    }


def answered(response: httpx.Response | None) -> httpx.Response:
    """`response`, asserting the request got one."""
    assert response is not None, "the request got no answer"
    return response
