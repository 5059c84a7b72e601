"""The benchmark: PostgreSQL-backed `serve` + a standalone Tavus simulator, driven by
concurrent users through start → callbacks → end. See bench/README.md.

    .venv/bin/python -m bench.run --users 50 --concurrency 50 --sim-latency-ms 200

Phases, in order (every phase bounded in count and in time):

1. set-up: a fresh database `facetoface_bench_<ts>` (dropped at the end), migrated with
   `facetoface migrate`, seeded with users that have complete profiles and a mentor;
   `facetoface tavus-sim` and `facetoface serve` as subprocesses on free ports of 127.0.0.1.
   The simulator's own callbacks are switched off (`callback_drop_probability: 1.0`): the
   benchmark sends callbacks itself, at the rate it chooses.
2. warm-up (not measured): one session per worker, some `GET /healthz`.
3. sequential: one request at a time, batch by batch: unloaded overhead and the server's CPU
   per request of each kind.
4. floor: `GET /healthz` at the same concurrency — what the server, the network stack and this
   client cost for a trivial endpoint.
5. sessions: each worker drives its own users through start → `system.replica_joined`
   callback → end, `--sessions-per-user` times.
6. callbacks: the post-call callbacks of every session of phase 5 (`system.shutdown`,
   `application.transcription_ready`, `application.perception_analysis`, and a duplicate),
   fired concurrently: callbacks per second ingested.
7. statements (sequential, in-process): the app from `create_app`, through a counting proxy
   in front of PostgreSQL, `StatementCounter` on its engine: statements and wire round trips
   of one start, one end and each callback, each in isolation.
8. origin replay (sequential): the origin's database flow for a start beside ours.

Overhead = end-to-end latency minus the simulator's configured latency for the one Tavus call
a start (create) or an end (end) makes; callbacks and the floor make none.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

if __package__ in (None, ""):  # run as `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import httpx

from bench import origin_flow
from bench.pgwire import CountingProxy, classify
from bench.support import (
    Child,
    HttpError,
    OpStats,
    PySpyRecorder,
    RawHttp,
    cpu_delta,
    cpu_snapshot,
    free_port,
    latency_summary,
    process_cpu_seconds,
    summarise_collapsed,
    wait_http_ready,
)
from facetoface.auth.dev_issuer import mint_token
from facetoface.config import Settings
from facetoface.db import Database, StatementCounter, create_engine
from facetoface.models import (
    MentorAvatar,
    OnboardingProfile,
    Profile,
    RitualPreferences,
    UserEmotionalCategory,
    UserGoal,
    UserPersona,
)
from facetoface.observability.logging import configure_logging

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PERSONA_ID = "p0000bench00"
REPLICA_ID = "r0000bench00"

TARGETS = {
    "statements_per_start": 3,
    "statements_per_end": 2,
    "statements_per_callback": 2,
    "overhead_p99_ms": 25.0,
    "callbacks_per_s": 1000.0,
}
TARGET_CONCURRENCY = 50
START_LIMIT = 1_000_000
#: What-if only (--server-loop uvloop): `facetoface serve` unchanged, on uvloop's event loop.
UVLOOP_LAUNCHER = (
    "import asyncio, uvloop; asyncio.set_event_loop_policy(uvloop.EventLoopPolicy()); "
    "from facetoface.cli import main; main()"
)


# --- arguments ----------------------------------------------------------------------------
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
        "--server-loop",
        choices=("service", "uvloop"),
        default="service",
        help="service: `facetoface serve` as shipped (asyncio.run: the standard event loop); "
        "uvloop: a what-if, the same CLI with uvloop's event loop policy installed first",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record the server with py-spy during the sessions and callbacks phases",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.users < args.concurrency:
        parser.error("--users must be >= --concurrency >= 1 (one live session per user)")
    for name in ("sessions_per_user", "callbacks", "floor_requests", "iterations"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.duration <= 0:
        parser.error("--duration must be > 0")
    return args


# --- database -----------------------------------------------------------------------------
def _local_only(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"bench: only databases on 127.0.0.1 are used, not {host!r}")


def asyncpg_dsn(url: str) -> str:
    """`postgresql://…` for asyncpg from any of the URL spellings the service accepts."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def with_host_port(url: str, port: int, extra_query: str = "") -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    auth = f"{user}:{parts.password}@" if parts.password else f"{user}@"
    query = "&".join(q for q in (parts.query, extra_query) if q)
    return urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{port}", query=query))


def complete_user(user_id: uuid.UUID, avatar_id: uuid.UUID, n: int) -> list[Any]:
    """A user as the origin's onboarding leaves one: profile, assessment, preferences, focus
    areas, goals (one no longer active) and a chosen mentor."""
    return [
        Profile(
            id=user_id,
            email=f"bench{n}-{user_id.hex[:8]}@example.com",
            full_name=f"Bench User {n}",
            language="pt",
            timezone="America/Sao_Paulo",
            onboarding_completed=True,
        ),
        OnboardingProfile(
            user_id=user_id,
            disc_type="I",
            enneagram_type=7,
            confidence_score=Decimal("0.85"),
            personality_insights={"strengths": ["enthusiastic", "social"]},
        ),
        RitualPreferences(
            user_id=user_id,
            timing="morning_person",
            duration="quick_focused",
            style="guided_structure",
            voice_id="warm_friend",
            focus_area="Managing work stress",
            session_frequency="daily",
        ),
        UserEmotionalCategory(user_id=user_id, category="stress_management", priority_level=1),
        UserEmotionalCategory(user_id=user_id, category="work_life_balance", priority_level=2),
        UserEmotionalCategory(user_id=user_id, category="personal_growth", priority_level=3),
        UserGoal(
            user_id=user_id,
            goal_text="Meditate 10 minutes every morning",
            goal_type="mindfulness",
            progress_percentage=40,
            target_date=date(2026, 12, 31),
        ),
        UserGoal(
            user_id=user_id,
            goal_text="Set boundaries with my manager",
            goal_type="career",
            smart_goal="Decline one after-hours request a week",
        ),
        UserGoal(user_id=user_id, goal_text="An old goal", status="completed"),
        UserPersona(
            user_id=user_id,
            name="Sage",
            specialization="Stress and balance",
            mentor_avatar_id=avatar_id,
            is_active=True,
        ),
    ]


async def seed_users(settings: Settings, count: int) -> list[uuid.UUID]:
    db = Database(settings)
    users = [uuid.uuid4() for _ in range(count)]
    try:
        async with db.transaction() as session:
            avatar = MentorAvatar(
                name="Sage",
                description="A calm growth mentor",
                thumbnail_url="https://example.com/avatars/sage.png",
                is_premium=False,
                is_active=True,
                tavus_replica_id=REPLICA_ID,
                tavus_persona_id=PERSONA_ID,
            )
            session.add(avatar)
            await session.flush()
            for start in range(0, count, 200):
                batch = users[start : start + 200]
                objects = [complete_user(u, avatar.id, start + i) for i, u in enumerate(batch)]
                session.add_all([o[0] for o in objects])  # profiles before their children
                await session.flush()
                session.add_all([child for o in objects for child in o[1:]])
                await session.flush()
    finally:
        await db.dispose()
    return users


# --- payloads -----------------------------------------------------------------------------
def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


TRANSCRIPT = [
    {"role": "system", "content": "You are «Sage», meeting «Bench User» … (context)"},
    {"role": "assistant", "content": "Hello! I have your context. How was your morning?"},
    {"role": "user", "content": "I slept badly and work is piling up."},
    {"role": "assistant", "content": "Let's connect that to your goal of meditating daily."},
    {"role": "user", "content": "Ok, ten minutes tomorrow at seven."},
    {"role": "assistant", "content": "Great. I'll ask you about it next time."},
]


def callback_event(conversation_id: str, event_type: str) -> dict[str, Any]:
    properties: dict[str, Any]
    if event_type == "system.replica_joined":
        properties = {"replica_id": REPLICA_ID}
    elif event_type == "system.shutdown":
        properties = {"replica_id": REPLICA_ID, "shutdown_reason": "end_conversation_endpoint_hit"}
    elif event_type == "application.transcription_ready":
        t0 = time.time() - 120
        properties = {
            "replica_id": REPLICA_ID,
            "transcript": [TRANSCRIPT[0]]
            + [
                {**turn, "timestamp": round(t0 + 10 * i, 2), "seconds_from_start": 10.0 * i}
                for i, turn in enumerate(TRANSCRIPT[1:], start=1)
            ],
        }
    elif event_type == "application.perception_analysis":
        properties = {
            "replica_id": REPLICA_ID,
            "analysis": "The participant joined from a kitchen, calm, spoke 3 times.",
        }
    else:
        properties = {}
    return {
        "properties": properties,
        "conversation_id": conversation_id,
        "webhook_url": "http://127.0.0.1/hook",
        "event_type": event_type,
        "message_type": "system" if event_type.startswith("system.") else "application",
        "timestamp": _now_iso(),
    }


JSON_HEADER = b"content-type: application/json\r\n"
POST_CALL = (
    "system.shutdown",
    "application.transcription_ready",
    "application.perception_analysis",
)


# --- the run ------------------------------------------------------------------------------
@dataclass
class Target:
    """A finished session: where its callbacks go."""

    session_id: str
    conversation_id: str
    callback_path: str


@dataclass
class Phase:
    name: str
    ops: dict[str, OpStats] = field(default_factory=dict)
    wall_s: float = 0.0
    completed: int = 0
    stopped_early: bool = False
    cpu: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] | None = None

    def op(self, name: str) -> OpStats:
        return self.ops.setdefault(name, OpStats())


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.workdir = Path(tempfile.mkdtemp(prefix="facetoface-bench-"))
        self.created_db: str | None = None
        self.database_url = args.database_url
        self.children: list[Child] = []
        self.sim: Child | None = None
        self.server: Child | None = None
        self.sim_url = ""
        self.server_url = ""
        self.users: list[uuid.UUID] = []
        self.replay_users: list[uuid.UUID] = []
        self.count_users: list[uuid.UUID] = []
        self.settings = Settings(_env_file=None, environment="test", log_level="WARNING")  # type: ignore[call-arg]
        self.pool_size = args.db_pool_size or args.concurrency
        self.tavus_slots = args.tavus_max_concurrency or max(args.concurrency, 16)
        self.notes: list[str] = []
        self.sequential: dict[str, Any] = {}
        self.py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )

    # --- set-up / tear-down ---------------------------------------------------------------
    async def create_database(self) -> None:
        if self.database_url:
            _local_only(self.database_url)
            return
        _local_only(self.args.pg_admin_url)
        name = f"facetoface_bench_{self.stamp.lower()}"
        conn = await asyncpg.connect(asyncpg_dsn(self.args.pg_admin_url), timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.created_db = name
        admin = urlsplit(self.args.pg_admin_url)
        self.database_url = urlunsplit(admin._replace(path=f"/{name}"))

    async def drop_database(self) -> None:
        if self.created_db is None or self.args.keep_db:
            return
        conn = await asyncpg.connect(asyncpg_dsn(self.args.pg_admin_url), timeout=10)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.created_db}" WITH (FORCE)')
        finally:
            await conn.close()

    def _env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATABASE_", "DB_", "TAVUS_", "SUPABASE_", "SESSION_"))
        }
        env.update({"ENVIRONMENT": "test", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"})
        env.update(extra)
        return env

    def migrate(self) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "facetoface", "migrate"],
            env=self._env(DATABASE_URL=self.database_url),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{done.stdout}\n{done.stderr}")

    def start_processes(self) -> None:
        sim_port, server_port = free_port(), free_port()
        self.sim_url = f"http://127.0.0.1:{sim_port}"
        self.server_url = f"http://127.0.0.1:{server_port}"
        self.sim = Child(
            "tavus-sim",
            [sys.executable, "-m", "facetoface", "tavus-sim", "--host", "127.0.0.1"]
            + ["--port", str(sim_port), "--latency-ms", str(self.args.sim_latency_ms)]
            + ["--concurrency-limit", "1000000"],
            self._env(),
            self.workdir / "tavus-sim.log",
            self.workdir,
        ).start()
        self.children.append(self.sim)
        wait_http_ready(self.sim, f"{self.sim_url}/_sim/config")
        launcher = ["-m", "facetoface"]
        if self.args.server_loop == "uvloop":
            launcher = ["-W", "ignore::DeprecationWarning", "-c", UVLOOP_LAUNCHER]
        self.server = Child(
            "serve",
            [sys.executable, *launcher, "serve", "--host", "127.0.0.1", "--port", str(server_port)],
            self._env(
                DATABASE_URL=self.database_url,
                TAVUS_API_KEY="sim-key",
                TAVUS_BASE_URL=f"{self.sim_url}/v2",
                PUBLIC_BASE_URL=self.server_url,
                TAVUS_DEFAULT_PERSONA_ID=PERSONA_ID,
                TAVUS_DEFAULT_REPLICA_ID=REPLICA_ID,
                DB_POOL_SIZE=str(self.pool_size),
                DB_MAX_OVERFLOW=str(self.args.db_max_overflow),
                TAVUS_MAX_CONCURRENT_REQUESTS=str(self.tavus_slots),
                # Each user starts many sessions in minutes: lift the per-user start limit
                # (an abuse guard, not part of what is measured; unknown to older versions).
                SESSION_START_LIMIT=str(START_LIMIT),
            ),
            self.workdir / "serve.log",
            self.workdir,
        ).start()
        self.children.append(self.server)
        wait_http_ready(self.server, f"{self.server_url}/healthz")
        with httpx.Client(base_url=self.sim_url, timeout=10) as sim:
            # The benchmark sends the callbacks itself, at the rate it chooses.
            sim.put("/_sim/config", json={"callback_drop_probability": 1.0}).raise_for_status()

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.stop()

    def stop_processes(self) -> None:
        for child in reversed(self.children):
            child.stop()

    def keep_logs(self) -> None:
        """Copy the subprocess logs next to the results when something went wrong."""
        self.args.results_dir.mkdir(parents=True, exist_ok=True)
        for child in self.children:
            if child.log_path.exists():
                shutil.copy(
                    child.log_path, self.args.results_dir / f"{self.stamp}-{child.name}.log"
                )

    def cleanup_workdir(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- measurement helpers --------------------------------------------------------------
    async def pg_pids(self, monitor: Any) -> list[int]:
        rows = await monitor.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return [int(r["pid"]) for r in rows]

    async def measured(self, phase: Phase, monitor: Any, body: Any) -> None:
        server_pid = self.server.pid if self.server else None
        sim_pid = self.sim.pid if self.sim else None
        recorder = None
        if (
            self.args.profile
            and self.py_spy
            and server_pid
            and phase.name in ("sessions", "callbacks")
        ):
            out = self.args.results_dir / f"{self.stamp}-{phase.name}.pyspy.txt"
            self.args.results_dir.mkdir(parents=True, exist_ok=True)
            recorder = await asyncio.to_thread(PySpyRecorder, self.py_spy, server_pid, out)
        before = cpu_snapshot(server_pid, sim_pid, await self.pg_pids(monitor))
        started = time.monotonic()
        try:
            await body
        finally:
            phase.wall_s = time.monotonic() - started
            after = cpu_snapshot(server_pid, sim_pid, await self.pg_pids(monitor))
            phase.cpu = cpu_delta(before, after)
            if recorder is not None:
                error = await asyncio.to_thread(recorder.stop)
                if error:
                    phase.profile = {"error": error}
                else:
                    phase.profile = summarise_collapsed(recorder.out, keep=_interesting)
                    phase.profile["file"] = _display(recorder.out)

    # --- load phases ----------------------------------------------------------------------
    def tokens(
        self, users: list[uuid.UUID], public_base_url: str
    ) -> dict[uuid.UUID, dict[str, str]]:
        # The issuer the service expects derives from its PUBLIC_BASE_URL.
        settings = self.settings.model_copy(update={"public_base_url": public_base_url})
        return {
            u: {"Authorization": "Bearer " + mint_token(settings, user_id=u, ttl_seconds=14400)}
            for u in users
        }

    def raw_tokens(self, users: list[uuid.UUID]) -> dict[uuid.UUID, bytes]:
        return {
            u: f"authorization: {h['Authorization']}\r\n".encode()
            for u, h in self.tokens(users, self.server_url).items()
        }

    async def timed(
        self,
        op: OpStats,
        conn: RawHttp,
        method: str,
        path: str,
        expect: int,
        body: bytes = b"",
        headers: bytes = b"",
    ) -> Any:
        """One request, timed; the parsed JSON answer, or None (failure recorded)."""
        t0 = time.perf_counter()
        try:
            status, payload = await conn.request(method, path, body, headers)
        except HttpError as exc:
            op.fail("transport", str(exc))
            return None
        elapsed = time.perf_counter() - t0
        if status != expect:
            op.fail(str(status), payload.decode(errors="replace"))
            return None
        op.latencies.append(elapsed)
        return json.loads(payload) if payload else {}

    async def one_session(
        self, conn: RawHttp, sim: RawHttp, auth: bytes, phase: Phase
    ) -> Target | None:
        started = await self.timed(phase.op("start"), conn, "POST", "/v1/sessions", 201, b"", auth)
        if started is None:
            return None
        session_id, conversation_id = started["id"], started["conversation_id"]
        path = await self.callback_path(sim, conversation_id, phase)
        if path is not None:
            event = json.dumps(callback_event(conversation_id, "system.replica_joined")).encode()
            callback = phase.op("callback")
            answer = await self.timed(callback, conn, "POST", path, 200, event, JSON_HEADER)
            if answer is not None:
                callback.outcomes[answer.get("status", "?")] += 1
        # Ended in any case: a session left live would refuse every later start (409).
        end = phase.op("end")
        ended = await self.timed(
            end, conn, "POST", f"/v1/sessions/{session_id}/end", 200, b"", auth
        )
        if ended is None:
            return None
        end.outcomes[ended.get("status", "?")] += 1
        return Target(session_id, conversation_id, path) if path is not None else None

    async def callback_path(self, sim: RawHttp, conversation_id: str, phase: Phase) -> str | None:
        """The session's callback path (with its secret token), which only Tavus knows: the
        simulator tells it (untimed)."""
        for attempt in range(2):  # a GET: safe to retry once on a dropped connection
            try:
                status, payload = await sim.request("GET", f"/_sim/conversations/{conversation_id}")
            except HttpError as exc:
                if attempt == 0:
                    continue
                phase.op("simulator lookup").fail("transport", str(exc))
                return None
            if status != 200:
                phase.op("simulator lookup").fail(str(status), payload.decode(errors="replace"))
                return None
            url: str = json.loads(payload)["callback_url"]
            return url.removeprefix(self.server_url)
        return None

    async def sessions_phase(
        self, phase: Phase, auth: dict[uuid.UUID, bytes], rounds: int, targets: list[Target]
    ) -> None:
        concurrency = self.args.concurrency
        deadline = time.monotonic() + self.args.duration
        server_port = urlsplit(self.server_url).port or 80
        sim_port = urlsplit(self.sim_url).port or 80

        async def worker(w: int) -> None:
            conn, sim = RawHttp(server_port), RawHttp(sim_port)
            try:
                for _ in range(rounds):
                    for user in self.users[w::concurrency]:
                        if time.monotonic() > deadline:
                            phase.stopped_early = True
                            return
                        target = await self.one_session(conn, sim, auth[user], phase)
                        if target is not None:
                            targets.append(target)
                            phase.completed += 1
            finally:
                conn.close()
                sim.close()

        await asyncio.gather(*(worker(w) for w in range(concurrency)))

    async def floor_phase(self, phase: Phase, total: int) -> None:
        op = phase.op("healthz")
        deadline = time.monotonic() + self.args.duration
        counter = itertools.count()
        port = urlsplit(self.server_url).port or 80

        async def worker() -> None:
            conn = RawHttp(port)
            try:
                while next(counter) < total:
                    if time.monotonic() > deadline:
                        phase.stopped_early = True
                        return
                    if await self.timed(op, conn, "GET", "/healthz", 200) is not None:
                        phase.completed += 1
            finally:
                conn.close()

        await asyncio.gather(*(worker() for _ in range(self.args.concurrency)))

    async def callbacks_phase(self, phase: Phase, targets: list[Target]) -> None:
        # Post-call callbacks of every finished session, event type by event type (so that
        # concurrent requests hit different sessions, as Tavus's would), then one duplicate
        # each; further rounds, if asked for, are duplicates too.
        kinds = [*POST_CALL, "duplicate"]
        plan = [(kind, t) for kind in kinds for t in targets]
        if not plan:
            return
        plan = list(itertools.islice(itertools.cycle(plan), self.args.callbacks))
        payloads = [
            (
                t.callback_path,
                json.dumps(
                    callback_event(t.conversation_id, POST_CALL[0] if kind == "duplicate" else kind)
                ).encode(),
            )
            for kind, t in plan
        ]
        op = phase.op("callback")
        deadline = time.monotonic() + self.args.duration
        index = itertools.count()
        port = urlsplit(self.server_url).port or 80

        async def worker() -> None:
            conn = RawHttp(port)
            try:
                while (i := next(index)) < len(payloads):
                    if time.monotonic() > deadline:
                        phase.stopped_early = True
                        return
                    path, body = payloads[i]
                    answer = await self.timed(op, conn, "POST", path, 200, body, JSON_HEADER)
                    if answer is not None:
                        op.outcomes[answer.get("status", "?")] += 1
                        phase.completed += 1
            finally:
                conn.close()

        await asyncio.gather(*(worker() for _ in range(self.args.concurrency)))

    async def sequential_phase(self, auth: dict[uuid.UUID, bytes]) -> dict[str, Any]:
        """One request at a time, batch by batch: unloaded latency and server CPU per request
        (the CPU clock ticks in 10 ms, so it is read around a whole batch)."""
        assert self.server is not None
        server_pid = self.server.pid
        conn = RawHttp(urlsplit(self.server_url).port or 80)
        sim = RawHttp(urlsplit(self.sim_url).port or 80)
        users = self.users[: min(len(self.users), 25)]
        out: dict[str, Any] = {}
        scratch = Phase("sequential")

        async def batch(name: str, requests: list[tuple[str, str, int, bytes, bytes]]) -> list[Any]:
            op = OpStats()
            answers = []
            before = process_cpu_seconds(server_pid)
            for method, path, expect, body, headers in requests:
                answers.append(await self.timed(op, conn, method, path, expect, body, headers))
            after = process_cpu_seconds(server_pid)
            tavus = float(self.args.sim_latency_ms) if name in ("start", "end") else 0.0
            out[name] = {
                "overhead_ms": latency_summary(op.latencies, tavus),
                "server_cpu_ms": round(1000 * ((after or 0) - (before or 0)) / len(requests), 2),
                "errors": dict(op.errors),
                "first_error": op.first_error,
            }
            return answers

        try:
            await batch("healthz", [("GET", "/healthz", 200, b"", b"")] * len(users))
            started = await batch(
                "start", [("POST", "/v1/sessions", 201, b"", auth[u]) for u in users]
            )
            live = [(u, s) for u, s in zip(users, started, strict=True) if s is not None]
            paths = [await self.callback_path(sim, s["conversation_id"], scratch) for _, s in live]
            calls = [(p, s["conversation_id"]) for p, (_, s) in zip(paths, live, strict=True) if p]

            def events(kind: str) -> list[tuple[str, str, int, bytes, bytes]]:
                return [
                    ("POST", p, 200, json.dumps(callback_event(c, kind)).encode(), JSON_HEADER)
                    for p, c in calls
                ]

            await batch("callback (replica_joined)", events("system.replica_joined"))
            await batch(
                "end",
                [("POST", f"/v1/sessions/{s['id']}/end", 200, b"", auth[u]) for u, s in live],
            )
            for kind in POST_CALL:
                await batch(f"callback ({kind.split('.', 1)[1]})", events(kind))
            await batch("callback (duplicate)", events(POST_CALL[0]))
        finally:
            conn.close()
            sim.close()
        return out

    async def load_phases(self, monitor: Any) -> dict[str, Phase]:
        auth = self.raw_tokens(self.users)
        phases: dict[str, Phase] = {}
        warm = Phase("warm-up")
        await self.sessions_phase(warm, auth, 1, [])
        await self.floor_phase(Phase("warm-up-floor"), 500)
        if any(op.errors for op in warm.ops.values()):
            raise RuntimeError(f"warm-up failed: {_errors(warm)}")
        self.sequential = await self.sequential_phase(auth)

        floor = phases["floor"] = Phase("floor")
        await self.measured(floor, monitor, self.floor_phase(floor, self.args.floor_requests))

        sessions = phases["sessions"] = Phase("sessions")
        targets: list[Target] = []
        await self.measured(
            sessions,
            monitor,
            self.sessions_phase(sessions, auth, self.args.sessions_per_user, targets),
        )
        callbacks = phases["callbacks"] = Phase("callbacks")
        await self.measured(callbacks, monitor, self.callbacks_phase(callbacks, targets))
        return phases

    # --- statements (sequential, in-process) ----------------------------------------------
    async def statements_phase(self) -> dict[str, Any]:
        from facetoface.app import create_app

        pg = urlsplit(self.database_url)
        proxy = await CountingProxy("127.0.0.1", pg.port or 5432).start()
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            environment="test",
            log_level="WARNING",
            database_url=with_host_port(self.database_url, proxy.port, "ssl=disable"),
            tavus_api_key="sim-key",
            tavus_base_url=f"{self.sim_url}/v2",
            public_base_url="http://bench.invalid",
            tavus_default_persona_id=PERSONA_ID,
            tavus_default_replica_id=REPLICA_ID,
            db_pool_size=2,
            session_start_limit=START_LIMIT,
        )
        app = create_app(settings)
        samples: dict[str, list[dict[str, Any]]] = {}
        iterations = min(self.args.iterations, 10)
        user = self.count_users[0]
        headers = self.tokens([user], "http://bench.invalid")[user]
        async with httpx.AsyncClient(base_url=self.sim_url, timeout=30) as sim:
            # No Tavus latency needed to count; restored afterwards.
            (await sim.put("/_sim/config", json={"latency_ms": 0})).raise_for_status()
            try:
                async with (
                    app.router.lifespan_context(app),
                    httpx.AsyncClient(
                        transport=httpx.ASGITransport(app=app), base_url="http://bench.invalid"
                    ) as client,
                ):
                    counter = StatementCounter(app.state.db.engine)
                    try:
                        for i in range(iterations + 1):  # the first cycle warms caches
                            cycle = await self._count_cycle(client, sim, headers, counter, proxy)
                            if i > 0:
                                for op, sample in cycle.items():
                                    samples.setdefault(op, []).append(sample)
                    finally:
                        counter.close()
            finally:
                restore = {"latency_ms": self.args.sim_latency_ms}
                (await sim.put("/_sim/config", json=restore)).raise_for_status()
                await proxy.close()
        return {op: _count_summary(values) for op, values in samples.items()}

    async def _count_cycle(
        self,
        client: httpx.AsyncClient,
        sim: httpx.AsyncClient,
        headers: dict[str, str],
        counter: StatementCounter,
        proxy: CountingProxy,
    ) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}

        async def count(op: str, request: Any, expect: int) -> httpx.Response:
            counter.reset()
            identity_before = getattr(counter, "identity_count", 0)
            mark = proxy.log.mark()
            response: httpx.Response = await request
            if response.status_code != expect:
                raise RuntimeError(f"{op}: HTTP {response.status_code}: {response.text[:300]}")
            trips = proxy.log.since(mark)
            out[op] = {
                "statements": counter.count,
                # The per-transaction identity statement of row-level security, when the
                # service has one: StatementCounter counts it apart.
                "identity_statements": getattr(counter, "identity_count", 0) - identity_before,
                "statement_texts": [" ".join(s.split())[:200] for s in counter.statements],
                "round_trips": classify(trips),
                "round_trip_texts": [t.label() for t in trips],
            }
            return response

        started = await count("start", client.post("/v1/sessions", headers=headers), 201)
        body = started.json()
        conversation = (await sim.get(f"/_sim/conversations/{body['conversation_id']}")).json()
        path = conversation["callback_url"].removeprefix("http://bench.invalid")
        cid = body["conversation_id"]
        await count(
            "callback (replica_joined)",
            client.post(path, json=callback_event(cid, "system.replica_joined")),
            200,
        )
        await count("end", client.post(f"/v1/sessions/{body['id']}/end", headers=headers), 200)
        for kind in POST_CALL:
            short = kind.split(".", 1)[1]
            await count(
                f"callback ({short})", client.post(path, json=callback_event(cid, kind)), 200
            )
        await count(
            "callback (duplicate)", client.post(path, json=callback_event(cid, POST_CALL[0])), 200
        )
        return out

    # --- origin replay --------------------------------------------------------------------
    async def origin_phase(self) -> dict[str, Any]:
        dsn = asyncpg_dsn(self.database_url)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, environment="test", log_level="WARNING", database_url=self.database_url
        )
        ours = Database(settings)
        # What-if, in bench/ only: the same engine without the pool's pre-ping.
        no_ping_engine = create_engine(settings)
        no_ping_engine.pool._pre_ping = False  # type: ignore[attr-defined]
        ours_no_ping = Database(settings, engine=no_ping_engine)
        origin_conn = await asyncpg.connect(dsn, timeout=10)
        cleanup = await asyncpg.connect(dsn, timeout=10)
        try:
            common = {
                "origin_conn": origin_conn,
                "ours": ours,
                "ours_no_ping": ours_no_ping,
                "cleanup_conn": cleanup,
                "users": self.replay_users,
            }
            await origin_flow.compare(**common, iterations=5, time_budget_s=30)  # warm-up
            result = await origin_flow.compare(
                **common, iterations=self.args.iterations, time_budget_s=self.args.duration
            )
            result["round_trips"] = await self._origin_round_trips(cleanup)
        finally:
            await origin_conn.close()
            await cleanup.close()
            await ours.dispose()
            await ours_no_ping.dispose()
        origin, our = result["origin"], result["ours"]
        result["ratio_p50_origin_over_ours"] = round(origin["p50_ms"] / our["p50_ms"], 2)
        result["ratio_mean_origin_over_ours"] = round(origin["mean_ms"] / our["mean_ms"], 2)
        result["ratio_statements_origin_over_ours"] = round(
            origin["statements"] / max(our["statements"] or 1, 1), 2
        )
        return result

    async def _origin_round_trips(self, cleanup: Any) -> dict[str, Any]:
        """Wire round trips of one warm start of each flow, through the counting proxy."""
        pg = urlsplit(self.database_url)
        proxy = await CountingProxy("127.0.0.1", pg.port or 5432).start()
        url = with_host_port(self.database_url, proxy.port, "ssl=disable")
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, environment="test", log_level="WARNING", database_url=url
        )
        ours = Database(settings)
        no_ping_engine = create_engine(settings)
        no_ping_engine.pool._pre_ping = False  # type: ignore[attr-defined]
        ours_no_ping = Database(settings, engine=no_ping_engine)
        conn = await asyncpg.connect(
            asyncpg_dsn(with_host_port(self.database_url, proxy.port)), timeout=10, ssl=False
        )
        user = self.replay_users[0]
        out: dict[str, Any] = {}
        try:
            for name, run in (
                ("origin", lambda: origin_flow.origin_start(conn, user)),
                ("ours", lambda: origin_flow.our_start(ours, user)),
                ("ours_no_pre_ping", lambda: origin_flow.our_start(ours_no_ping, user)),
            ):
                for attempt in range(2):  # the first one prepares statements: not counted
                    mark = proxy.log.mark()
                    written = await run()
                    trips = proxy.log.since(mark)
                    await origin_flow.delete_written(cleanup, [written])
                    if attempt == 1:
                        out[name] = classify(trips)
                        out[name + "_texts"] = [t.label() for t in trips]
        finally:
            await conn.close()
            await ours.dispose()
            await ours_no_ping.dispose()
            await proxy.close()
        return out

    # --- the whole run --------------------------------------------------------------------
    async def setup(self) -> None:
        await self.create_database()
        await asyncio.to_thread(self.migrate)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, environment="test", log_level="WARNING", database_url=self.database_url
        )
        extra = min(self.args.users, 20)
        everyone = await seed_users(settings, self.args.users + extra + 2)
        self.users = everyone[: self.args.users]
        self.replay_users = everyone[self.args.users : self.args.users + extra]
        self.count_users = everyone[self.args.users + extra :]

    async def measure(self) -> dict[str, Any]:
        monitor = await asyncpg.connect(asyncpg_dsn(self.database_url), timeout=10)
        try:
            pg_version = await monitor.fetchval("SHOW server_version")
            phases = await self.load_phases(monitor)
        finally:
            await monitor.close()
        await asyncio.to_thread(self.stop_server)
        statements = await self.statements_phase()
        origin = await self.origin_phase()
        return {
            "pg_version": pg_version,
            "phases": phases,
            "sequential": self.sequential,
            "statements": statements,
            "origin": origin,
        }


def _display(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _interesting(frame: str) -> bool:
    return any(
        key in frame
        for key in ("facetoface/", "sqlalchemy/", "asyncpg/", "starlette/", "fastapi/", "pydantic")
    )


def _errors(phase: Phase) -> dict[str, Any]:
    return {
        name: {"errors": dict(op.errors), "first": op.first_error}
        for name, op in phase.ops.items()
        if op.errors
    }


def _count_summary(values: list[dict[str, Any]]) -> dict[str, Any]:
    counts = [v["statements"] for v in values]
    trips = [v["round_trips"]["total"] for v in values]
    typical = Counter(counts).most_common(1)[0][0]
    sample = next(v for v in values if v["statements"] == typical)
    return {
        "samples": len(values),
        "statements": typical,
        "identity_statements": sample["identity_statements"],
        "statements_min": min(counts),
        "statements_max": max(counts),
        "round_trips": Counter(trips).most_common(1)[0][0],
        "round_trips_max": max(trips),
        "round_trip_breakdown": sample["round_trips"],
        "statement_texts": sample["statement_texts"],
        "round_trip_texts": sample["round_trip_texts"],
    }


# --- report -------------------------------------------------------------------------------
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
    }


def evaluate(results: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    statements = results["statements"]
    sessions = results["phases"]["sessions"]["ops"]
    callbacks = results["phases"]["callbacks"]
    per_callback = max(v["statements"] for k, v in statements.items() if k.startswith("callback"))
    rows: list[dict[str, Any]] = []

    def row(name: str, value: float | None, target: float, higher_is_better: bool = False) -> None:
        if value is None:
            rows.append({"target": name, "value": None, "limit": target, "status": "N/A"})
            return
        ok = value >= target if higher_is_better else value <= target
        gap = (target - value) if higher_is_better else (value - target)
        rows.append(
            {
                "target": name,
                "value": value,
                "limit": target,
                "status": "PASS" if ok else "MISS",
                "gap": None if ok else round(gap, 2),
                "gap_pct": None if ok else round(100 * gap / target, 1),
            }
        )

    row(
        "statements per start",
        statements["start"]["statements_max"],
        TARGETS["statements_per_start"],
    )
    row("statements per end", statements["end"]["statements_max"], TARGETS["statements_per_end"])
    row("statements per callback (worst type)", per_callback, TARGETS["statements_per_callback"])
    suffix = f" @ {args.concurrency} users"
    for op in ("start", "end", "callback"):
        p99 = sessions.get(op, {}).get("overhead_ms", {}).get("p99")
        row(f"overhead p99 {op} (ms){suffix}", p99, TARGETS["overhead_p99_ms"])
    row("callbacks ingested per s", callbacks["per_s"], TARGETS["callbacks_per_s"], True)
    if args.concurrency != TARGET_CONCURRENCY:
        for r in rows:
            if r["target"].startswith("overhead"):
                r["note"] = f"target is stated at {TARGET_CONCURRENCY} users"
    return rows


def _fmt(value: Any, width: int = 8) -> str:
    if value is None:
        return "-".rjust(width)
    if isinstance(value, float):
        return f"{value:.2f}".rjust(width) if abs(value) < 1000 else f"{value:.0f}".rjust(width)
    return str(value).rjust(width)


def render(results: dict[str, Any], targets: list[dict[str, Any]]) -> str:
    p = results["parameters"]
    lines = [
        f"facetoface benchmark  {results['timestamp']}  "
        f"({results['machine']['cpus']} CPUs, {results['machine']['cpu_model']}, "
        f"PostgreSQL {results['pg_version']})",
        f"users={p['users']} concurrency={p['concurrency']} sessions/user={p['sessions_per_user']} "
        f"sim latency={p['sim_latency_ms']} ms  callbacks={p['callbacks']}  "
        f"server pool={p['db_pool_size']}+{p['db_max_overflow']} tavus slots={p['tavus_slots']}",
        "",
        "Latency under load (ms; overhead = end-to-end minus the simulator's latency for the one "
        "Tavus call of a start or an end)",
        f"{'phase/op':<22}{'n':>7}{'err':>5}{'e2e p50':>9}{'e2e p99':>9}"
        f"{'ovh p50':>9}{'ovh p95':>9}{'ovh p99':>9}{'ovh max':>9}",
    ]
    for phase_name in ("floor", "sessions", "callbacks"):
        phase = results["phases"][phase_name]
        for op_name, op in phase["ops"].items():
            e2e, ovh = op["e2e_ms"], op["overhead_ms"]
            lines.append(
                f"{phase_name + '/' + op_name:<22}{e2e.get('n', 0):>7}"
                f"{sum(op['errors'].values()):>5}"
                f"{_fmt(e2e.get('p50'), 9)}{_fmt(e2e.get('p99'), 9)}{_fmt(ovh.get('p50'), 9)}"
                f"{_fmt(ovh.get('p95'), 9)}{_fmt(ovh.get('p99'), 9)}{_fmt(ovh.get('max'), 9)}"
            )
    lines += [
        "",
        "Throughput and CPU (CPU s over the phase; server ms per unit = server CPU / units)",
        f"{'phase':<11}{'units':>7}{'wall s':>8}{'units/s':>9}{'srv ms/u':>9}{'srv cores':>10}"
        f"{'sim s':>7}{'bench s':>8}{'pg s':>7}{'other s':>8}{'machine %':>10}",
    ]
    unit = {"floor": "requests", "sessions": "sessions", "callbacks": "callbacks"}
    for phase_name in ("floor", "sessions", "callbacks"):
        phase = results["phases"][phase_name]
        cpu = phase["cpu"]
        lines.append(
            f"{phase_name:<11}{phase['completed']:>7}{_fmt(phase['wall_s'], 8)}"
            f"{_fmt(phase['per_s'], 9)}{_fmt(phase['server_cpu_ms_per_unit'], 9)}"
            f"{_fmt(phase['server_cpu_cores'], 10)}{_fmt(cpu.get('sim_s'), 7)}"
            f"{_fmt(cpu.get('bench_s'), 8)}{_fmt(cpu.get('postgres_s'), 7)}"
            f"{_fmt(cpu.get('other_s'), 8)}"
            f"{_fmt(cpu.get('machine_busy_pct'), 10)}"
            + ("  (stopped at --duration)" if phase["stopped_early"] else "")
            + f"  [{unit[phase_name]}]"
        )
    sessions_cpu = results["phases"]["sessions"]["server_cpu_ms_per_unit"]
    floor_cpu = results["phases"]["floor"]["server_cpu_ms_per_unit"]
    lines.append(
        f"CPU seconds per session (server): {_fmt((sessions_cpu or 0) / 1000, 0)}  "
        f"floor per request: {_fmt((floor_cpu or 0) / 1000, 0)}"
    )
    lines += [
        "",
        "Per operation, one request at a time (statements = StatementCounter on the app's "
        "engine; round trips = seen on the wire; overhead and server CPU against the server)",
        f"{'operation':<32}{'stmts':>6}{'trips':>6}{'ovh p50':>9}{'ovh p95':>9}{'srv CPU ms':>11}"
        "  round trips by kind",
    ]
    sequential = results.get("sequential", {})
    names = list(sequential) + [n for n in results["statements"] if n not in sequential]
    for op in names:
        st = results["statements"].get(op, {})
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
    if any(st.get("identity_statements") for st in results["statements"].values()):
        lines.append(
            "  n+m: m identity statements (row-level security: the transaction's role and claims, "
            "one per transaction), which StatementCounter counts apart from the n"
        )
    o = results["origin"]
    rt = o.get("round_trips", {})
    lines += [
        "",
        "Start, database only: origin's flow replayed vs ours (sequential, same database)",
        f"{'flow':<30}{'stmts':>6}{'trips':>6}{'mean ms':>9}{'p50 ms':>8}{'p95 ms':>8}"
        f"{'p99 ms':>8}{'cpu ms':>8}",
    ]
    for name, label in (
        ("origin", "origin (5 reads + 2 inserts)"),
        ("ours", "ours (2 transactions)"),
        ("ours_no_pre_ping", "ours without pool pre-ping*"),
    ):
        f = o[name]
        lines.append(
            f"{label:<30}{_fmt(f['statements'], 6)}{_fmt(rt.get(name, {}).get('total'), 6)}"
            f"{_fmt(f['mean_ms'], 9)}{_fmt(f['p50_ms'], 8)}{_fmt(f['p95_ms'], 8)}"
            f"{_fmt(f['p99_ms'], 8)}{_fmt(f.get('client_cpu_ms'), 8)}"
        )
    lines.append(
        f"ratio origin/ours: p50 {o['ratio_p50_origin_over_ours']}x, mean "
        f"{o['ratio_mean_origin_over_ours']}x, statements {o['ratio_statements_origin_over_ours']}x"
        "   (* a what-if measured in bench/ only; cpu ms = this client's CPU per start: "
        "driver and SQLAlchemy)"
    )
    lines += ["", "Targets"]
    for t in targets:
        gap = ""
        if t["status"] == "MISS":
            gap = f"  missed by {t['gap']} ({t['gap_pct']}%)"
        note = f"  [{t['note']}]" if t.get("note") else ""
        lines.append(
            f"  {t['status']:<5}{t['target']:<44}{_fmt(t['value'], 9)}  "
            f"limit {t['limit']}{gap}{note}"
        )
    for phase_name in ("sessions", "callbacks"):
        prof = results["phases"][phase_name].get("profile")
        if prof and "self_by_package" in prof:
            lines += [
                "",
                f"py-spy profile of the server, {phase_name} phase ({prof['samples']} samples)",
            ]
            lines.append(
                "  self time by package: "
                + ", ".join(f"{e['frame']} {e['pct']}%" for e in prof["self_by_package"])
            )
            lines.append("  top self frames:")
            lines += [f"    {e['pct']:>5}%  {e['frame']}" for e in prof["self"][:10]]
        elif prof:
            lines += ["", f"py-spy ({phase_name}): {prof.get('error')}"]
    if results["notes"]:
        lines += ["", "Notes"] + [f"- {n}" for n in results["notes"]]
    return "\n".join(lines)


def auto_notes(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    notes: list[str] = []
    for name in ("floor", "sessions", "callbacks"):
        phase = results["phases"][name]
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
    if args.sim_latency_ms and args.concurrency and args.sessions_per_user:
        ideal = args.concurrency / (2 * args.sim_latency_ms / 1000)
        got = results["phases"]["sessions"]["per_s"]
        notes.append(
            f"sessions/s is bounded by the simulated Tavus: {args.concurrency} users x one "
            f"session per 2 x {args.sim_latency_ms} ms = {ideal:.0f}/s at zero overhead; "
            f"got {got}/s"
        )
    return notes


# --- entry point --------------------------------------------------------------------------
def _sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    configure_logging("WARNING", "json")
    bench = Bench(args)
    machine = machine_info()
    failed = True
    try:
        print(f"bench: preparing database, {args.users} users, simulator and server …", flush=True)
        asyncio.run(bench.setup())
        bench.start_processes()
        print(
            f"bench: database {urlsplit(bench.database_url).path[1:]}, server {bench.server_url}, "
            f"simulator {bench.sim_url}; running the phases …",
            flush=True,
        )
        measured = asyncio.run(bench.measure())
        results: dict[str, Any] = {
            "timestamp": bench.stamp,
            "parameters": {
                **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "db_pool_size": bench.pool_size,
                "tavus_slots": bench.tavus_slots,
                "database": urlsplit(bench.database_url).path[1:],
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
        }
        results["targets"] = evaluate(results, args)
        results["notes"] = auto_notes(results, args)
        args.results_dir.mkdir(parents=True, exist_ok=True)
        out = args.results_dir / f"{bench.stamp}.json"
        out.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print()
        print(render(results, results["targets"]))
        print(f"\nresults: {_display(out)}")
        failed = False
        return 0
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping processes and dropping the database", flush=True)
        return 130
    finally:
        bench.stop_processes()
        if failed:
            bench.keep_logs()
        try:
            asyncio.run(bench.drop_database())
        except Exception as exc:  # report, but do not hide the run's own outcome
            print(f"bench: could not drop {bench.created_db}: {exc}", file=sys.stderr)
        bench.cleanup_workdir()


if __name__ == "__main__":
    sys.exit(main())
