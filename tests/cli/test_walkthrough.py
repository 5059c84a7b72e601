"""The README walkthrough, as a newcomer runs it: real processes, real HTTP.

serve too early → migrate → seed-demo → token → serve (with the embedded simulator) → start →
end; twice: with DATABASE_URL unset, on the embedded PostgreSQL every command starts on demand
in DATA_DIR (and the command that started it stops), with a second terminal's commands while
`serve` runs (they join its server and leave it running); and with DATABASE_URL naming a
database. Every command is a process of its own (a second or two each): the steps that do not
depend on where the database is run once, in the embedded walkthrough.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.support.cli import (
    clean_environment,
    cli,
    embedded_data_dir,
    embedded_server_running,
    free_port,
    serving,
)
from tests.support.eventually import eventually_blocking
from tests.support.postgres import PostgresServer, fresh_database

pytestmark = pytest.mark.e2e


def development(data_dir: Path, **values: str) -> dict[str, str]:
    """`make run`'s environment: development, the embedded simulator, dev tokens."""
    port = free_port()
    return clean_environment(
        ENVIRONMENT="development",
        DATA_DIR=str(data_dir),
        PORT=str(port),
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        TAVUS_SIM_PORT=str(free_port()),
        LOG_FORMAT="json",
        **values,
    )


@pytest.fixture(params=["embedded", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The walkthrough's environment: DATABASE_URL unset (the embedded PostgreSQL in a fresh
    DATA_DIR), or naming a fresh, empty database."""
    if request.param == "embedded":
        with embedded_data_dir() as data:
            yield development(data)
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    with fresh_database(server, "walkthrough") as name:
        yield development(tmp_path / "data", DATABASE_URL=server.url(name))


def claims(token: str) -> dict[str, Any]:
    data: dict[str, Any] = jwt.decode(token.strip(), options={"verify_signature": False})
    return data


def test_readme_walkthrough(env: dict[str, str], tmp_path: Path) -> None:
    embedded = "DATABASE_URL" not in env
    data_dir = Path(env["DATA_DIR"])

    # Serving before migrating is refused with the fix (the embedded server, started for
    # the check, is stopped again).
    early = cli("serve", env=env, cwd=tmp_path, check=False)
    assert early.returncode == 2, early.stderr
    assert "facetoface migrate" in early.stderr
    assert not embedded_server_running(data_dir)

    migrated = cli("migrate", env=env, cwd=tmp_path)
    assert "migrated" in migrated.stdout
    seeded = cli("seed-demo", env=env, cwd=tmp_path)
    assert "maria@example.com" in seeded.stdout
    minted = cli("token", "--email", "maria@example.com", env=env, cwd=tmp_path)
    token = minted.stdout.strip()
    assert token.count(".") == 2
    # Commands print their result and nothing of the libraries they use (Alembic's INFO).
    assert (migrated.stderr, seeded.stderr, minted.stderr) == ("", "", "")
    assert not embedded_server_running(data_dir), "a command left the embedded server running"

    url = env["PUBLIC_BASE_URL"]
    with serving(env, url=url, logs=tmp_path / "serve") as served:
        headers = {"Authorization": f"Bearer {token}"}

        started = httpx.post(f"{url}/v1/sessions", headers=headers, timeout=10)
        assert started.status_code == 201, started.text
        started_at = time.monotonic()
        session: dict[str, Any] = started.json()
        assert session["conversation_url"].startswith(f"http://127.0.0.1:{env['TAVUS_SIM_PORT']}/")
        assert session["mentor"]["name"] == "Sage"
        room = httpx.get(session["conversation_url"], timeout=5)
        assert room.status_code == 200
        assert "<html" in room.text.lower()

        if embedded:
            operator_tokens(env, tmp_path, url)
        # The session lasts a second at least (the commands above take longer than that; no
        # clock of another process can be moved).
        time.sleep(max(0.0, 1.1 - (time.monotonic() - started_at)))
        ended = httpx.post(f"{url}/v1/sessions/{session['id']}/end", headers=headers, timeout=10)
        assert ended.status_code == 200, ended.text
        assert ended.json()["status"] == "completed"
        assert ended.json()["duration_seconds"] >= 1

        again = httpx.post(f"{url}/v1/sessions/{session['id']}/end", headers=headers, timeout=10)
        assert again.status_code == 200
        assert again.json()["status"] == "completed"

        # Tavus's shutdown callback reaches the service and refines the record.
        def refined() -> bool:
            read = httpx.get(f"{url}/v1/sessions/{session['id']}", headers=headers, timeout=5)
            return bool(read.json()["shutdown_reason"] == "end_conversation_endpoint_hit")

        eventually_blocking(refined, what="the shutdown reason from Tavus's callback")
        # `serve` registered the mentor's tools at its embedded simulator, on the mentor's PAL.
        sim_api = f"http://127.0.0.1:{env['TAVUS_SIM_PORT']}/v2"
        sim_key = {"x-api-key": "sim-key"}

        def tools_attached() -> bool:
            pal = httpx.get(f"{sim_api}/pals/pcb7a34da5fe/tools", headers=sim_key, timeout=5)
            names = {tool["name"] for tool in pal.json().get("data", [])}
            return names == {"update_goal_progress", "add_goal", "remember", "session_report"}

        eventually_blocking(tools_attached, what="the mentor's tools at the embedded simulator")
        readyz = httpx.get(f"{url}/readyz", timeout=5)
        assert readyz.json()["status"] == "ok", readyz.text
        assert readyz.json()["database"] == readyz.json()["tavus"] == "ok"
        assert served.poll() is None

    assert served.returncode == 130  # Ctrl-C's, as a shell reports it
    stdout, stderr = served.stdout, served.stderr
    # A graceful stop: nothing cancelled mid-way, no traceback for the user to read.
    assert "Traceback" not in stderr, stderr
    assert token not in stdout + stderr, "the access token reached the logs"
    assert token.split(".")[2] not in stderr
    # One server process, announced once (the embedded simulator's uvicorn lines are quiet).
    assert stderr.count("Started server process") == 1, stderr
    assert stderr.count("tavus_sim.embedded") == 1
    assert "alembic" not in stderr
    # `serve` started the embedded server, so `serve` stopped it.
    assert not embedded_server_running(data_dir)
    assert (data_dir / "postgres" / "PG_VERSION").exists() is embedded
    assert "facetoface_role" not in claims(token)["app_metadata"]


def operator_tokens(env: dict[str, str], cwd: Path, url: str) -> None:
    """A second terminal while `serve` runs: `token --operator` (the development operator;
    no database), and with `--email` (which uses the running embedded server, and must leave
    it running for `serve`). Both read the operators' API."""
    alone = cli("token", "--operator", env=env, cwd=cwd)
    as_maria = cli("token", "--email", "maria@example.com", "--operator", env=env, cwd=cwd)
    assert alone.stderr == as_maria.stderr == ""
    assert claims(alone.stdout)["app_metadata"]["facetoface_role"] == "operator"
    assert claims(as_maria.stdout)["app_metadata"]["facetoface_role"] == "operator"
    assert claims(as_maria.stdout)["email"] == "maria@example.com"
    for token in (alone.stdout.strip(), as_maria.stdout.strip()):
        ops = httpx.get(
            f"{url}/v1/ops/tavus", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert ops.status_code == 200, ops.text
    assert embedded_server_running(Path(env["DATA_DIR"])), "a joining command stopped it"


def test_token_for_an_unknown_email_fails_clearly(pg_database_url: str, tmp_path: Path) -> None:
    env = development(tmp_path / "data", DATABASE_URL=pg_database_url)
    result = cli("token", "--email", "nobody@example.com", env=env, cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "seed-demo" in result.stderr
    assert result.stdout == ""


def test_production_without_secrets_refuses_to_serve(tmp_path: Path) -> None:
    """Before anything starts: production never falls back to the embedded PostgreSQL."""
    env = {**development(tmp_path / "data"), "ENVIRONMENT": "production"}
    result = cli("serve", env=env, cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "TAVUS_API_KEY" in result.stderr
    assert "DATABASE_URL is not set" in result.stderr
    assert not (tmp_path / "data").exists()
