"""`facetoface serve --workers N`: N processes on one port, one merged view of the metrics."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

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


def test_two_workers_serve_one_port_and_merge_their_metrics(
    pg_database_url: str, sim: SimServer, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale")  # a previous deployment's
    env = clean_environment(
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
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, environment="test", supabase_jwt_secret=TEST_JWT_SECRET
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
