"""The benchmark: PostgreSQL-backed `serve` + a standalone Tavus simulator, driven by
concurrent users through start → callbacks → end. See bench/README.md.

    .venv/bin/python -m bench.run --users 50 --concurrency 50 --sim-latency-ms 200

Phases, in order (every phase bounded in count and in time), one module each in bench/phases/:

1. set-up: a fresh database `facetoface_bench_<ts>` (dropped at the end), migrated with
   `facetoface migrate`, seeded with users that have complete profiles and a mentor
   (bench/seed.py); `facetoface tavus-sim` and `facetoface serve` as subprocesses on free ports
   of 127.0.0.1 (bench/harness.py). The simulator's own callbacks are switched off
   (`callback_drop_probability: 1.0`): the benchmark sends callbacks itself.
2. warm-up (not measured): one session per worker, some `GET /healthz`.
3. sequential: one request at a time, batch by batch: unloaded overhead and the server's CPU
   per request of each kind.
4. floor: `GET /healthz` at the same concurrency.
5. sessions: each worker drives its own users through start → `system.replica_joined`
   callback → end, `--sessions-per-user` times (closed loop).
6. callbacks: the post-call callbacks of every session of phase 5, fired concurrently.
7. open loop: starts (start → end, each a distinct user) arriving at a fixed rate.
8. statements (sequential, in-process): statements and wire round trips of one start, one read,
   one end and each callback, each in isolation.
9. origin replay (sequential): the origin's database flow for a start beside ours, at each
   `--db-rtt-ms` round-trip time.
10. growth (before 8 and 9, the server still up): history filled in SQL to each
   `--growth-sizes` size, the operations and a reconciler pass measured at each.

bench/report.py turns the figures into the JSON results, the targets and the printed table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

if __package__ in (None, ""):  # run as `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from bench.harness import RESULTS, Harness, Phase, Target, asyncpg_dsn, display, errors_of
from bench.phases.callbacks import callbacks_phase
from bench.phases.floor import floor_phase
from bench.phases.growth import growth_phase
from bench.phases.open_loop import open_loop_phase
from bench.phases.origin import origin_phase
from bench.phases.sequential import sequential_phase
from bench.phases.sessions import sessions_phase
from bench.phases.statements import statements_phase
from bench.report import auto_notes, evaluate, machine_info, phase_json, render
from bench.seed import seed_users
from facetoface.observability.logging import configure_logging


# --- arguments ----------------------------------------------------------------------------
def _sizes(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace("_", "").split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of counts: {text!r}") from None
    if values == [0]:
        return []
    if not values or values != sorted(values) or values[0] < 1:
        raise argparse.ArgumentTypeError("sizes must be positive and ascending")
    return values


def _rtts(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of ms: {text!r}") from None
    if not values or any(v < 0 or v > 1000 for v in values):
        raise argparse.ArgumentTypeError("round-trip times must be within 0..1000 ms")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Benchmark facetoface: PostgreSQL-backed serve + standalone Tavus simulator.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--users", type=int, default=50, help="seeded users (>= concurrency)")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent users")
    parser.add_argument("--sessions-per-user", type=int, default=10, help="sessions per user")
    parser.add_argument("--sim-latency-ms", type=int, default=200, help="Tavus latency")
    parser.add_argument(
        "--callbacks", type=int, default=4000, help="callbacks fired in the callbacks phase"
    )
    parser.add_argument(
        "--floor-requests", type=int, default=5000, help="GET /healthz requests (the floor)"
    )
    parser.add_argument(
        "--open-loop-rate",
        type=float,
        default=50.0,
        help="open-loop phase: starts per second (each a distinct user: start → end)",
    )
    parser.add_argument(
        "--open-loop-seconds",
        type=float,
        default=10.0,
        help="open-loop phase: how long arrivals keep coming (0: no open-loop phase)",
    )
    parser.add_argument(
        "--db-rtt-ms",
        type=_rtts,
        default=[0.0, 2.0, 20.0],
        help="origin replay: database round-trip times to compare at, comma-separated; the "
        "counting proxy delays every round trip by that much (0: a direct connection)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=120.0,
        help="cap, in seconds, on each load phase (it stops early, and says so)",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=300,
        help="sequential samples per flow in the origin replay (statements: up to 10)",
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="an existing PostgreSQL database on 127.0.0.1 (default: a fresh "
        "facetoface_bench_<ts> on 127.0.0.1:5432, dropped after the run)",
    )
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the fresh database")
    parser.add_argument(
        "--db-pool-size", type=int, default=0, help="server DB_POOL_SIZE (0: = concurrency)"
    )
    parser.add_argument("--db-max-overflow", type=int, default=10, help="server DB_MAX_OVERFLOW")
    parser.add_argument(
        "--tavus-max-concurrency",
        type=int,
        default=0,
        help="server TAVUS_MAX_CONCURRENT_REQUESTS (0: = concurrency; the service's default, "
        "16, would queue starts and ends behind its bulkhead at 50 users)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record the server with py-spy during the sessions, callbacks and open-loop phases",
    )
    parser.add_argument(
        "--growth-sizes",
        type=_sizes,
        default=[10_000, 100_000],
        help="growth phase: past sessions to fill to, comma-separated, ascending (10⁶ adds "
        "about 3 GB and 5 minutes on the 2-core machine); 0: no growth phase",
    )
    parser.add_argument(
        "--growth-users", type=int, default=2000, help="growth phase: users owning the history"
    )
    parser.add_argument(
        "--growth-samples",
        type=int,
        default=40,
        help="growth phase: sequential samples of each operation at each size",
    )
    parser.add_argument(
        "--only-growth",
        action="store_true",
        help="run the growth phase alone (no load phases, statements or origin replay)",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.users < args.concurrency:
        parser.error("--users must be >= --concurrency >= 1 (one live session per user)")
    for name in ("sessions_per_user", "callbacks", "floor_requests", "iterations"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.growth_sizes and not 1 <= args.growth_samples <= args.growth_users:
        parser.error("--growth-samples must be within 1..--growth-users")
    if args.only_growth and not args.growth_sizes:
        parser.error("--only-growth needs --growth-sizes")
    if args.duration <= 0:
        parser.error("--duration must be > 0")
    if args.open_loop_rate <= 0 or args.open_loop_seconds < 0:
        parser.error("--open-loop-rate must be > 0 and --open-loop-seconds >= 0")
    return args


# --- the run ------------------------------------------------------------------------------
async def setup(h: Harness) -> None:
    """Database, migrations, and the users of every phase."""
    await h.create_database()
    await asyncio.to_thread(h.migrate)
    args = h.args
    replay = min(args.users, 20)
    open_loop = int(args.open_loop_rate * args.open_loop_seconds)
    everyone = await seed_users(h.db_settings(), args.users + replay + 2 + open_loop)
    h.users, rest = everyone[: args.users], everyone[args.users :]
    h.replay_users, rest = rest[:replay], rest[replay:]
    h.count_users, h.open_loop_users = rest[:2], rest[2:]


async def load_phases(h: Harness, monitor: Any) -> dict[str, Phase]:
    """Against the server subprocess: warm-up, sequential, floor, sessions, callbacks, open
    loop."""
    auth = h.raw_tokens(h.users)
    phases: dict[str, Phase] = {}
    warm = Phase("warm-up")
    await sessions_phase(h, warm, auth, 1, [])
    await floor_phase(h, Phase("warm-up-floor"), 500)
    if any(op.errors for op in warm.ops.values()):
        raise RuntimeError(f"warm-up failed: {errors_of(warm)}")
    h.sequential = await sequential_phase(h, auth)

    floor = phases["floor"] = Phase("floor")
    await h.measured(floor, monitor, floor_phase(h, floor, h.args.floor_requests))

    sessions = phases["sessions"] = Phase("sessions")
    targets: list[Target] = []
    await h.measured(
        sessions, monitor, sessions_phase(h, sessions, auth, h.args.sessions_per_user, targets)
    )
    callbacks = phases["callbacks"] = Phase("callbacks")
    await h.measured(callbacks, monitor, callbacks_phase(h, callbacks, targets))

    if h.open_loop_users:
        open_loop = phases["open-loop"] = Phase("open-loop")
        open_auth = h.raw_tokens(h.open_loop_users)
        await h.measured(
            open_loop, monitor, open_loop_phase(h, open_loop, h.open_loop_users, open_auth)
        )
    return phases


async def measure(h: Harness) -> dict[str, Any]:
    monitor = await asyncpg.connect(asyncpg_dsn(h.database_url), timeout=10)
    phases: dict[str, Phase] = {}
    try:
        pg_version = await monitor.fetchval("SHOW server_version")
        if not h.args.only_growth:
            phases = await load_phases(h, monitor)
    finally:
        await monitor.close()
    # Last against the server: the other phases keep measuring nearly empty tables.
    growth = await growth_phase(h) if h.args.growth_sizes else None
    await asyncio.to_thread(h.stop_server)
    if h.args.only_growth:
        return {
            "pg_version": pg_version,
            "phases": phases,
            "sequential": {},
            "statements": {},
            "origin": {},
            "growth": growth,
        }
    statements = await statements_phase(h)
    origin = await origin_phase(h)
    return {
        "pg_version": pg_version,
        "phases": phases,
        "sequential": h.sequential,
        "statements": statements,
        "origin": origin,
        "growth": growth,
    }


# --- entry point --------------------------------------------------------------------------
def _sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    configure_logging("WARNING", "json")
    h = Harness(args)
    machine = machine_info()
    failed = True
    try:
        print(f"bench: preparing database, {args.users} users, simulator and server …", flush=True)
        asyncio.run(setup(h))
        h.start_processes()
        print(
            f"bench: database {urlsplit(h.database_url).path[1:]}, server {h.server_url}, "
            f"simulator {h.sim_url}; running the phases …",
            flush=True,
        )
        measured = asyncio.run(measure(h))
        results: dict[str, Any] = {
            "timestamp": h.stamp,
            "parameters": {
                **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "db_pool_size": h.pool_size,
                "tavus_slots": h.tavus_slots,
                "database": urlsplit(h.database_url).path[1:],
            },
            "machine": machine,
            "pg_version": measured["pg_version"],
            "phases": {
                name: phase_json(phase, float(args.sim_latency_ms))
                for name, phase in measured["phases"].items()
            },
            "sequential": measured["sequential"],
            "statements": measured["statements"],
            "origin": measured["origin"],
            "growth": measured["growth"],
        }
        results["targets"] = evaluate(results, args)
        results["notes"] = auto_notes(results, args)
        args.results_dir.mkdir(parents=True, exist_ok=True)
        out = args.results_dir / f"{h.stamp}.json"
        out.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print()
        print(render(results, results["targets"]))
        print(f"\nresults: {display(out)}")
        failed = False
        return 0
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping processes and dropping the database", flush=True)
        return 130
    finally:
        h.stop_processes()
        if failed:
            h.keep_logs()
        try:
            asyncio.run(h.drop_database())
        except Exception as exc:  # report, but do not hide the run's own outcome
            print(f"bench: could not drop {h.created_db}: {exc}", file=sys.stderr)
        h.cleanup_workdir()


if __name__ == "__main__":
    sys.exit(main())
