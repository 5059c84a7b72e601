"""`facetoface migrate --adopt` on a database built the way the origin's migration (and its
hand-made tables) built it, filled with the origin's kind of rows: the dry run changes nothing,
the adoption keeps every row and reports what it could not carry over, a second run has nothing
to do, and then `serve` starts on it and a start and an end go through `/functions/v1`.

The CLI's output of each run is kept in `test-artifacts/adopt/`.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from facetoface.auth.dev_issuer import mint_token
from facetoface.config import Settings
from facetoface.db.migrations import head_revision
from facetoface.migrations.adopt import adopt_database
from tavus_sim import SimServer
from tests.adopt.origin_db import (
    STATEMENT_TIMEOUT_MS,
    execute,
    fetch,
    origin_with_data,
    settings,
)
from tests.support import cli as command
from tests.support.postgres import PostgresServer, create_app_role, fresh_database
from tests.support.signing import TEST_JWT_SECRET

pytestmark = [pytest.mark.e2e]

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE.parents[1] / "test-artifacts" / "adopt"

MARIA = "11111111-1111-4111-8111-111111111111"
JOAO = "22222222-2222-4222-8222-222222222222"
ANA = "33333333-3333-4333-8333-333333333333"
ORIGIN_TABLES = (
    "profiles",
    "onboarding_profiles",
    "ritual_preferences",
    "user_emotional_categories",
    "user_goals",
    "daily_sessions",
    "mentor_conversations",
    "user_personas",
    "mentor_avatars",
    "user_streaks",
    "virtue_collection",
    "app_settings",
)
#: The rows that belong to nobody in origin_data.sql (table, id or a column to find it by).
OWNERLESS = {
    ("daily_sessions", "e0000000-0000-4000-8000-000000000010"),
    ("mentor_conversations", "d0000000-0000-4000-8000-000000000007"),
    ("user_goals", "a0000000-0000-4000-8000-000000000005"),
}


def as_maria(url: str, sql: str) -> list[asyncpg.Record]:
    """A query as Maria would run it through Supabase's REST API (`authenticated`, her claims)."""

    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            async with conn.transaction():
                await conn.execute(
                    "SELECT set_config('role', 'authenticated', true),"
                    " set_config('request.jwt.claims', $1, true),"
                    " set_config('request.jwt.claim.sub', $2, true)",
                    f'{{"sub": "{MARIA}", "role": "authenticated"}}',
                    MARIA,
                )
                return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture
def origin_db(pg_server: PostgresServer) -> Iterator[tuple[str, str]]:
    """(name, owner URL) of a database as the origin left it."""
    with fresh_database(pg_server, "origin") as name:
        url = pg_server.url(name)
        origin_with_data(url)
        yield name, url


def snapshot(url: str) -> dict[str, Any]:
    """Everything the dry run must leave alone: schemas, tables, their rows, constraints,
    indexes, policies, views' options, functions' settings."""
    state: dict[str, Any] = {}
    for table in ORIGIN_TABLES:
        [row] = fetch(
            url,
            f"SELECT count(*) AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
            f" AS digest FROM public.{table} t",
        )
        state[table] = (row["n"], row["digest"])
    queries = {
        "schemas": "SELECT nspname FROM pg_namespace ORDER BY 1",
        "relations": "SELECT relname, relkind FROM pg_class"
        " WHERE relnamespace = 'public'::regnamespace ORDER BY 1",
        "columns": "SELECT table_name, column_name, is_nullable, column_default"
        " FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
        "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
        " FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
        "policies": "SELECT tablename, policyname FROM pg_policies ORDER BY 1, 2",
        "views": "SELECT relname, reloptions FROM pg_class WHERE relkind = 'v'"
        " AND relnamespace = 'public'::regnamespace",
        "functions": "SELECT proname, proconfig FROM pg_proc"
        " WHERE pronamespace = 'public'::regnamespace ORDER BY 1",
    }
    for key, sql in queries.items():
        state[key] = [tuple(r) for r in fetch(url, sql)]
    return state


def cli(url: str, cwd: Path, *args: str) -> command.Run:
    env = command.clean_environment(
        DATABASE_URL=url,
        ENVIRONMENT="test",
        SUPABASE_JWT_SECRET=TEST_JWT_SECRET,
        LOG_LEVEL="WARNING",
        DB_STATEMENT_TIMEOUT_MS=str(STATEMENT_TIMEOUT_MS),
    )
    return command.cli(*args, env=env, cwd=cwd, check=False)


def keep(name: str, output: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{name}.txt").write_text(output)


def test_adopting_the_origins_database(
    origin_db: tuple[str, str], pg_server: PostgresServer, sim: SimServer, tmp_path: Path
) -> None:
    name, url = origin_db
    # The origin's defect, before: Maria reads everyone's dashboard row (the view runs as its
    # owner, past RLS).
    assert len(as_maria(url, "SELECT id FROM public.user_dashboard")) == 3
    before = snapshot(url)

    # --- the dry run: the plan, nothing changed --------------------------------------------
    dry = cli(url, tmp_path, "migrate", "--adopt", "--dry-run")
    keep("dry-run", dry.stdout + dry.stderr)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("Dry run: the origin's schema was detected")
    assert "Plan:" in dry.stdout
    assert snapshot(url) == before

    # --- the adoption ------------------------------------------------------------------------
    done = cli(url, tmp_path, "migrate", "--adopt")
    keep("adopt", done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr
    report = done.stdout
    assert report.startswith("Adopted the origin's database: stamped 0001.")
    assert f"Upgraded to {head_revision()} (head)." in report
    # The plan the dry run printed is what was done.
    assert _same_steps(dry.stdout, report)
    for table, row_id in OWNERLESS:
        assert f"{table} {row_id}: user_id is NULL → moved to facetoface_adopt" in report
    assert (
        "daily_sessions e0000000-0000-4000-8000-000000000009: negative duration_seconds" in report
    )
    for closed in ("02", "03", "04", "06"):
        assert f"mentor_conversations d0000000-0000-4000-8000-0000000000{closed}: live" in report
    assert "d0000000-0000-4000-8000-000000000006: no daily_sessions row is provably its own" in (
        report
    )
    assert "mentor_avatars b0000000-0000-4000-8000-000000000001: tavus_replica_id is NULL" in (
        report
    )
    assert "user_personas c0000000-0000-4000-8000-000000000002: name is NULL" in report

    # Every row is kept: in its table, or (nobody's) in the quarantine, with its data.
    after = {t: fetch(url, f"SELECT count(*) AS n FROM public.{t}")[0]["n"] for t in ORIGIN_TABLES}
    quarantined = fetch(
        url, "SELECT table_name, row_id, reason, row_data FROM facetoface_adopt.quarantined_rows"
    )
    moved: dict[str, int] = {}
    for row in quarantined:
        moved[row["table_name"]] = moved.get(row["table_name"], 0) + 1
        assert row["reason"] == "user_id is NULL"
    assert {(r["table_name"], r["row_id"]) for r in quarantined} >= OWNERLESS
    assert moved == {
        "daily_sessions": 1,
        "mentor_conversations": 1,
        "user_goals": 1,
        "ritual_preferences": 1,
    }
    created_daily = 1  # the conversation whose daily session the origin never wrote
    for table in ORIGIN_TABLES:
        expected = before[table][0] - moved.get(table, 0)
        if table == "daily_sessions":
            expected += created_daily
        assert after[table] == expected, table

    conversations = {
        str(r["id"])[-2:]: r
        for r in fetch(
            url,
            "SELECT mc.id, mc.status, mc.failure_code, mc.daily_session_id::text AS ds,"
            " mc.conversation_name, ds.session_status, ds.session_metadata"
            " FROM mentor_conversations mc JOIN daily_sessions ds ON ds.id = mc.daily_session_id",
        )
    }
    assert {k: (v["status"], v["failure_code"]) for k, v in conversations.items()} == {
        "01": ("ended", None),
        "02": ("ended", "closed_by_adoption"),
        "03": ("ended", "closed_by_adoption"),
        "04": ("ended", "closed_by_adoption"),
        "05": ("active", None),
        "06": ("ended", "closed_by_adoption"),
    }
    # Linked where provable: the double-click's two pairs by their identical stamps, João's
    # week-old one as the only row within seconds; the one with no row got its own.
    for n in ("01", "02", "03", "04", "05"):
        assert conversations[n]["ds"] == f"e0000000-0000-4000-8000-0000000000{n}"
    assert '"adopted"' in conversations["06"]["session_metadata"]
    assert {k: v["session_status"] for k, v in conversations.items()} == {
        "01": "completed",
        "02": "interrupted",
        "03": "interrupted",
        "04": "interrupted",
        "05": "started",
        "06": "interrupted",
    }
    assert all(v["conversation_name"].startswith("origin:") for v in conversations.values())
    [untouched] = fetch(
        url,
        "SELECT session_status FROM daily_sessions WHERE id = $1",
        _uuid("e0000000-0000-4000-8000-000000000008"),
    )
    assert untouched["session_status"] == "completed"
    [skewed] = fetch(
        url,
        "SELECT duration_seconds FROM daily_sessions WHERE id = $1",
        _uuid("e0000000-0000-4000-8000-000000000009"),
    )
    assert skewed["duration_seconds"] is None
    [persona] = fetch(url, "SELECT mentor_avatar_id::text FROM user_personas WHERE name = 'Sage'")
    assert persona["mentor_avatar_id"] == "b0000000-0000-4000-8000-000000000001"

    # The origin's defects the schema allows are fixed.
    [virtue_fk] = fetch(
        url,
        "SELECT confdeltype::text FROM pg_constraint WHERE conrelid = 'virtue_collection'::regclass"
        " AND confrelid = 'daily_sessions'::regclass",
    )
    assert virtue_fk["confdeltype"] == "n"  # ON DELETE SET NULL
    assert (
        fetch(
            url,
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            " AND relkind IN ('v', 'm')"
            " AND NOT coalesce('security_invoker=true' = ANY (reloptions), false)",
        )
        == []
    )
    assert (
        fetch(
            url,
            "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND prosecdef"
            " AND NOT coalesce('search_path=\"\"' = ANY (proconfig), false)",
        )
        == []
    )
    assert (
        fetch(
            url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND NOT rowsecurity"
        )
        == []
    )
    policies = {r["policyname"] for r in fetch(url, "SELECT policyname FROM pg_policies")}
    assert "Users can read all profiles" not in policies
    assert "Users can manage their own sessions" not in policies
    assert "profiles_select_own" in policies
    # After: Maria's dashboard is hers alone, and signing up still makes a profile.
    assert [str(r["id"]) for r in as_maria(url, "SELECT id FROM public.user_dashboard")] == [MARIA]
    execute(
        url,
        "INSERT INTO auth.users (id, email, raw_user_meta_data) VALUES"
        " ('44444444-4444-4444-8444-444444444444', 'lia@example.com',"
        ' \'{"full_name": "Lia"}\')',
    )
    [lia] = fetch(url, "SELECT full_name, language FROM profiles WHERE email = 'lia@example.com'")
    assert (lia["full_name"], lia["language"]) == ("Lia", "en")

    # --- again: nothing to do (the command prints this report; it ran twice above) --------
    again = adopt_database(settings(url)).render()
    keep("again", again)
    assert again.startswith("Nothing to do: the database is managed by facetoface at")
    quiet = snapshot(url)
    assert adopt_database(settings(url), dry_run=True).render().startswith("Nothing to do")
    assert snapshot(url) == quiet

    # --- serve starts on it; the origin's app starts and ends through /functions/v1 ---------
    app_url = create_app_role(pg_server, name)
    with serve(app_url, sim, tmp_path) as (base, served):
        maria = {"Authorization": f"Bearer {mint_token(served, user_id=_uuid(MARIA))}"}
        joao = {"Authorization": f"Bearer {mint_token(served, user_id=_uuid(JOAO))}"}
        with httpx.Client(base_url=base, timeout=15) as client:
            start = client.post(
                "/functions/v1/start-tavus-session", json={"user_id": MARIA}, headers=maria
            )
            assert start.status_code == 200, start.text
            started = start.json()
            end = client.post(
                "/functions/v1/end-tavus-session",
                json={"tavus_conversation_id": started["conversation_id"]},
                headers=maria,
            )
            assert end.status_code == 200, end.text
            assert end.json()["success"] is True
            history = client.get("/v1/sessions", headers=maria).json()["items"]
            assert started["daily_session_id"] in {s["id"] for s in history}
            assert len(history) == 4  # three adopted video sessions and the new one
            # João's session from five minutes ago is still his live one: rejoin or end it.
            rejoin = client.post("/functions/v1/start-tavus-session", headers=joao)
            assert rejoin.status_code == 409, rejoin.text
            assert rejoin.json()["conversation_id"] == "c7d4b2e8f6a19"
            assert rejoin.json()["daily_session_id"] == "e0000000-0000-4000-8000-000000000005"
            ended = client.post(
                "/functions/v1/end-tavus-session",
                json={"tavus_conversation_id": "c7d4b2e8f6a19"},
                headers=joao,
            )
            assert ended.status_code == 200, ended.text
            keep(
                "serve",
                "\n".join(
                    f"{label}: {r.status_code} {r.text}"
                    for label, r in (
                        ("maria start", start),
                        ("maria end (tavus_conversation_id only)", end),
                        ("joao start (his origin session is live)", rejoin),
                        ("joao end of the origin session", ended),
                    )
                )
                + "\n",
            )

    # --- rolling back: the README's SQL lets the Edge Functions' own writes through again ---
    readme = (HERE.parents[1] / "README.md").read_text()
    block = re.search(r"\*\*Rolling back\.\*\*.*?```sql\n(.*?)```", readme, re.S)
    assert block is not None, "the README lost its rollback SQL"
    execute(url, block.group(1))
    execute(url, ORIGIN_START_AND_END)
    rows = fetch(
        url,
        "SELECT mc.status, ds.session_status FROM mentor_conversations mc, daily_sessions ds"
        " WHERE mc.tavus_conversation_id LIKE 'corigin%' AND ds.session_metadata->>'by' = 'edge'",
    )
    assert {tuple(r) for r in rows} == {("completed", "completed")}


#: What the Edge Functions write (as `service_role`, through the REST API): start twice (a
#: double click), then end both, as their code does it.
ORIGIN_START_AND_END = f"""
SET ROLE service_role;
INSERT INTO public.mentor_conversations (user_id, tavus_conversation_id, replica_id, persona_id,
  session_type, status, start_time)
VALUES ('{MARIA}', 'corigin000001', 'r6ca16dbe104', 'p1c81be642e7', 'extended', 'active', now()),
       ('{MARIA}', 'corigin000002', 'r6ca16dbe104', 'p1c81be642e7', 'extended', 'active', now());
INSERT INTO public.daily_sessions (user_id, session_type, session_status, started_at,
  session_date, session_metadata)
VALUES ('{MARIA}', 'face_to_face', 'started', now(), current_date, '{{"by": "edge"}}'),
       ('{MARIA}', 'face_to_face', 'started', now(), current_date, '{{"by": "edge"}}');
UPDATE public.mentor_conversations SET end_time = now(), duration_seconds = 5,
  status = 'completed' WHERE tavus_conversation_id LIKE 'corigin%' AND user_id = '{MARIA}';
UPDATE public.daily_sessions SET completed_at = now(), duration_seconds = 5,
  session_status = 'completed' WHERE session_metadata->>'by' = 'edge' AND user_id = '{MARIA}';
RESET ROLE;
"""


def _same_steps(planned: str, done: str) -> bool:
    """The dry run's steps and findings are the adoption's, but for ids generated on the way
    (the new daily session's id) and the last line about the upgrade."""

    def lines(text: str) -> list[str]:
        body = text.split("\n", 3)[-1]
        return [line for line in body.splitlines() if "new daily_sessions row" not in line]

    return lines(planned) == lines(done)


def _uuid(value: str) -> uuid.UUID:
    return uuid.UUID(value)


@contextmanager
def serve(database_url: str, sim: SimServer, logs: Path) -> Iterator[tuple[str, Settings]]:
    """`facetoface serve` on the adopted database (as the application's login role), ready."""
    port = command.free_port()
    base = f"http://127.0.0.1:{port}"
    env = command.clean_environment(
        DATABASE_URL=database_url,
        ENVIRONMENT="test",
        SUPABASE_JWT_SECRET=TEST_JWT_SECRET,
        LOG_LEVEL="WARNING",
        HOST="127.0.0.1",
        PORT=str(port),
        PUBLIC_BASE_URL=base,
        TAVUS_API_KEY=sim.config.api_key,
        TAVUS_BASE_URL=sim.api_url,
        TAVUS_DEFAULT_PERSONA_ID="p0000default",
        RECONCILE_INTERVAL_SECONDS="0",
    )
    with command.serving(env, url=base, logs=logs, ready="/readyz"):
        yield (
            base,
            Settings(  # type: ignore[call-arg]
                _env_file=None, environment="test", supabase_jwt_secret=TEST_JWT_SECRET
            ),
        )
