"""`facetoface serve --workers N`: N processes on one port, one merged view of the metrics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from facetoface.auth.dev_issuer import mint_token
from facetoface.config import Settings
from tavus_sim import SimServer
from tests.cli.test_walkthrough import _free_port, _wait_healthy, cli
from tests.support.postgres import PostgresServer, fresh_database

pytestmark = [pytest.mark.e2e]


def _requests_total(metrics: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith('facetoface_http_requests_total{method="GET",route="/v1/sessions"')
    )


def test_two_workers_serve_one_port_and_merge_their_metrics(
    pg_server: PostgresServer, sim: SimServer, tmp_path: Path
) -> None:
    port = _free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale")  # a previous deployment's
    with fresh_database(pg_server, "workers") as name:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")},
            "ENVIRONMENT": "test",
            "DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": pg_server.url(name),
            "DB_ROW_LEVEL_SECURITY": "false",
            "PORT": str(port),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "TAVUS_API_KEY": sim.config.api_key,
            "TAVUS_BASE_URL": sim.api_url,
            "TAVUS_DEFAULT_REPLICA_ID": "r0000default",
            "RECONCILE_INTERVAL_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
            # Given, so the test can look: `serve` empties it and both workers write there.
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
        cli("migrate", env=env)
        log = (tmp_path / "serve.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "facetoface", "serve", "--workers", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, process)
            settings = Settings(_env_file=None, environment="test", public_base_url=url)  # type: ignore[call-arg]
            token = mint_token(settings, user_id=uuid.uuid4())
            auth = {"Authorization": f"Bearer {token}"}
            for _ in range(40):  # new connections: the kernel spreads them over the workers
                with httpx.Client(base_url=url, timeout=10) as fresh:
                    assert fresh.get("/v1/sessions", headers=auth).status_code == 200
            # Every scrape, whichever worker answers it, merges every worker's samples.
            for _ in range(6):
                with httpx.Client(base_url=url, timeout=10) as fresh:
                    assert _requests_total(fresh.get("/metrics").text) == 40
            pids = {p.stem.rsplit("_", 1)[1] for p in metrics_dir.glob("*.db")}
            assert "999999" not in pids, "serve empties the directory before the workers start"
            assert len(pids) >= 2, pids
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


def test_workers_refuse_the_embedded_simulator(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "DATABASE_"))},
        "ENVIRONMENT": "development",
        "DATA_DIR": str(tmp_path / "data"),
    }
    refused = cli("serve", "--workers", "2", env=env, check=False)
    assert refused.returncode == 2
    assert "--workers needs the real Tavus API" in refused.stderr
