"""The benchmark's results: the machine, per-phase figures, the targets with PASS/MISS and their
margin, notes on what limited the run, and the printed table."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from bench.harness import ROOT, Phase
from bench.support import latency_summary, tail_breakdown

#: Issue 11's targets, for this 2-core machine with the load generator on it.
RATIO_CALLBACKS_TO_FLOOR = 0.25
SERVER_CPU_MS_PER_CALLBACK = 0.5
SERVER_CPU_MS_PER_SESSION = 5.0
ORIGIN_OVER_OURS_AT_2MS = 3.0
OPEN_LOOP_START_P99_MS = 25.0
TARGET_OPEN_LOOP_RATE = 50.0
#: Round trips on the wire per operation (PostgreSQL, in isolation).
WIRE_BUDGETS = {"start": 2, "end": 2, "read": 1, "callback": 1}
#: Earlier targets, still held: statements the service sends, closed-loop overhead at 50
#: users, callbacks ingested per second.
STATEMENT_BUDGETS = {"start": 3, "end": 2, "callback": 2}
CLOSED_LOOP_P99_MS = 25.0
CALLBACKS_PER_S = 1000.0
TARGET_CONCURRENCY = 50
#: Issue 20's targets: every CPU figure a ratio to `GET /healthz` in the same run (the
#: machine's speed varies from run to run; the ratio does not).
RATIO_CALLBACKS_TO_FLOOR_20 = 0.5
CPU_CALLBACK_OVER_HEALTHZ = 2.0
CPU_SESSION_OVER_HEALTHZ = 20.0
OPEN_LOOP_START_P99_MS_20 = 15.0
#: Growth: p50 at the largest size within this factor of the smallest size's.
GROWTH_FLAT = 1.25
GROWTH_TARGETS = ("start", "callback", "list", "context", "reconcile pass")


def machine_info() -> dict[str, Any]:
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
    git = {}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
        git = {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    import facetoface

    return {
        # Which service was measured (PYTHONPATH can point at another checkout).
        "facetoface_source": str(Path(facetoface.__file__).resolve().parent),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_avg_before": os.getloadavg(),
        "git": git,
    }


def phase_json(phase: Phase, latency_ms: float) -> dict[str, Any]:
    ops: dict[str, Any] = {}
    for name, op in phase.ops.items():
        subtract = latency_ms if name in ("start", "end") else 0.0
        ops[name] = {
            "e2e_ms": latency_summary(op.latencies),
            "overhead_ms": latency_summary(op.latencies, subtract),
            "errors": dict(op.errors),
            "first_error": op.first_error,
            "outcomes": dict(op.outcomes),
            "breakdown": tail_breakdown(op.latencies, op.spans, tavus_ms=subtract),
        }
    completed = phase.completed
    cpu = phase.cpu
    server_s = cpu.get("server_s")
    wall = phase.wall_s or float("nan")
    return {
        "completed": completed,
        "wall_s": round(phase.wall_s, 3),
        "per_s": round(completed / wall, 1) if completed else 0.0,
        "stopped_early": phase.stopped_early,
        "cpu": cpu,
        "server_cpu_ms_per_unit": round(1000 * server_s / completed, 3)
        if server_s is not None and completed
        else None,
        "server_cpu_cores": round(server_s / wall, 2) if server_s is not None else None,
        "ops": ops,
        "profile": phase.profile,
        **phase.extra,
    }


# --- targets ------------------------------------------------------------------------------
class _Targets:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(
        self,
        group: str,
        name: str,
        value: float | None,
        limit: float,
        *,
        higher_is_better: bool = False,
        note: str | None = None,
    ) -> None:
        row: dict[str, Any] = {"group": group, "target": name, "value": value, "limit": limit}
        row["op"] = ">=" if higher_is_better else "<="
        if note:
            row["note"] = note
        if value is None:
            row["status"] = "N/A"
        else:
            ok = value >= limit if higher_is_better else value <= limit
            # Margin: how far inside the limit (positive) or outside it (negative).
            margin = (value - limit) if higher_is_better else (limit - value)
            row.update(
                status="PASS" if ok else "MISS",
                margin=round(margin, 3),
                margin_pct=round(100 * margin / limit, 1) if limit else None,
            )
        self.rows.append(row)


def _ratio(a: float | None, b: float | None, digits: int = 3) -> float | None:
    return round(a / b, digits) if a is not None and b else None


def evaluate(results: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every target with its value, PASS/MISS and margin (N/A when not measured)."""
    t = _Targets()
    if results["phases"]:
        _issue_11_and_earlier(t, results, args)
        _issue_20(t, results, args)
    _growth(t, results)
    return t.rows


def _issue_20(t: _Targets, results: dict[str, Any], args: argparse.Namespace) -> None:
    phases, issue = results["phases"], "issue 20"
    floor = phases["floor"]
    healthz_cpu = floor["server_cpu_ms_per_unit"]
    t.add(
        issue,
        "callbacks/s / healthz/s",
        _ratio(phases["callbacks"]["per_s"], floor["per_s"]),
        RATIO_CALLBACKS_TO_FLOOR_20,
        higher_is_better=True,
    )
    t.add(
        issue,
        "server CPU per callback / per healthz",
        _ratio(phases["callbacks"]["server_cpu_ms_per_unit"], healthz_cpu, 2),
        CPU_CALLBACK_OVER_HEALTHZ,
    )
    t.add(
        issue,
        "server CPU per session / per healthz",
        _ratio(phases["sessions"]["server_cpu_ms_per_unit"], healthz_cpu, 2),
        CPU_SESSION_OVER_HEALTHZ,
    )
    at_2ms = next((r for r in results["origin"].get("by_rtt", []) if r["rtt_ms"] == 2), None)
    t.add(
        issue,
        "origin / ours at 2 ms RTT (p50)",
        at_2ms["ratio_p50"] if at_2ms else None,
        ORIGIN_OVER_OURS_AT_2MS,
        higher_is_better=True,
        note=None if at_2ms else "2 is not among --db-rtt-ms",
    )
    note = None
    if args.concurrency != TARGET_CONCURRENCY:
        note = f"target is stated at {TARGET_CONCURRENCY} users"
    for op in ("start", "end", "callback"):
        value = phases["sessions"]["ops"].get(op, {}).get("breakdown", {}).get("ours_p99_ms")
        t.add(
            issue,
            f"ours p99 {op} ms @ {args.concurrency} users (minus Tavus span)",
            value,
            CLOSED_LOOP_P99_MS,
            note=note,
        )
    open_loop = phases.get("open-loop")
    p99 = open_loop["ops"].get("start", {}).get("overhead_ms", {}).get("p99") if open_loop else None
    rate = args.open_loop_rate
    t.add(
        issue,
        f"start overhead p99 ms, open loop {rate:g}/s",
        p99,
        OPEN_LOOP_START_P99_MS_20,
        note=None if rate == TARGET_OPEN_LOOP_RATE else f"target is stated at {50}/s",
    )


def _growth(t: _Targets, results: dict[str, Any]) -> None:
    growth = results.get("growth")
    if not growth:
        return
    sizes = growth["sizes"]
    label = f"{sizes[-1]:,} / {sizes[0]:,}"
    note = None if sizes[-1] >= 1_000_000 else "target is stated at 10^6 / 10^4"
    for op in GROWTH_TARGETS:
        t.add(
            "issue 20 growth",
            f"{op} p50 at {label} sessions",
            growth["ratio_largest_to_smallest"].get(op),
            GROWTH_FLAT,
            note=note,
        )


def _issue_11_and_earlier(t: _Targets, results: dict[str, Any], args: argparse.Namespace) -> None:
    phases = results["phases"]
    statements = results["statements"]
    issue = "issue 11"

    floor_per_s = phases["floor"]["per_s"]
    callbacks_per_s = phases["callbacks"]["per_s"]
    t.add(
        issue,
        "callbacks/s / healthz/s",
        round(callbacks_per_s / floor_per_s, 3) if floor_per_s else None,
        RATIO_CALLBACKS_TO_FLOOR,
        higher_is_better=True,
    )
    t.add(
        issue,
        "server CPU ms per callback",
        phases["callbacks"]["server_cpu_ms_per_unit"],
        SERVER_CPU_MS_PER_CALLBACK,
    )
    t.add(
        issue,
        "server CPU ms per session",
        phases["sessions"]["server_cpu_ms_per_unit"],
        SERVER_CPU_MS_PER_SESSION,
    )
    at_2ms = next((r for r in results["origin"]["by_rtt"] if r["rtt_ms"] == 2), None)
    t.add(
        issue,
        "origin / ours at 2 ms RTT (p50)",
        at_2ms["ratio_p50"] if at_2ms else None,
        ORIGIN_OVER_OURS_AT_2MS,
        higher_is_better=True,
        note=None if at_2ms else "2 is not among --db-rtt-ms",
    )
    open_loop = phases.get("open-loop")
    p99 = None
    if open_loop:
        p99 = open_loop["ops"].get("start", {}).get("overhead_ms", {}).get("p99")
    rate = args.open_loop_rate
    t.add(
        issue,
        f"start overhead p99 ms, open loop {rate:g}/s",
        p99,
        OPEN_LOOP_START_P99_MS,
        note=None if rate == TARGET_OPEN_LOOP_RATE else f"target is stated at {50}/s",
    )
    for op, budget in WIRE_BUDGETS.items():
        names = [n for n in statements if n == op or n.startswith(f"{op} (")]
        if not names:
            t.add(issue, f"round trips per {op}", None, budget)
        for name in names:
            t.add(issue, f"round trips per {name}", statements[name]["round_trips_max"], budget)

    earlier = "earlier"
    for op, budget in STATEMENT_BUDGETS.items():
        names = [n for n in statements if n == op or n.startswith(f"{op} (")]
        worst = max((statements[n]["statements_max"] for n in names), default=None)
        label = (
            "statements per callback (worst type)" if op == "callback" else f"statements per {op}"
        )
        t.add(earlier, label, worst, budget)
    sessions = phases["sessions"]["ops"]
    note = None
    if args.concurrency != TARGET_CONCURRENCY:
        note = f"target is stated at {TARGET_CONCURRENCY} users"
    for op in ("start", "end", "callback"):
        value = sessions.get(op, {}).get("overhead_ms", {}).get("p99")
        t.add(
            earlier,
            f"overhead p99 {op} ms @ {args.concurrency} users",
            value,
            CLOSED_LOOP_P99_MS,
            note=note,
        )
    t.add(
        earlier, "callbacks ingested per s", callbacks_per_s, CALLBACKS_PER_S, higher_is_better=True
    )


# --- notes --------------------------------------------------------------------------------
def auto_notes(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    notes: list[str] = []
    for name, phase in results["phases"].items():
        errors = {op: v["errors"] for op, v in phase["ops"].items() if v["errors"]}
        if errors:
            notes.append(f"{name}: errors {errors}")
        if phase["stopped_early"]:
            notes.append(f"{name}: stopped at --duration {args.duration}s before its count")
        cores = phase["server_cpu_cores"]
        busy = phase["cpu"].get("machine_busy_pct")
        if cores is not None and cores >= 0.85:
            notes.append(
                f"{name}: the server process used {cores} cores: its one event loop is "
                "CPU-bound (one uvicorn worker uses one core at most)"
            )
        if busy is not None and busy >= 90:
            notes.append(
                f"{name}: the machine was {busy}% busy: server, PostgreSQL, simulator and "
                "this client compete for the same cores"
            )
        other, wall = phase["cpu"].get("other_s"), phase["wall_s"]
        if other is not None and wall and other / wall >= 0.15:
            notes.append(
                f"{name}: other processes used {other / wall:.2f} cores during the phase "
                f"(top: {phase['cpu'].get('other_top')}); with PostgreSQL's own background "
                "processes and the kernel among them, the figures may be pessimistic"
            )
    open_loop = results["phases"].get("open-loop")
    if open_loop and (open_loop.get("late") or open_loop.get("dropped")):
        notes.append(
            f"open-loop: {open_loop['late']} arrivals late (> {open_loop['late_after_ms']:g} ms "
            f"after their slot) and {open_loop['dropped']} dropped: this client fell behind "
            "its schedule (it shares the cores with the server)"
        )
    if "sessions" in results["phases"] and args.sim_latency_ms and args.concurrency:
        ideal = args.concurrency / (2 * args.sim_latency_ms / 1000)
        got = results["phases"]["sessions"]["per_s"]
        notes.append(
            f"sessions/s is bounded by the simulated Tavus: {args.concurrency} users x one "
            f"session per 2 x {args.sim_latency_ms} ms = {ideal:.0f}/s at zero overhead; "
            f"got {got}/s"
        )
    return notes


# --- the printed table --------------------------------------------------------------------
def _fmt(value: Any, width: int = 8) -> str:
    if value is None:
        return "-".rjust(width)
    if isinstance(value, float):
        return f"{value:.2f}".rjust(width) if abs(value) < 1000 else f"{value:.0f}".rjust(width)
    return str(value).rjust(width)


LOAD_PHASES = ("floor", "sessions", "callbacks", "open-loop")
UNITS = {
    "floor": "requests",
    "sessions": "sessions",
    "callbacks": "callbacks",
    "open-loop": "sessions",
}


def render(results: dict[str, Any], targets: list[dict[str, Any]]) -> str:
    p = results["parameters"]
    phases = results["phases"]
    lines = [
        f"facetoface benchmark  {results['timestamp']}  "
        f"({results['machine']['cpus']} CPUs, {results['machine']['cpu_model']}, "
        f"PostgreSQL {results['pg_version']})",
        f"users={p['users']} concurrency={p['concurrency']} sessions/user={p['sessions_per_user']} "
        f"sim latency={p['sim_latency_ms']} ms  callbacks={p['callbacks']}  "
        f"server pool={p['db_pool_size']}+{p['db_max_overflow']} tavus slots={p['tavus_slots']}  "
        f"open loop={p['open_loop_rate']:g}/s x {p['open_loop_seconds']:g} s",
        "",
        "Latency under load (ms; overhead = end-to-end minus the simulator's latency for the one "
        "Tavus call of a start or an end)",
        f"{'phase/op':<22}{'n':>7}{'err':>5}{'e2e p50':>9}{'e2e p99':>9}"
        f"{'ovh p50':>9}{'ovh p95':>9}{'ovh p99':>9}{'ovh max':>9}",
    ]
    for phase_name in LOAD_PHASES:
        phase = phases.get(phase_name)
        if phase is None:
            continue
        for op_name, op in phase["ops"].items():
            e2e, ovh = op["e2e_ms"], op["overhead_ms"]
            lines.append(
                f"{phase_name + '/' + op_name:<22}{e2e.get('n', 0):>7}"
                f"{sum(op['errors'].values()):>5}"
                f"{_fmt(e2e.get('p50'), 9)}{_fmt(e2e.get('p99'), 9)}{_fmt(ovh.get('p50'), 9)}"
                f"{_fmt(ovh.get('p95'), 9)}{_fmt(ovh.get('p99'), 9)}{_fmt(ovh.get('max'), 9)}"
            )
    lines += _render_breakdown(phases)
    open_loop = phases.get("open-loop")
    if open_loop:
        lag = open_loop["schedule_lag_ms"]
        lines.append(
            f"open loop: {open_loop['arrivals_sent']}/{open_loop['arrivals_planned']} arrivals "
            f"sent at {open_loop['achieved_rate_per_s']}/s (asked {open_loop['rate_per_s']:g}/s); "
            f"late (> {open_loop['late_after_ms']:g} ms after the slot) {open_loop['late']}, "
            f"dropped {open_loop['dropped']}; send lag p50 {lag.get('p50', '-')} "
            f"p99 {lag.get('p99', '-')} max {lag.get('max', '-')} ms"
        )
    lines += [
        "",
        "Throughput and CPU (CPU s over the phase; server ms per unit = server CPU / units)",
        f"{'phase':<11}{'units':>7}{'wall s':>8}{'units/s':>9}{'srv ms/u':>9}{'srv cores':>10}"
        f"{'sim s':>7}{'bench s':>8}{'pg s':>7}{'other s':>8}{'machine %':>10}",
    ]
    for phase_name in LOAD_PHASES:
        phase = phases.get(phase_name)
        if phase is None:
            continue
        cpu = phase["cpu"]
        lines.append(
            f"{phase_name:<11}{phase['completed']:>7}{_fmt(phase['wall_s'], 8)}"
            f"{_fmt(phase['per_s'], 9)}{_fmt(phase['server_cpu_ms_per_unit'], 9)}"
            f"{_fmt(phase['server_cpu_cores'], 10)}{_fmt(cpu.get('sim_s'), 7)}"
            f"{_fmt(cpu.get('bench_s'), 8)}{_fmt(cpu.get('postgres_s'), 7)}"
            f"{_fmt(cpu.get('other_s'), 8)}"
            f"{_fmt(cpu.get('machine_busy_pct'), 10)}"
            + ("  (stopped at --duration)" if phase["stopped_early"] else "")
            + f"  [{UNITS[phase_name]}]"
        )
    if phases:
        sessions_cpu = phases["sessions"]["server_cpu_ms_per_unit"]
        floor_cpu = phases["floor"]["server_cpu_ms_per_unit"]
        lines.append(
            f"CPU seconds per session (server): {_fmt((sessions_cpu or 0) / 1000, 0)}  "
            f"floor per request: {_fmt((floor_cpu or 0) / 1000, 0)}"
        )
        lines += _render_operations(results)
        lines += _render_origin(results)
    lines += _render_growth(results)
    lines += ["", "Targets (margin: how far inside the limit; negative: outside it)"]
    group = None
    for row in targets:
        if row["group"] != group:
            group = row["group"]
            lines.append(f"  {group}:")
        margin = ""
        if row["status"] in ("PASS", "MISS"):
            pct = f" ({row['margin_pct']:+}%)" if row.get("margin_pct") is not None else ""
            margin = f"  margin {row['margin']:+g}{pct}"
        note = f"  [{row['note']}]" if row.get("note") else ""
        lines.append(
            f"    {row['status']:<5}{row['target']:<46}{_fmt(row['value'], 9)}  "
            f"{row['op']} {row['limit']:g}{margin}{note}"
        )
    for phase_name in LOAD_PHASES:
        prof = phases.get(phase_name, {}).get("profile")
        if prof and "self_by_package" in prof:
            lines += [
                "",
                f"py-spy profile of the server, {phase_name} phase ({prof['samples']} samples)",
                "  self time by package: "
                + ", ".join(f"{e['frame']} {e['pct']}%" for e in prof["self_by_package"]),
                "  top self frames:",
            ]
            lines += [f"    {e['pct']:>5}%  {e['frame']}" for e in prof["self"][:10]]
        elif prof:
            lines += ["", f"py-spy ({phase_name}): {prof.get('error')}"]
    if results["notes"]:
        lines += ["", "Notes"] + [f"- {n}" for n in results["notes"]]
    return "\n".join(lines)


def _render_operations(results: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "Per operation, one request at a time (statements = StatementCounter on the app's "
        "engine; round trips = seen on the wire; overhead and server CPU against the server)",
        f"{'operation':<32}{'stmts':>6}{'trips':>6}{'ovh p50':>9}{'ovh p95':>9}{'srv CPU ms':>11}"
        "  round trips by kind",
    ]
    sequential = results.get("sequential", {})
    statements = results["statements"]
    names = list(sequential) + [n for n in statements if n not in sequential]
    for op in names:
        st = statements.get(op, {})
        sq = sequential.get(op, {})
        breakdown = ", ".join(
            f"{k} {v}" for k, v in st.get("round_trip_breakdown", {}).items() if k != "total"
        )
        ovh = sq.get("overhead_ms", {})
        stmts = st.get("statements")
        if stmts is not None and st.get("identity_statements"):
            stmts = f"{stmts}+{st['identity_statements']}"
        lines.append(
            f"{op:<32}{_fmt(stmts, 6)}{_fmt(st.get('round_trips'), 6)}"
            f"{_fmt(ovh.get('p50'), 9)}{_fmt(ovh.get('p95'), 9)}{_fmt(sq.get('server_cpu_ms'), 11)}"
            f"  {breakdown}"
        )
    if any(st.get("identity_statements") for st in statements.values()):
        lines.append(
            "  n+m: m identity statements (row-level security: the transaction's role and claims, "
            "one per transaction), which StatementCounter counts apart from the n"
        )
    return lines


def _render_origin(results: dict[str, Any]) -> list[str]:
    o = results["origin"]
    rt = o.get("round_trips", {})
    start_statements = results["statements"].get("start", {}).get("statements")
    lines = [
        "",
        "Start, database part: the origin's flow replayed vs ours (SessionService.start minus its "
        "Tavus call), sequential, same database",
    ]
    if "origin" in o:
        lines.append(
            f"{'flow at 0 ms RTT':<30}{'stmts':>6}{'trips':>6}{'mean ms':>9}{'p50 ms':>8}"
            f"{'p95 ms':>8}{'p99 ms':>8}{'cpu ms':>8}"
        )
        for name, label, stmts in (
            ("origin", "origin (5 reads + 2 inserts)", o["origin"].get("statements")),
            ("ours", "ours (SessionService.start)", start_statements),
        ):
            f = o[name]
            lines.append(
                f"{label:<30}{_fmt(stmts, 6)}{_fmt(rt.get(name, {}).get('total'), 6)}"
                f"{_fmt(f['mean_ms'], 9)}{_fmt(f['p50_ms'], 8)}{_fmt(f['p95_ms'], 8)}"
                f"{_fmt(f['p99_ms'], 8)}{_fmt(f.get('client_cpu_ms'), 8)}"
            )
        lines.append(
            f"ratio origin/ours: p50 {o['ratio_p50_origin_over_ours']}x, mean "
            f"{o['ratio_mean_origin_over_ours']}x; ours minus its Tavus call "
            f"({o['ours'].get('tavus_ms_subtracted_mean')} ms mean)   (cpu ms = this process's "
            "CPU per start: the driver, and for ours also SQLAlchemy, the service's own work "
            "and its Tavus client)"
        )
    lines += [
        "",
        "Remote database: every round trip delayed by the RTT (counting proxy; 0 = direct)",
        f"{'RTT ms':>7}{'n':>6}{'origin ms':>11}{'ours ms':>10}{'origin/ours':>13}"
        f"{'mean ratio':>12}{'trips origin':>14}{'trips ours':>12}   (ms: p50)",
    ]
    for row in o["by_rtt"]:
        origin, ours = row["origin"], row["ours"]
        trips_origin = origin.get("round_trips") or rt.get("origin", {}).get("total")
        trips_ours = ours.get("round_trips") or rt.get("ours", {}).get("total")
        lines.append(
            f"{row['rtt_ms']:>7g}{ours['n']:>6}"
            f"{_fmt(origin['p50_ms'], 11)}{_fmt(ours['p50_ms'], 10)}"
            f"{_fmt(row['ratio_p50'], 12)}x{_fmt(row['ratio_mean'], 11)}x"
            f"{_fmt(trips_origin, 14)}{_fmt(trips_ours, 12)}"
        )
    return lines


def _render_growth(results: dict[str, Any]) -> list[str]:
    growth = results.get("growth")
    if not growth:
        return []
    sizes = [str(n) for n in growth["sizes"]]
    lines = [
        "",
        f"Growth: p50 ms, one request at a time, {growth['samples']} samples per operation "
        f"(history over {growth['users']:,} users, filled in SQL; simulator latency 0)",
        f"{'operation':<18}" + "".join(f"{int(n):>12,}" for n in sizes) + f"{'ratio':>9}",
    ]
    for op, ratio in growth["ratio_largest_to_smallest"].items():
        row = [growth["by_size"][n]["operations"][op]["p50_ms"] for n in sizes]
        lines.append(f"{op:<18}" + "".join(_fmt(v, 12) for v in row) + _fmt(ratio, 9))
    first = [growth["by_size"][n]["operations"]["reconcile pass"]["first_ms"] for n in sizes]
    lines.append(f"{'(first pass)':<18}" + "".join(_fmt(v, 12) for v in first))
    for n in sizes:
        tables = growth["by_size"][n]["tables"]
        fill = growth["by_size"][n]["fill"]
        lines.append(
            f"  at {int(n):,}: "
            + ", ".join(
                f"{t} {v['rows']:,} rows {v['bytes'] / 2**20:.0f} MiB" for t, v in tables.items()
            )
            + f"; filled in {fill['insert_s']} s + {fill['vacuum_analyze_s']} s VACUUM ANALYZE"
        )
    return lines


def _render_breakdown(phases: dict[str, Any]) -> list[str]:
    """The slowest 1 % of each operation split by the server's `Server-Timing` spans."""
    rows = []
    for phase_name in LOAD_PHASES:
        for op_name, op in phases.get(phase_name, {}).get("ops", {}).items():
            b = op.get("breakdown") or {}
            if b:
                rows.append((f"{phase_name}/{op_name}", b))
    if not rows:
        return []
    lines = [
        "",
        "Slowest 1 % of each operation, mean ms (Server-Timing): e2e = outside + app; app = "
        "db_wait + db + tavus + other (our CPU and the event loop's waits); ours = e2e - tavus",
        f"{'phase/op':<22}{'tail n':>7}{'e2e':>8}{'outside':>8}{'app':>8}{'db_wait':>8}"
        f"{'db':>8}{'tavus':>8}{'other':>8}{'ours p50':>9}{'ours p99':>9}",
    ]
    for name, b in rows:
        lines.append(
            f"{name:<22}{b['tail_n']:>7}{_fmt(b['tail_e2e_ms'])}{_fmt(b['tail_outside_ms'])}"
            f"{_fmt(b['tail_app_ms'])}{_fmt(b['tail_db_wait_ms'])}{_fmt(b['tail_db_ms'])}"
            f"{_fmt(b['tail_tavus_ms'])}{_fmt(b['tail_app_other_ms'])}"
            f"{_fmt(b['ours_p50_ms'], 9)}{_fmt(b['ours_p99_ms'], 9)}"
        )
    for phase_name in LOAD_PHASES:
        wal = phases.get(phase_name, {}).get("wal")
        if wal:
            lines.append(
                f"{phase_name}: {wal['commits']} commits, {wal['syncs']} WAL flushes "
                f"({wal['commits_per_sync']} commits per flush: PostgreSQL's own group commit)"
            )
        lag = phases.get(phase_name, {}).get("loop_lag")
        if lag:
            lines.append(
                f"{phase_name}: event-loop lag {lag['samples']} samples, "
                f"{lag['over_10ms_pct']}% over 10 ms, {lag['over_50ms_pct']}% over 50 ms, "
                f"mean {lag['mean_ms']} ms"
            )
    return lines
