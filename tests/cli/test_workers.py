"""`facetoface serve --workers N`: N processes on one port, one merged view of the metrics."""

from __future__ import annotations

import os
import re
import signal
import socket
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from facetoface.auth.dev_issuer import mint_token
from facetoface.config import Settings
from tavus_sim import SimServer
from tests.conftest import app_role_url
from tests.support.cli import clean_environment, free_port, serving
from tests.support.eventually import eventually_blocking
from tests.support.signing import TEST_JWT_SECRET

pytestmark = [pytest.mark.e2e]


def _requests_total(metrics: str, route: str) -> float:
    prefix = f'facetoface_http_requests_total{{method="GET",route="{route}"'
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(prefix)
    )


def _workers_environment(
    pg_database_url: str, sim: SimServer, tmp_path: Path, port: int, **extra: str
) -> dict[str, str]:
    url = f"http://127.0.0.1:{port}"
    return clean_environment(
        ENVIRONMENT="test",
        SUPABASE_JWT_SECRET=TEST_JWT_SECRET,
        DATA_DIR=str(tmp_path / "data"),
        # The worker's migrated database, as the application's login role.
        DATABASE_URL=app_role_url(pg_database_url),
        PORT=str(port),
        PUBLIC_BASE_URL=url,
        TAVUS_API_KEY=sim.config.api_key,
        TAVUS_BASE_URL=sim.api_url,
        TAVUS_DEFAULT_REPLICA_ID="r0000default",
        RECONCILE_INTERVAL_SECONDS="0",
        # The workers drain at the end without a readiness window: no load balancer polls.
        SHUTDOWN_READINESS_DELAY_SECONDS="0",
        LOG_LEVEL="WARNING",
        # Given, so the test can look: `serve` empties it and both workers write there.
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        **extra,
    )


def test_two_workers_serve_one_port_and_merge_their_metrics(
    pg_database_url: str, sim: SimServer, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale")  # a previous deployment's
    env = _workers_environment(pg_database_url, sim, tmp_path, port)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        environment="test",
        public_base_url=url,
        supabase_jwt_secret=TEST_JWT_SECRET,
    )
    user = {"Authorization": f"Bearer {mint_token(settings, user_id=uuid.uuid4())}"}
    operator = {
        "Authorization": f"Bearer {mint_token(settings, user_id=uuid.uuid4(), operator=True)}"
    }
    # uvicorn kills and respawns a worker that does not answer its health check within 5 s
    # of being spawned (`timeout_worker_healthcheck`, left at its default by `serve`; the
    # bootstrap imports much of the app): on a loaded machine it takes several rounds.
    with serving(env, "--workers", "2", url=url, logs=tmp_path / "serve", within=180):
        # Both workers answer: each says who it is (`<host>:<pid>`) on the operators' API.
        # New connections, which the kernel hands to whichever worker accepts first.
        replicas: list[str] = []

        def both_workers_answered() -> bool:
            with httpx.Client(base_url=url, timeout=10) as fresh:
                response = fresh.get("/v1/ops/tavus", headers=operator)
            assert response.status_code == 200, response.text
            replicas.append(response.json()["replica"])
            return len(set(replicas)) == 2

        eventually_blocking(both_workers_answered, within=120, what="both workers answering")
        for _ in range(40):
            with httpx.Client(base_url=url, timeout=10) as fresh:
                assert fresh.get("/v1/sessions", headers=user).status_code == 200
        # Every scrape, whichever worker answers it, merges every worker's samples: the
        # operators' requests were answered by both workers, and all of them are counted.
        for _ in range(6):
            with httpx.Client(base_url=url, timeout=10) as fresh:
                metrics = fresh.get("/metrics").text
            assert _requests_total(metrics, "/v1/ops/tavus") == len(replicas)
            assert _requests_total(metrics, "/v1/sessions") == 40
        pids = {p.stem.rsplit("_", 1)[1] for p in metrics_dir.glob("*.db")}
        assert "999999" not in pids, "serve empties the directory before the workers start"
        assert {replica.rsplit(":", 1)[1] for replica in replicas} <= pids, pids


_IN_PROGRESS = re.compile(r"^facetoface_http_requests_in_progress(?:\{[^}]*\})? (\S+)$", re.M)


def _in_progress(url: str) -> float:
    """The merged gauge, as a scrape reports it (the scrape itself is one of them)."""
    with httpx.Client(base_url=url, timeout=10) as fresh:
        metrics = fresh.get("/metrics").text
    found = _IN_PROGRESS.search(metrics)
    assert found is not None, metrics
    return float(found.group(1))


def _held_by(metrics_dir: Path) -> dict[int, float]:
    """Requests in progress per worker process, from each one's own gauge file."""
    held: dict[int, float] = {}
    for path in metrics_dir.glob("gauge_livesum_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        for metric in MultiProcessCollector.merge([str(path)], accumulate=False):
            if metric.name == "facetoface_http_requests_in_progress":
                held[pid] = sum(sample.value for sample in metric.samples)
    return held


def test_a_killed_workers_requests_leave_the_merged_gauge(
    pg_database_url: str, sim: SimServer, tmp_path: Path
) -> None:
    """Issue 17.8: a SIGKILLed worker's in-progress requests stayed in the merged view for
    good (`http_requests_in_progress` 2.0 while idle). The supervisor marks it dead."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    (tmp_path / "metrics").mkdir()
    # The held requests below wait for their bodies: long enough to outlast the test.
    env = _workers_environment(
        pg_database_url, sim, tmp_path, port, HTTP_BODY_TIMEOUT_SECONDS="300"
    )
    held = 6
    with serving(env, "--workers", "2", url=url, logs=tmp_path / "serve", within=180):
        # Requests in progress: heads of webhook posts whose bodies never come, on connections
        # of their own (the kernel hands them to either worker).
        clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(held)]
        try:
            for client in clients:
                client.sendall(
                    b"POST /functions/v1/tavus-webhook HTTP/1.1\r\n"
                    b"host: localhost\r\ncontent-type: application/json\r\n"
                    b"content-length: 100\r\n\r\n"
                )
            eventually_blocking(
                lambda: _in_progress(url) == held + 1, within=60, what="the held requests counted"
            )
            by_worker = _held_by(tmp_path / "metrics")
            victim = max(by_worker, key=lambda pid: by_worker[pid])
            assert by_worker[victim] >= 1, by_worker
            os.kill(victim, signal.SIGKILL)
        finally:
            for client in clients:
                client.close()  # the survivor's requests end (aborted)
        # Once the supervisor noticed (and replaced the worker), only the scrape itself is in
        # progress: nothing of the dead worker's is left in the merged view.
        eventually_blocking(
            lambda: _in_progress(url) == 1, within=120, what="the dead worker's gauge gone"
        )
        assert victim not in _held_by(tmp_path / "metrics")
