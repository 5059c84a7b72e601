"""`facetoface doctor`'s checks against the simulator and real databases: the all-pass case,
then each check failing in turn, each failure with its fix."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from facetoface.config import Settings
from facetoface.db import run_migrations
from facetoface.doctor import Report, Status, diagnose, diagnose_environment, render_json
from facetoface.doctor import render_text as render
from tavus_sim import SimConfig, SimServer
from tests.auth.jwtkit import JwksServer
from tests.doctor.conftest import (
    SCRATCH_PASSWORD,
    Doctor,
    login_url,
    owner_sql,
    production_values,
    settings_of,
)
from tests.support.postgres import APP_ROLE, PostgresServer, fresh_database

DATABASE_CHECKS = ("database", "migrations", "database_role", "row_level_security")


@pytest.fixture(scope="session")
def sim_server() -> Iterator[SimServer]:
    """The simulator standing in for production's Tavus, with a key of its own: production
    refuses the simulator's default key (`sim-key`)."""
    with SimServer(SimConfig(replica_join_delay_ms=20, api_key="tvsk_doctor_simulated")) as server:
        yield server


TAVUS_DEPENDENTS = ("default_persona", "default_replica", "test_mode_create")


async def _sim_post(sim: SimServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sim.api_url, headers={"x-api-key": sim.api_key}) as api:
        response = await api.post(path, json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def statuses(report: Report) -> dict[str, Status]:
    return {check.id: check.status for check in report.checks}


def only_failure(report: Report) -> Any:
    """The one failed check (and its result), asserting that nothing else failed."""
    failed = [check for check in report.checks if check.status is Status.failed]
    assert len(failed) == 1, render(report)
    assert failed[0].fix, "every failure says how to fix it"
    assert not report.ok
    return failed[0]


def assert_all_pass(report: Report) -> None:
    # The mentor's tools are off without TAVUS_TOOL_SECRET (the healthy settings set none).
    expected = {check.id: Status.passed for check in report.checks} | {
        "mentor_tools": Status.not_applicable
    }
    assert statuses(report) == expected, render(report)
    assert report.ok


# --- all pass ---------------------------------------------------------------------------------


async def test_a_healthy_production_deployment_passes_every_check(doctor: Doctor) -> None:
    report = await doctor()

    assert_all_pass(report)
    assert [check.id for check in report.checks] == [
        "settings",
        "database",
        "migrations",
        "database_role",
        "row_level_security",
        "signing_keys",
        "tavus_key",
        "default_persona",
        "default_replica",
        "test_mode_create",
        "mentor_tools",
        "public_base_url",
    ]
    assert render(report).splitlines()[-1] == "All 11 checks passed (1 not applicable): ready."
    assert json.loads(render_json(report))["ok"] is True


async def test_the_test_mode_create_bills_nothing_and_leaves_nothing(
    doctor: Doctor, sim: SimServer
) -> None:
    report = await doctor()

    assert statuses(report)["test_mode_create"] is Status.passed
    overview = sim.conversations()
    assert overview["active"] == 0
    (create,) = overview["creates"]
    assert create["request"]["test_mode"] is True
    assert create["request"]["conversation_name"] == "doctor-test:doctor"
    assert overview["conversations"] == []  # hard-deleted after the check


async def test_development_against_the_simulator_passes(database: str) -> None:
    with SimServer(SimConfig(replica_join_delay_ms=20)) as sim:  # development's key
        settings = settings_of(
            {
                "environment": "development",
                "database_url": database,
                "tavus_sim_port": int(sim.base_url.rsplit(":", 1)[1]),
            }
        )
        assert settings.uses_simulator

        report = await diagnose(settings)

    assert_all_pass(report)
    assert "the Tavus simulator at http://127.0.0.1:" in report.headline


# --- each check failing in turn ----------------------------------------------------------------


async def test_settings_not_fit_for_the_environment(doctor: Doctor) -> None:
    failure = only_failure(await doctor(cors_allowed_origins=["*"]))

    assert failure.id == "settings"
    assert "CORS_ALLOWED_ORIGINS" in failure.detail


async def test_unreadable_settings_skip_everything_else() -> None:
    def load() -> Settings:
        return settings_of({"environment": "production", "port": "not-a-port"})

    report = await diagnose_environment(load)

    failure = only_failure(report)
    assert failure.id == "settings"
    assert "PORT" in failure.detail
    assert "not-a-port" not in render(report)  # values are never echoed (could be secrets)
    assert {check.status for check in report.checks[1:]} == {Status.skipped}


async def test_unreachable_database(doctor: Doctor, closed_port: int) -> None:
    report = await doctor(
        database_url=f"postgresql://facetoface_app@127.0.0.1:{closed_port}/facetoface",
        db_connect_timeout_seconds=2,
    )

    failure = only_failure(report)
    assert failure.id == "database"
    assert "DATABASE_URL" in failure.fix
    assert {statuses(report)[c] for c in DATABASE_CHECKS[1:]} == {Status.skipped}


async def test_unmigrated_database(doctor: Doctor, pg_server: PostgresServer) -> None:
    with fresh_database(pg_server, "doctor_empty") as name:
        report = await doctor(database_url=pg_server.url(name, user=APP_ROLE))

    failure = only_failure(report)
    assert (failure.id, failure.detail) == (
        "migrations",
        "the database is empty (no migration applied)",
    )
    assert "facetoface migrate" in failure.fix


async def test_database_behind_this_codes_head(
    doctor: Doctor, pg_server: PostgresServer, scratch_role: str
) -> None:
    with fresh_database(pg_server, "doctor_old") as name:
        owner_url = pg_server.url(name)
        await asyncio.to_thread(run_migrations, settings_of({"database_url": owner_url}), "0004")
        # Served by a plain login role (the application's role needs later migrations).
        await owner_sql(
            owner_url,
            f"CREATE ROLE {scratch_role} LOGIN PASSWORD '{SCRATCH_PASSWORD}'",
            f"GRANT SELECT ON public.alembic_version TO {scratch_role}",
        )
        try:
            report = await doctor(
                database_url=login_url(pg_server, owner_url, scratch_role, SCRATCH_PASSWORD)
            )
        finally:
            await owner_sql(owner_url, f"DROP OWNED BY {scratch_role}")

    failure = only_failure(report)
    assert failure.id == "migrations"
    assert failure.detail.startswith("at 0004, this code needs ")


async def test_serving_as_a_superuser(doctor: Doctor, pg_database_url: str) -> None:
    failure = only_failure(await doctor(database_url=pg_database_url))

    assert failure.id == "database_role"
    assert failure.detail.startswith("postgres is a superuser, has BYPASSRLS, owns ")
    assert failure.detail.endswith(": row-level security does not apply to it")
    assert "app_login_role_sql" in failure.fix


async def test_serving_as_a_bypassrls_role(
    doctor: Doctor, pg_server: PostgresServer, pg_database_url: str, scratch_role: str
) -> None:
    await owner_sql(
        pg_database_url,
        f"CREATE ROLE {scratch_role} LOGIN BYPASSRLS PASSWORD '{SCRATCH_PASSWORD}'",
        f"GRANT SELECT ON public.alembic_version TO {scratch_role}",
    )

    failure = only_failure(
        await doctor(
            database_url=login_url(pg_server, pg_database_url, scratch_role, SCRATCH_PASSWORD)
        )
    )

    assert failure.id == "database_role"
    assert failure.detail == (
        f"{scratch_role} has BYPASSRLS: row-level security does not apply to it"
    )


async def test_serving_as_a_table_owner(
    doctor: Doctor, pg_server: PostgresServer, pg_database_url: str, scratch_role: str
) -> None:
    # The worker's database, one table given away for the test (the `scratch_role` fixture
    # gives it back to the owner, whatever happens here).
    await owner_sql(
        pg_database_url,
        f"CREATE ROLE {scratch_role} LOGIN PASSWORD '{SCRATCH_PASSWORD}'",
        f"ALTER TABLE public.user_goals OWNER TO {scratch_role}",
        f"GRANT SELECT ON public.alembic_version TO {scratch_role}",
    )

    failure = only_failure(
        await doctor(
            database_url=login_url(pg_server, pg_database_url, scratch_role, SCRATCH_PASSWORD)
        )
    )

    assert failure.id == "database_role"
    assert failure.detail.startswith(f"{scratch_role} owns 1 table(s) (user_goals)")


async def test_serving_role_that_cannot_switch_roles(
    doctor: Doctor, pg_server: PostgresServer, pg_database_url: str, scratch_role: str
) -> None:
    await owner_sql(
        pg_database_url,
        f"CREATE ROLE {scratch_role} LOGIN PASSWORD '{SCRATCH_PASSWORD}'",
        f"GRANT SELECT ON public.alembic_version TO {scratch_role}",
    )

    failure = only_failure(
        await doctor(
            database_url=login_url(pg_server, pg_database_url, scratch_role, SCRATCH_PASSWORD)
        )
    )

    assert failure.id == "database_role"
    assert failure.detail.startswith(
        f"{scratch_role} is not a member of authenticated, facetoface_delegate, "
        "facetoface_service, so it cannot take those roles per transaction"
    )


async def test_serving_role_that_cannot_act_for_a_user(
    doctor: Doctor, pg_server: PostgresServer, pg_database_url: str, scratch_role: str
) -> None:
    """A login role set up as before migration 0016 (authenticated and facetoface_service
    only) cannot take facetoface_delegate, which every service transaction for a user needs."""
    await owner_sql(
        pg_database_url,
        f"CREATE ROLE {scratch_role} LOGIN NOINHERIT PASSWORD '{SCRATCH_PASSWORD}'",
        f"GRANT authenticated, facetoface_service TO {scratch_role}",
        f"GRANT SELECT ON public.alembic_version TO {scratch_role}",
    )
    url = login_url(pg_server, pg_database_url, scratch_role, SCRATCH_PASSWORD)

    # Roles are cluster-wide: migration 0016, run meanwhile by a test on another database,
    # rightly makes every member of facetoface_service (this role too) a delegate. Such a
    # run is revoked and the doctor asked again.
    for _ in range(5):
        await owner_sql(pg_database_url, f"REVOKE facetoface_delegate FROM {scratch_role}")
        report = await doctor(database_url=url)
        if not await is_member(pg_database_url, scratch_role, "facetoface_delegate"):
            break
    else:
        raise AssertionError("a concurrent migration kept granting facetoface_delegate")
    failure = only_failure(report)

    assert failure.id == "database_role"
    assert failure.detail == (
        f"{scratch_role} is not a member of facetoface_delegate, so it cannot take that role "
        "per transaction (it needs each of authenticated, facetoface_delegate, "
        "facetoface_service)"
    )
    assert "app_login_role_sql" in failure.fix


async def is_member(owner_url: str, role: str, of: str) -> bool:
    async with await psycopg.AsyncConnection.connect(owner_url) as conn:
        cursor = await conn.execute(
            "SELECT pg_has_role(%s, %s, 'MEMBER')", (role, of), prepare=False
        )
        row = await cursor.fetchone()
    return bool(row and row[0])


async def test_a_table_without_row_level_security(doctor: Doctor, pg_database_url: str) -> None:
    # The worker's database, row-level security off on one table for the test only.
    await owner_sql(pg_database_url, "ALTER TABLE public.user_goals DISABLE ROW LEVEL SECURITY")
    try:
        failure = only_failure(await doctor())
    finally:
        await owner_sql(pg_database_url, "ALTER TABLE public.user_goals ENABLE ROW LEVEL SECURITY")

    assert failure.id == "row_level_security"
    assert failure.detail.startswith("off on 1 of ")
    assert failure.detail.endswith("tables: user_goals")


async def test_row_level_security_switched_off_in_production(doctor: Doctor) -> None:
    report = await doctor(db_row_level_security=False)

    failed = {check.id: check for check in report.checks if check.status is Status.failed}
    assert set(failed) == {"settings", "row_level_security"}
    assert "DB_ROW_LEVEL_SECURITY=false" in failed["row_level_security"].detail
    # `serve` refuses it too: the settings check says so in its own words.
    assert "DB_ROW_LEVEL_SECURITY=false" in failed["settings"].detail


@pytest.mark.parametrize(
    ("break_it", "detail"),
    [
        ("no_keys", "has no usable signing key (ES256/RS256)"),
        ("not_a_jwks", "is not a JWK set"),
        ("status", "answered HTTP 503"),
    ],
)
async def test_signing_keys_unusable(
    doctor: Doctor, jwks: JwksServer, break_it: str, detail: str
) -> None:
    if break_it == "no_keys":
        jwks.publish()
    elif break_it == "not_a_jwks":
        jwks.raw_body = b'{"keys": "nope"}'
    else:
        jwks.status = 503

    failure = only_failure(await doctor())

    assert failure.id == "signing_keys"
    assert detail in failure.detail
    assert "SUPABASE_URL" in failure.fix


async def test_signing_keys_unreachable(doctor: Doctor, closed_port: int) -> None:
    failure = only_failure(await doctor(supabase_url=f"http://127.0.0.1:{closed_port}"))

    assert failure.id == "signing_keys"
    assert failure.detail.startswith(
        f"cannot fetch the JWKS at http://127.0.0.1:{closed_port}/auth/v1/"
    )


async def test_a_legacy_hs256_project_passes_without_jwks_keys(
    doctor: Doctor, jwks: JwksServer
) -> None:
    jwks.publish()

    report = await doctor(supabase_jwt_secret="a-long-enough-legacy-secret-0123456789abcdef")

    assert statuses(report)["signing_keys"] is Status.passed
    assert "legacy-secret" not in render(report)


async def test_wrong_tavus_key(doctor: Doctor) -> None:
    report = await doctor(tavus_api_key="tvsk_wrong_doctor_key_0123")

    failure = only_failure(report)
    assert failure.id == "tavus_key"
    assert failure.detail.endswith("refused the key (HTTP 401: Invalid access token)")
    assert failure.fix.startswith("set TAVUS_API_KEY to a current key")
    assert {statuses(report)[c] for c in TAVUS_DEPENDENTS} == {Status.skipped}
    assert "tvsk_wrong_doctor_key_0123" not in render(report) + render_json(report)


async def test_production_without_a_tavus_key_never_calls_tavus(
    doctor: Doctor, sim: SimServer
) -> None:
    report = await doctor(tavus_api_key=None)

    checks = {check.id: check for check in report.checks if check.status is Status.failed}
    assert set(checks) == {"settings", "tavus_key"}
    assert checks["tavus_key"].detail.startswith("TAVUS_API_KEY is not set")
    assert {statuses(report)[c] for c in TAVUS_DEPENDENTS} == {Status.skipped}
    assert sim.conversations()["create_requests"] == 0


async def test_tavus_unreachable(doctor: Doctor, closed_port: int) -> None:
    report = await doctor(
        tavus_base_url=f"http://127.0.0.1:{closed_port}/v2", tavus_connect_timeout_seconds=1
    )

    failure = only_failure(report)
    assert failure.id == "tavus_key"
    assert "no answer" in failure.detail
    assert "TAVUS_BASE_URL" in failure.fix


async def test_unknown_default_persona(doctor: Doctor) -> None:
    report = await doctor(tavus_default_persona_id="pnothere0000")

    failure = only_failure(report)
    assert (failure.id, failure.detail) == ("default_persona", "Tavus has no persona pnothere0000")
    assert statuses(report)["test_mode_create"] is Status.skipped


async def test_unknown_default_replica(doctor: Doctor) -> None:
    failure = only_failure(await doctor(tavus_default_replica_id="rnothere0000"))

    assert (failure.id, failure.detail) == ("default_replica", "Tavus has no replica rnothere0000")


async def test_default_replica_still_training(doctor: Doctor, sim: SimServer) -> None:
    sim.set_config(replica_training_ms=3_600_000)
    replica_id = (
        await _sim_post(sim, "/replicas", {"train_video_url": "https://videos.example/me.mp4"})
    )["replica_id"]

    failure = only_failure(await doctor(tavus_default_replica_id=replica_id))

    assert failure.id == "default_replica"
    assert "is not ready (status started, training 0/100)" in failure.detail


async def test_persona_without_a_default_replica_and_none_configured(
    doctor: Doctor, sim: SimServer
) -> None:
    persona_id = (await _sim_post(sim, "/personas", {"system_prompt": "You mentor."}))["persona_id"]

    failure = only_failure(
        await doctor(tavus_default_persona_id=persona_id, tavus_default_replica_id="")
    )

    assert failure.id == "default_replica"
    assert "has no default replica" in failure.detail


async def test_replica_only_mentor_uses_tavus_default_persona(doctor: Doctor) -> None:
    report = await doctor(tavus_default_persona_id="")

    assert statuses(report)["default_persona"] is Status.not_applicable
    assert report.ok, render(report)


@pytest.mark.parametrize(
    ("fault", "detail", "fix"),
    [
        (
            {"kind": "status", "status": 400, "body": {"message": "Invalid properties"}},
            "Tavus refused the create (HTTP 400: Invalid properties)",
            "SESSION_",
        ),
        ({"kind": "out_of_credits"}, "refused: out of credits", "top up"),
        ({"kind": "status", "status": 500}, "create: HTTP 500", "status.tavus.io"),
    ],
)
async def test_test_mode_create_refused(
    doctor: Doctor, sim: SimServer, fault: dict[str, Any], detail: str, fix: str
) -> None:
    sim.add_fault(endpoint="create", **fault)

    failure = only_failure(await doctor())

    assert failure.id == "test_mode_create"
    assert detail in failure.detail
    assert fix in failure.fix


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("http://facetoface.example.com", "http://facetoface.example.com is not HTTPS"),
        ("https://localhost:8443", "is a loopback name: Tavus cannot reach it"),
        ("https://10.1.2.3", "is a private address: Tavus cannot reach it"),
    ],
)
async def test_public_base_url_not_reachable_by_tavus(
    doctor: Doctor, url: str, detail: str
) -> None:
    report = await doctor(public_base_url=url)

    failed = {check.id: check for check in report.checks if check.status is Status.failed}
    failure = failed.pop("public_base_url")
    assert detail in failure.detail
    assert "PUBLIC_BASE_URL" in failure.fix
    # `serve` refuses it too: the settings check says so in its own words.
    settings_detail = failed.pop("settings").detail
    if url.startswith("http://"):
        assert "PUBLIC_BASE_URL must be https://" in settings_detail
    else:
        assert "PUBLIC_BASE_URL names a private address" in settings_detail
    assert not failed


async def test_a_malformed_public_base_url_also_fails_the_create(doctor: Doctor) -> None:
    report = await doctor(public_base_url="facetoface.example.com")

    failed = {check.id: check for check in report.checks if check.status is Status.failed}
    assert set(failed) == {"settings", "test_mode_create", "public_base_url"}
    assert "PUBLIC_BASE_URL must be https://" in failed["settings"].detail
    assert "is not an absolute http(s) URL" in failed["public_base_url"].detail
    # The create sends the callback URL built from it, as a start does: Tavus refuses it.
    assert "callback_url" in failed["test_mode_create"].detail


async def test_a_role_that_cannot_read_the_schema_version(
    doctor: Doctor, pg_server: PostgresServer, pg_database_url: str, scratch_role: str
) -> None:
    await owner_sql(
        pg_database_url, f"CREATE ROLE {scratch_role} LOGIN PASSWORD '{SCRATCH_PASSWORD}'"
    )

    report = await doctor(
        database_url=login_url(pg_server, pg_database_url, scratch_role, SCRATCH_PASSWORD)
    )

    checks = {check.id: check for check in report.checks}
    assert checks["migrations"].status is Status.failed
    assert "permission denied for table alembic_version" in checks["migrations"].detail
    assert checks["row_level_security"].status is Status.skipped


# --- output ------------------------------------------------------------------------------------


async def test_no_secret_reaches_the_report(
    doctor: Doctor, pg_server: PostgresServer, pg_database_url: str
) -> None:
    secret_password = "db-password-never-printed-42"
    report = await doctor(
        database_url=login_url(pg_server, pg_database_url, "nobody_here", secret_password),
        tavus_api_key="tvsk_another_secret_key_9876",
    )

    output = render(report) + render_json(report)
    assert secret_password not in output
    assert "tvsk_another_secret_key_9876" not in output
    assert statuses(report)["database"] is Status.failed


async def test_json_report_shape(doctor: Doctor) -> None:
    report = await doctor(tavus_default_replica_id="rnothere0000")

    data = json.loads(render_json(report))

    assert data["ok"] is False
    assert data["counts"]["fail"] == 1
    by_id = {check["id"]: check for check in data["checks"]}
    assert by_id["default_replica"]["status"] == "fail"
    assert by_id["default_replica"]["fix"]
    assert set(by_id["settings"]) == {"id", "title", "status", "detail", "fix"}


async def test_the_mentor_tools_check_fails_until_setup_registers_them(
    doctor: Doctor, database: str, sim: SimServer, jwks: JwksServer
) -> None:
    from facetoface.app import build_tavus_client
    from facetoface.db import Database
    from facetoface.tools.setup import setup_tools

    secret = {"tavus_tool_secret": "t" * 40}
    failed = only_failure(await doctor(**secret))
    assert failed.id == "mentor_tools"
    assert "facetoface tavus setup" in failed.fix

    settings = settings_of({**production_values(database, sim, jwks), **secret})
    db, tavus = Database(settings), build_tavus_client(settings)
    try:
        await setup_tools(settings, db, tavus)
    finally:
        await tavus.aclose()
        await db.dispose()

    assert statuses(await doctor(**secret))["mentor_tools"] is Status.passed
