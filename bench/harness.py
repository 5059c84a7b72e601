"""The benchmark's harness: its database, the simulator and server subprocesses, measured
phases, tokens and timed requests. The phases (bench/phases/) use it; bench/run.py drives it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.payloads import PERSONA_ID, REPLICA_ID
from bench.support import (
    Child,
    HttpError,
    OpStats,
    PySpyRecorder,
    RawHttp,
    cpu_delta,
    cpu_snapshot,
    free_port,
    parse_server_timing,
    summarise_collapsed,
    wait_http_ready,
)
from facetoface.auth.dev_issuer import mint_token
from facetoface.config import Settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
#: Each user starts many sessions in minutes: the per-user start limit (an abuse guard, not
#: part of what is measured) is lifted.
START_LIMIT = 1_000_000
#: The HS256 secret the benchmark's server and its token minting share (only development
#: trusts the development issuer's published secret; the benchmark runs as `test`).
BENCH_JWT_SECRET = "facetoface-bench-secret-0123456789abcdef"
#: The key of the callback URLs' MACs: the bench's processes and in-process apps are one
#: deployment (required outside development).
BENCH_CALLBACK_SIGNING_SECRET = "bench-callback-signing-secret-0123456789abcdef"


# --- URLs ---------------------------------------------------------------------------------
def local_only(url: str) -> None:
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


def display(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _interesting(frame: str) -> bool:
    return any(
        key in frame
        for key in (
            "facetoface/",
            "sqlalchemy/",
            "asyncpg/",
            "psycopg",
            "starlette/",
            "fastapi/",
            "pydantic",
        )
    )


# --- what phases record -------------------------------------------------------------------
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
    #: Anything else the phase reports (the open-loop phase's schedule keeping).
    extra: dict[str, Any] = field(default_factory=dict)

    def op(self, name: str) -> OpStats:
        return self.ops.setdefault(name, OpStats())


def errors_of(phase: Phase) -> dict[str, Any]:
    return {
        name: {"errors": dict(op.errors), "first": op.first_error}
        for name, op in phase.ops.items()
        if op.errors
    }


class Harness:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.workdir = Path(tempfile.mkdtemp(prefix="facetoface-bench-"))
        self.created_db: str | None = None
        self.database_url: str = args.database_url
        self.children: list[Child] = []
        self.sim: Child | None = None
        self.server: Child | None = None
        self.sim_url = ""
        self.server_url = ""
        #: Seeded users, by purpose: the closed-loop phases, the origin replay, the in-process
        #: statement count, the open-loop phase (one each arrival).
        self.users: list[uuid.UUID] = []
        self.replay_users: list[uuid.UUID] = []
        self.count_users: list[uuid.UUID] = []
        self.open_loop_users: list[uuid.UUID] = []
        self.sequential: dict[str, Any] = {}
        self.settings = Settings(
            _env_file=None,
            environment="test",
            log_level="WARNING",
            supabase_jwt_secret=BENCH_JWT_SECRET,
            callback_signing_secret=BENCH_CALLBACK_SIGNING_SECRET,
        )
        self.pool_size = args.db_pool_size or args.concurrency
        self.tavus_slots = args.tavus_max_concurrency or max(args.concurrency, 16)
        self.py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )

    @property
    def server_port(self) -> int:
        return urlsplit(self.server_url).port or 80

    @property
    def sim_port(self) -> int:
        return urlsplit(self.sim_url).port or 80

    def db_settings(self, database_url: str | None = None, **extra: Any) -> Settings:
        """Settings for an in-process client of the benchmark's database."""
        return Settings(
            _env_file=None,
            environment="test",
            log_level="WARNING",
            database_url=database_url or self.database_url,
            supabase_jwt_secret=BENCH_JWT_SECRET,
            callback_signing_secret=BENCH_CALLBACK_SIGNING_SECRET,
            **extra,
        )

    # --- set-up / tear-down ---------------------------------------------------------------
    async def create_database(self) -> None:
        if self.database_url:
            local_only(self.database_url)
            return
        local_only(self.args.pg_admin_url)
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
        # Required outside development; the bench's processes are one deployment.
        env.setdefault("CALLBACK_SIGNING_SECRET", BENCH_CALLBACK_SIGNING_SECRET)
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
                SESSION_START_LIMIT=str(START_LIMIT),
                SUPABASE_JWT_SECRET=BENCH_JWT_SECRET,
            ),
            self.workdir / "serve.log",
            self.workdir,
        ).start()
        self.children.append(self.server)
        wait_http_ready(self.server, f"{self.server_url}/healthz")
        with httpx.Client(base_url=self.sim_url, timeout=10) as sim:
            # The benchmark sends the callbacks itself, at the rate it chooses.
            sim.put("/_sim/config", json={"callback_drop_probability": 1.0}).raise_for_status()

    @contextlib.asynccontextmanager
    async def sim_latency(self, latency_ms: int) -> AsyncIterator[httpx.AsyncClient]:
        """The simulator at another Tavus latency for a while (restored afterwards); yields a
        client of its API."""
        async with httpx.AsyncClient(base_url=self.sim_url, timeout=30) as sim:
            (await sim.put("/_sim/config", json={"latency_ms": latency_ms})).raise_for_status()
            try:
                yield sim
            finally:
                restore = {"latency_ms": self.args.sim_latency_ms}
                (await sim.put("/_sim/config", json=restore)).raise_for_status()

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

    async def measured(self, phase: Phase, monitor: Any, body: Awaitable[Any]) -> None:
        """Run `body`, recording the phase's wall time, the CPU of every party and (with
        --profile) a py-spy profile of the server."""
        server_pid = self.server.pid if self.server else None
        sim_pid = self.sim.pid if self.sim else None
        recorder = None
        if self.args.profile and self.py_spy and server_pid and phase.name in PROFILED:
            out = self.args.results_dir / f"{self.stamp}-{phase.name}.pyspy.txt"
            self.args.results_dir.mkdir(parents=True, exist_ok=True)
            recorder = await asyncio.to_thread(PySpyRecorder, self.py_spy, server_pid, out)
        lag_before = await self.loop_lag()
        wal_before = await wal_counters(monitor)
        before = cpu_snapshot(server_pid, sim_pid, await self.pg_pids(monitor))
        started = time.monotonic()
        try:
            await body
        finally:
            phase.wall_s = time.monotonic() - started
            after = cpu_snapshot(server_pid, sim_pid, await self.pg_pids(monitor))
            phase.cpu = cpu_delta(before, after)
            phase.extra["loop_lag"] = lag_delta(lag_before, await self.loop_lag())
            phase.extra["wal"] = wal_delta(wal_before, await wal_counters(monitor))
            if recorder is not None:
                error = await asyncio.to_thread(recorder.stop)
                if error:
                    phase.profile = {"error": error}
                else:
                    phase.profile = summarise_collapsed(recorder.out, keep=_interesting)
                    phase.profile["file"] = display(recorder.out)

    async def loop_lag(self) -> dict[str, float]:
        """The server's `facetoface_event_loop_lag_seconds` histogram now (cumulative bucket
        counts by upper bound, `sum`, `count`); {} when it cannot be read."""
        if not self.server_url:
            return {}
        try:
            async with httpx.AsyncClient(base_url=self.server_url, timeout=10) as client:
                text = (await client.get("/metrics")).text
        except httpx.HTTPError:
            return {}
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            if family.name != "facetoface_event_loop_lag_seconds":
                continue
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    out[sample.labels["le"]] = sample.value
                elif sample.name.endswith(("_sum", "_count")):
                    out[sample.name.rsplit("_", 1)[1]] = sample.value
        return out

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
        """`authorization:` header lines for RawHttp, for the server under test."""
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
        op.spans.append(parse_server_timing(conn.server_timing))
        return json.loads(payload) if payload else {}

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


async def wal_counters(monitor: Any) -> dict[str, int]:
    """The server's commits (this database's) and WAL flushes (the whole server's) so far."""
    row = await monitor.fetchrow(
        "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()) "
        "AS commits, wal_sync AS syncs, wal_write AS writes FROM pg_stat_wal"
    )
    return {k: int(row[k]) for k in ("commits", "syncs", "writes")}


def wal_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, Any]:
    """Commits and WAL flushes during a phase: PostgreSQL's own group commit shows as more
    than one commit per flush (the question for issue 20's group commit at our end)."""
    delta: dict[str, Any] = {k: after[k] - before[k] for k in before}
    delta["commits_per_sync"] = (
        round(delta["commits"] / delta["syncs"], 2) if delta["syncs"] else None
    )
    return delta


def lag_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, Any] | None:
    """The loop-lag samples taken between two scrapes: how many, the share over 10 and 50 ms
    (histogram bucket bounds), the mean."""
    count = after.get("count", 0.0) - before.get("count", 0.0)
    if not after or count <= 0:
        return None

    def over(bound: str) -> float:
        within = after.get(bound, 0.0) - before.get(bound, 0.0)
        return round(100 * (count - within) / count, 2)

    return {
        "samples": int(count),
        "over_10ms_pct": over("0.01"),
        "over_50ms_pct": over("0.05"),
        "mean_ms": round(1000 * (after.get("sum", 0.0) - before.get("sum", 0.0)) / count, 2),
    }


#: Phases `--profile` records with py-spy.
PROFILED = ("sessions", "callbacks", "open-loop")
