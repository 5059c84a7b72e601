"""The README walkthrough, as a newcomer runs it: real processes, real HTTP, both databases.

migrate → seed-demo → token → serve (with the embedded simulator) → start → end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.postgres import PostgresServer, fresh_database

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facetoface", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


@pytest.fixture(params=["postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    port = _free_port()
    values = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "DATABASE_"))},
        "ENVIRONMENT": "development",
        "DATA_DIR": str(tmp_path / "data"),
        "PORT": str(port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "TAVUS_SIM_PORT": str(_free_port()),
        "LOG_FORMAT": "json",
    }
    if request.param == "sqlite":
        yield values
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    with fresh_database(server, "walkthrough") as name:
        yield {**values, "DATABASE_URL": server.url(name)}


def _wait_healthy(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"serve exited early: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("serve did not become healthy")


def test_readme_walkthrough(env: dict[str, str]) -> None:
    migrated = cli("migrate", env=env)
    assert "migrated" in migrated.stdout
    seeded = cli("seed-demo", env=env)
    assert "maria@example.com" in seeded.stdout
    minted = cli("token", "--email", "maria@example.com", env=env)
    token = minted.stdout.strip()
    assert token.count(".") == 2
    # Commands print their result and nothing of the libraries they use (Alembic's INFO).
    assert (migrated.stderr, seeded.stderr, minted.stderr) == ("", "", "")

    url = env["PUBLIC_BASE_URL"]
    process = subprocess.Popen(
        [sys.executable, "-m", "facetoface", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_healthy(url, process)
        headers = {"Authorization": f"Bearer {token}"}

        started = httpx.post(f"{url}/v1/sessions", headers=headers, timeout=10)
        assert started.status_code == 201, started.text
        session: dict[str, Any] = started.json()
        assert session["conversation_url"].startswith(f"http://127.0.0.1:{env['TAVUS_SIM_PORT']}/")
        assert session["mentor"]["name"] == "Sage"
        room = httpx.get(session["conversation_url"], timeout=5)
        assert room.status_code == 200
        assert "<html" in room.text.lower()

        time.sleep(1.1)
        ended = httpx.post(f"{url}/v1/sessions/{session['id']}/end", headers=headers, timeout=10)
        assert ended.status_code == 200, ended.text
        assert ended.json()["status"] == "completed"
        assert ended.json()["duration_seconds"] >= 1

        again = httpx.post(f"{url}/v1/sessions/{session['id']}/end", headers=headers, timeout=10)
        assert again.status_code == 200
        assert again.json()["status"] == "completed"
        # Tavus's shutdown callback reaches the service and refines the record.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            read = httpx.get(f"{url}/v1/sessions/{session['id']}", headers=headers, timeout=5)
            if read.json()["shutdown_reason"] == "end_conversation_endpoint_hit":
                break
            time.sleep(0.1)
        assert read.json()["shutdown_reason"] == "end_conversation_endpoint_hit"
        readyz = httpx.get(f"{url}/readyz", timeout=5)
        assert readyz.json()["status"] == "ok", readyz.text
        assert readyz.json()["database"] == readyz.json()["tavus"] == "ok"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
    assert token not in stderr, "the access token reached the logs"
    # One server process, announced once (the embedded simulator's uvicorn lines are quiet).
    assert stderr.count("Started server process") == 1, stderr
    assert stderr.count("tavus_sim.embedded") == 1
    assert "alembic" not in stderr
    assert token.split(".")[2] not in stderr


def test_serve_refuses_an_unmigrated_database(env: dict[str, str]) -> None:
    result = cli("serve", env=env, check=False)
    assert result.returncode == 2
    assert "facetoface migrate" in result.stderr


def test_token_for_an_unknown_email_fails_clearly(env: dict[str, str]) -> None:
    cli("migrate", env=env)
    result = cli("token", "--email", "nobody@example.com", env=env, check=False)
    assert result.returncode == 2
    assert "seed-demo" in result.stderr
    assert result.stdout == ""


def test_production_without_secrets_refuses_to_serve(env: dict[str, str]) -> None:
    result = cli("serve", env={**env, "ENVIRONMENT": "production"}, check=False)
    assert result.returncode == 2
    assert "TAVUS_API_KEY" in result.stderr


def test_operator_tokens_carry_the_operator_claim(env: dict[str, str]) -> None:
    import jwt

    cli("migrate", env=env)
    cli("seed-demo", env=env)
    alone = cli("token", "--operator", env=env)
    as_maria = cli("token", "--email", "maria@example.com", "--operator", env=env)
    plain = cli("token", "--email", "maria@example.com", env=env)

    def claims(token: str) -> dict[str, Any]:
        data: dict[str, Any] = jwt.decode(token.strip(), options={"verify_signature": False})
        return data

    assert claims(alone.stdout)["app_metadata"]["facetoface_role"] == "operator"
    assert claims(as_maria.stdout)["app_metadata"]["facetoface_role"] == "operator"
    assert claims(as_maria.stdout)["email"] == "maria@example.com"
    assert "facetoface_role" not in claims(plain.stdout)["app_metadata"]
    assert alone.stderr == as_maria.stderr == ""
