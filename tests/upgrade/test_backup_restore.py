"""The restore drill of README "Backups", for real: `pg_dump` of a database holding sessions,
`pg_restore` into an empty database, a `serve` process on the restored copy (as the
least-privilege login role: roles live in the cluster, not in the dump) — ready, the
sessions readable as before, a new session starts."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import RunningService
from tests.support.factories import create_user
from tests.support.postgres import APP_ROLE, PostgresServer, fresh_database
from tests.support.replicas import replica_auth, serve_replicas
from tests.support.whole_sessions import finished_session

pytestmark = pytest.mark.e2e


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{command[0]}: {done.stderr}"


async def test_a_restored_backup_serves_its_sessions(
    service: RunningService, pg_server: PostgresServer, pg_database_url: str, tmp_path: Path
) -> None:
    assert shutil.which("pg_dump"), "PostgreSQL client tools"
    assert shutil.which("pg_restore"), "PostgreSQL client tools"
    user = await create_user(service.db)
    finished = await finished_session(service, user, ["I slept badly this week"])
    # Everything Tavus sends after the call (the post-call report too) is in before the dump.
    assert await asyncio.to_thread(service.sim.drain, 10.0)
    before = await service.client.get(f"/v1/sessions/{finished['id']}", headers=service.auth(user))
    assert before.status_code == 200, before.text

    dump = tmp_path / "facetoface.dump"
    await asyncio.to_thread(_run, "pg_dump", "--format=custom", f"--file={dump}", pg_database_url)
    with fresh_database(pg_server, "restored") as name:
        await asyncio.to_thread(
            _run, "pg_restore", "--exit-on-error", f"--dbname={pg_server.url(name)}", str(dump)
        )
        async with serve_replicas(
            1,
            database_url=pg_server.url(name, APP_ROLE),
            sim=service.sim,
            log_dir=tmp_path,
        ) as (restored,):
            ready = await restored.client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["migrations"] == "ok"
            after = await restored.client.get(
                f"/v1/sessions/{finished['id']}", headers=replica_auth(user)
            )
            assert after.status_code == 200, after.text
            assert after.json() == before.json()
            again = await restored.client.post("/v1/sessions", headers=replica_auth(user))
            assert again.status_code == 201, again.text
            ended = await restored.client.post(
                f"/v1/sessions/{again.json()['id']}/end", headers=replica_auth(user)
            )
            assert ended.status_code == 200, ended.text
