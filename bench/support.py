"""Plumbing of the benchmark: subprocesses, CPU clocks, percentiles, a py-spy recorder."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- ports and processes ------------------------------------------------------------------
def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1 (bind to port 0, read it, release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Child:
    """A subprocess with its output in a log file; stopped by pid, never by name."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path
    proc: subprocess.Popen[bytes] | None = None
    _log: TextIO | None = None

    def start(self) -> Child:
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # our Ctrl-C handling stops it, in order
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGINT (uvicorn's graceful stop), then SIGTERM, then SIGKILL; each bounded."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
                try:
                    proc.wait(wait_s)
                    break
                except subprocess.TimeoutExpired:
                    continue
            else:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None


def wait_http_ready(child: Child, url: str, timeout_s: float = 30.0) -> None:
    """Poll `url` until it answers 200; fail early if the process exits."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited during start-up:\n{child.tail()}")
            try:
                response = client.get(url)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                last = type(exc).__name__
            time.sleep(0.1)
    raise RuntimeError(f"{child.name} not ready after {timeout_s:.0f}s ({last}):\n{child.tail()}")


# --- a lean HTTP/1.1 client ----------------------------------------------------------------
_IDLE_REUSE_S = 3.0


class HttpError(Exception):
    """The connection failed or the answer was not HTTP/1.1 as expected."""


class RawHttp:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1, one request at a time.

    The load generator shares two cores with the server, PostgreSQL and the simulator, so it
    must be cheap: measured here, httpx's AsyncClient costs 1.5 ms (a client per worker) to
    3.8 ms (one client shared by 50 workers) of CPU per request, against about 0.13 ms for
    this; with httpx the client, not the service, was the bottleneck. Every worker owns one.
    """

    def __init__(self, port: int, timeout_s: float = 30.0) -> None:
        self._port = port
        self._timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._host = f"127.0.0.1:{port}".encode()
        self._last_used = 0.0
        #: The last answer's `Server-Timing` header value (raw), if it had one.
        self.server_timing: bytes | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: bytes = b""
    ) -> tuple[int, bytes]:
        """Send one request; return (status, body). `headers`: raw `Name: value\r\n` lines."""
        if self._writer is not None and time.monotonic() - self._last_used > _IDLE_REUSE_S:
            # uvicorn closes keep-alive connections idle for 5 s: never race that close.
            self.close()
        try:
            async with asyncio.timeout(self._timeout_s):
                answer = await self._exchange(method, path, body, headers)
        except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError) as exc:
            self.close()
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc
        self._last_used = time.monotonic()
        return answer

    async def _exchange(
        self, method: str, path: str, body: bytes, headers: bytes
    ) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self._port)
        reader, writer = self._reader, self._writer
        assert reader is not None
        writer.write(
            b"%s %s HTTP/1.1\r\nhost: %s\r\ncontent-length: %d\r\n%s\r\n%s"
            % (method.encode(), path.encode(), self._host, len(body), headers, body)
        )
        status_line = await reader.readuntil(b"\r\n")
        status = int(status_line.split(None, 2)[1])
        length, chunked, close = 0, False, False
        self.server_timing = None
        for _ in range(200):  # header lines
            line = await reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
            elif name == b"server-timing":
                self.server_timing = value.strip()
        else:
            raise ValueError("too many header lines")
        if chunked:
            parts = []
            for _ in range(100_000):
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                data = await reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(data[:-2])
            payload = b"".join(parts)
        else:
            payload = await reader.readexactly(length)
        if close:
            self.close()
        return status, payload

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


# --- CPU clocks ---------------------------------------------------------------------------
def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, from /proc (None if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    # after the command: state(0) ppid(1) ... utime(11) stime(12)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user
    return float(total - idle), float(total)


def all_processes() -> dict[int, tuple[str, float]]:
    """pid -> (command, CPU seconds) of every process on the machine."""
    out: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        out[int(entry.name)] = (name, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


@dataclass
class CpuSnapshot:
    wall: float
    server: float | None
    sim: float | None
    bench: float
    postgres: dict[int, float]
    machine: tuple[float, float]
    processes: dict[int, tuple[str, float]]
    ours: set[int]


def cpu_snapshot(
    server_pid: int | None, sim_pid: int | None, pg_pids: Sequence[int]
) -> CpuSnapshot:
    pg: dict[int, float] = {}
    for pid in pg_pids:
        value = process_cpu_seconds(pid)
        if value is not None:
            pg[pid] = value
    return CpuSnapshot(
        wall=time.monotonic(),
        server=process_cpu_seconds(server_pid) if server_pid else None,
        sim=process_cpu_seconds(sim_pid) if sim_pid else None,
        bench=self_cpu_seconds(),
        postgres=pg,
        machine=machine_cpu(),
        processes=all_processes(),
        ours={p for p in (server_pid, sim_pid, os.getpid(), *pg_pids) if p},
    )


def cpu_delta(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, Any]:
    """CPU seconds spent by each party between two snapshots, and the machine's busy share."""

    def diff(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(b - a, 3)

    # PostgreSQL backends: those seen at both ends, plus any that started meanwhile.
    pg = sum(after.postgres[pid] - before.postgres.get(pid, 0.0) for pid in after.postgres)
    busy = after.machine[0] - before.machine[0]
    total = after.machine[1] - before.machine[1]
    server, sim = diff(before.server, after.server), diff(before.sim, after.sim)
    bench = after.bench - before.bench
    ours = (server or 0.0) + (sim or 0.0) + bench + pg
    others: dict[str, float] = {}
    ours_pids = before.ours | after.ours | set(after.postgres)
    for pid, (name, cpu) in after.processes.items():
        if pid not in ours_pids:
            others[name] = others.get(name, 0.0) + cpu - before.processes.get(pid, (name, 0.0))[1]
    busiest = sorted(others.items(), key=lambda item: -item[1])[:5]
    top_others = {name: round(v, 2) for name, v in busiest if v >= 0.05}
    return {
        "wall_s": round(after.wall - before.wall, 3),
        "server_s": server,
        "sim_s": sim,
        "bench_s": round(bench, 3),
        "postgres_s": round(pg, 3),
        "machine_busy_pct": round(100 * busy / total, 1) if total else None,
        # Everything else on the machine (other users' work, the kernel's own threads).
        "other_s": round(max(0.0, busy / CLK_TCK - ours), 3),
        # Of those, processes alive at both ends of the phase (short-lived ones are missing).
        "other_top": top_others,
    }


# --- statistics ---------------------------------------------------------------------------
def percentile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks; `ordered` must be sorted."""
    if not ordered:
        return float("nan")
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(samples_s: Sequence[float], subtract_ms: float = 0.0) -> dict[str, float]:
    """Milliseconds: n, mean, p50/p95/p99/max, of the samples minus `subtract_ms`."""
    ordered = sorted(s * 1000 - subtract_ms for s in samples_s)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "mean": round(sum(ordered) / len(ordered), 2),
        "p50": round(percentile(ordered, 0.50), 2),
        "p95": round(percentile(ordered, 0.95), 2),
        "p99": round(percentile(ordered, 0.99), 2),
        "max": round(ordered[-1], 2),
    }


@dataclass
class OpStats:
    """Latencies and failures of one kind of request in a load phase."""

    latencies: list[float] = field(default_factory=list)
    #: The answer's `Server-Timing` spans (ms) beside each latency, when the server sent them.
    spans: list[dict[str, float]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    first_error: str | None = None

    def fail(self, what: str, detail: str) -> None:
        self.errors[what] += 1
        if self.first_error is None:
            self.first_error = detail[:500]


def parse_server_timing(value: bytes | None) -> dict[str, float]:
    """`db;dur=1.20, app;dur=3.40` → {"db": 1.2, "app": 3.4} (ms); {} for none."""
    out: dict[str, float] = {}
    for entry in (value or b"").split(b","):
        name, _, dur = entry.strip().partition(b";dur=")
        if name and dur:
            out[name.decode()] = float(dur)
    return out


def tail_breakdown(
    latencies_s: Sequence[float], spans: Sequence[dict[str, float]], *, tavus_ms: float = 0.0
) -> dict[str, Any]:
    """Where the slowest 1 % of requests (at least one) spent their time, in mean ms: the
    service's spans, the rest of the service's time (`app_other`: our CPU and the waits for
    the event loop) and what happened outside the service (`outside`: the network stack,
    the kernel, this client). `ours_*`: end-to-end minus the Tavus span, i.e. without the
    simulator's time (its latency and its own processing)."""
    pairs = [(1000 * e, s) for e, s in zip(latencies_s, spans, strict=False) if s]
    if not pairs:
        return {}
    ours = sorted(e - s.get("tavus", 0.0) for e, s in pairs)
    pairs.sort(key=lambda p: p[0])
    tail = pairs[-max(1, len(pairs) // 100) :]

    def mean(values: list[float]) -> float:
        return round(sum(values) / len(values), 2)

    parts = {name: mean([s.get(name, 0.0) for _, s in tail]) for name in ("db_wait", "db", "tavus")}
    app = mean([s.get("app", 0.0) for _, s in tail])
    return {
        "n": len(pairs),
        "tail_n": len(tail),
        "tail_e2e_ms": mean([e for e, _ in tail]),
        "tail_app_ms": app,
        **{f"tail_{k}_ms": v for k, v in parts.items()},
        "tail_app_other_ms": round(app - sum(parts.values()), 2),
        "tail_outside_ms": mean([e - s.get("app", 0.0) for e, s in tail]),
        "ours_p50_ms": round(percentile(ours, 0.50), 2),
        "ours_p99_ms": round(percentile(ours, 0.99), 2),
        "tavus_configured_ms": tavus_ms,
    }


# --- profiling ----------------------------------------------------------------------------
class PySpyRecorder:
    """`py-spy record` attached to a pid for one phase (collapsed stacks), then summarised."""

    def __init__(self, executable: str, pid: int, out: Path, rate: int = 250) -> None:
        self.out = out
        self._proc = subprocess.Popen(
            [executable, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw"]
            + ["--nonblocking", "--output", str(out)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        time.sleep(0.5)  # let it attach

    def stop(self) -> str | None:
        """Stop recording; return an error text, or None when the output was written."""
        proc = self._proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        if not self.out.exists():
            return err.strip()[-500:] or "py-spy wrote nothing"
        return None


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short_frame(frame: str, strip_line: bool = True) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    line = "" if strip_line or not match["line"] else f":{match['line']}"
    return f"{match['func']} ({path}{line})"


def summarise_collapsed(
    path: Path, top: int = 15, keep: Callable[[str], bool] | None = None
) -> dict[str, Any]:
    """Top frames by self time and by inclusive time from py-spy's collapsed stacks."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for raw in path.read_text(errors="replace").splitlines():
        stack, _, count_text = raw.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short_frame(f) for f in stack.split(";")]
        # py-spy puts "process ..." / "thread ..." first; drop non-code frames
        frames = [f for f in frames if "(" in f]
        if not frames:
            continue
        total += count
        self_time[frames[-1]] += count
        for frame in set(frames):
            if keep is None or keep(frame):
                inclusive[frame] += count

    by_package: Counter[str] = Counter()
    for frame, n in self_time.items():
        by_package[_package(frame)] += n

    def share(counter: Counter[str], limit: int = top) -> list[dict[str, Any]]:
        return [
            {"frame": frame, "pct": round(100 * n / max(total, 1), 1)}
            for frame, n in counter.most_common(limit)
        ]

    return {
        "samples": total,
        "self_by_package": share(by_package, 12),
        "self": share(self_time),
        "inclusive": share(inclusive),
    }


def _package(frame: str) -> str:
    """`sqlalchemy`, `asyncpg`, `facetoface`, `asyncio`, … for a shortened frame."""
    match = _FRAME.match(frame)
    path = match["file"] if match else frame
    return path.split("/", 1)[0].removesuffix(".py")
