"""`serve` in development as people run it (issue 18 item 6): `--port` without
`PUBLIC_BASE_URL` (the callbacks follow the port actually served), a token minted without
knowing the port, `--workers 2` with the simulator (a process of its own), the addresses to
open printed, and a `PUBLIC_BASE_URL` on another port of this machine said out loud.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import app_role_url
from tests.support.cli import clean_environment, cli, free_port, serving
from tests.support.eventually import eventually_blocking
from tests.support.postgres import PostgresServer, fresh_database
from tests.support.signing import TEST_JWT_SECRET

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(pg_server: PostgresServer) -> Iterator[dict[str, str]]:
    """Development on a fresh, migrated, seeded database; no PORT, no PUBLIC_BASE_URL."""
    with fresh_database(pg_server, "devserve") as name:
        env = clean_environment(
            ENVIRONMENT="development",
            DATABASE_URL=pg_server.url(name),
            TAVUS_SIM_PORT=str(free_port()),
            LOG_FORMAT="json",
            LOG_LEVEL="WARNING",
        )
        yield env


def test_serve_workers_on_another_port_in_development(env: dict[str, str], tmp_path: Path) -> None:
    cli("migrate", env=env, cwd=tmp_path)
    cli("seed-demo", env=env, cwd=tmp_path)
    # Minted with no idea of the port `serve` will use.
    token = cli("token", "--email", "maria@example.com", env=env, cwd=tmp_path).stdout.strip()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    with serving(
        env, "--port", str(port), "--workers", "2", url=url, logs=tmp_path / "serve", within=180
    ) as served:
        started = httpx.post(f"{url}/v1/sessions", headers=headers, timeout=15)
        assert started.status_code == 201, started.text
        session: dict[str, Any] = started.json()
        assert session["conversation_url"].startswith(f"http://127.0.0.1:{env['TAVUS_SIM_PORT']}/")
        time.sleep(1.1)  # a session of a second at least (another process's clock)
        ended = httpx.post(f"{url}/v1/sessions/{session['id']}/end", headers=headers, timeout=15)
        assert ended.status_code == 200, ended.text

        # The simulator's shutdown callback reaches the port served (it went to :8000).
        def refined() -> bool:
            read = httpx.get(f"{url}/v1/sessions/{session['id']}", headers=headers, timeout=5)
            return bool(read.json()["shutdown_reason"] == "end_conversation_endpoint_hit")

        eventually_blocking(refined, within=30, what="the shutdown callback on the served port")
    assert f"console:  {url}/console" in served.stdout
    assert f"API docs: {url}/docs" in served.stdout
    assert "Traceback" not in served.stderr


def test_a_public_base_url_on_another_local_port_is_said(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port that refuses: serve stops early
        closed.bind(("127.0.0.1", 0))
        database = f"postgresql://postgres@127.0.0.1:{closed.getsockname()[1]}/none"
        env = clean_environment(
            ENVIRONMENT="development",
            DATABASE_URL=database,
            PUBLIC_BASE_URL="http://127.0.0.1:8000",
            LOG_LEVEL="WARNING",
        )
        port = free_port()
        run = cli("serve", "--port", str(port), env=env, cwd=tmp_path, check=False)
    assert run.returncode == 2
    warning = [line for line in run.stderr.splitlines() if "PUBLIC_BASE_URL" in line]
    assert len(warning) == 1, run.stderr
    assert f"serve listens on {port}" in warning[0]
    assert "Traceback" not in run.stderr


def test_metrics_on_a_port_of_its_own(pg_database_url: str, tmp_path: Path) -> None:
    """METRICS_PORT: `/metrics` answers there (bound to METRICS_HOST), and is no route on the
    public port."""
    port, metrics_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_environment(
        ENVIRONMENT="test",
        SUPABASE_JWT_SECRET=TEST_JWT_SECRET,
        DATABASE_URL=app_role_url(pg_database_url),
        PORT=str(port),
        PUBLIC_BASE_URL=url,
        TAVUS_SIM_PORT=str(free_port()),
        METRICS_PORT=str(metrics_port),
        METRICS_HOST="127.0.0.1",
        RECONCILE_INTERVAL_SECONDS="0",
        LOG_LEVEL="WARNING",
    )
    with serving(env, url=url, logs=tmp_path / "serve"):
        public = httpx.get(f"{url}/metrics", timeout=10)
        private = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
    assert public.status_code == 404, public.text
    assert private.status_code == 200, private.text
    assert "facetoface_" in private.text
