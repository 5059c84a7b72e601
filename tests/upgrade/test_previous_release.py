"""A rolling upgrade's other half, for real: the previous release — its wheel, built from its
commit, in a venv of its own — serves a database that this code migrated to head, because
every revision in between is marked backward-compatible. It answers `/healthz` and
`/readyz`, and a session runs start → Tavus's callbacks → end on it.

The previous release is the newest earlier commit that has the compatibility markers:
0.1.0 predates them (it refuses any database but its own head), so the first release that
can be rolled back to from a newer schema is this one's first commit with the rule
(`serve` on a database ahead). Move PREVIOUS_RELEASE to the last release's tag on each
release (README "Upgrading").
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from facetoface.db.migrations import head_revision
from tests.conftest import RunningService
from tests.support.eventually import eventually
from tests.support.factories import create_user
from tests.support.releases import release_python
from tests.support.replicas import replica_auth, serve_replicas

pytestmark = pytest.mark.e2e

#: The release before this code (its head: 0010; this code's migrations after it are all
#: expand-only).
PREVIOUS_RELEASE = "135e6e0eeee34b40e0c51148685e1bf01a100dbe"
PREVIOUS_HEAD = "0010"


async def test_the_previous_release_serves_a_database_migrated_to_head(
    service: RunningService, tmp_path: Path
) -> None:
    python = await asyncio.to_thread(release_python, PREVIOUS_RELEASE)
    assert head_revision() != PREVIOUS_HEAD  # the database is ahead of the old code
    user = await create_user(service.db)
    async with serve_replicas(
        1,
        database_url=service.settings.database_url,
        sim=service.sim,
        log_dir=tmp_path,
        python=python,
        openapi_enabled="true",
    ) as (old,):
        # It is the old code that answers (its version), on the newer schema.
        info = (await old.client.get("/openapi.json")).json()["info"]
        assert info["version"] == "0.1.0"
        assert (await old.client.get("/healthz")).status_code == 200
        ready = await old.client.get("/readyz")
        assert ready.status_code == 200, ready.text
        migrations = ready.json()["checks"]["migrations"]
        assert migrations == {"status": "ahead", "current": head_revision(), "head": "0010"}

        started = await old.client.post("/v1/sessions", headers=replica_auth(user))
        assert started.status_code == 201, started.text
        session = started.json()
        await asyncio.to_thread(service.sim.join, session["conversation_id"], "Ana")
        await asyncio.to_thread(service.sim.say, session["conversation_id"], "Hello again")

        async def joined() -> bool:
            read = await old.client.get(f"/v1/sessions/{session['id']}", headers=replica_auth(user))
            return read.json().get("replica_joined_at") is not None

        await eventually(joined, what="replica_joined to reach the old release")
        ended = await old.client.post(
            f"/v1/sessions/{session['id']}/end", headers=replica_auth(user)
        )
        assert ended.status_code == 200, ended.text

        async def closed() -> bool:
            read = await old.client.get(f"/v1/sessions/{session['id']}", headers=replica_auth(user))
            body = read.json()
            return body["ended_at"] is not None and body["shutdown_reason"] is not None

        await eventually(closed, what="Tavus's shutdown callback to close the session")
