"""Bad settings through the real command: each refused in one line on stderr that names the
variable, a non-zero exit, never a traceback (issue 17 item 5, issue 18 item 6).

Production refuses what would let strangers in or leak: a private `PUBLIC_BASE_URL`, a
cleartext `TAVUS_BASE_URL`, a `DATABASE_URL` role that escapes row-level security (checked at
start, the doctor's rule), a public `/metrics`, `null`/`http` CORS origins, the simulator's key,
the development issuer's published secret. Every other command reads the same settings and
fails the same way on a value it cannot read.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from facetoface.config import DEV_JWT_SECRET, SIM_API_KEY
from tests.conftest import app_role_url
from tests.support.cli import Run, clean_environment, cli, free_port
from tests.support.signing import TEST_JWT_SECRET

pytestmark = pytest.mark.e2e

STRONG_METRICS_TOKEN = "k3Jx9QmT2vLp8RzW5nYd7HcF4bGs6AeU"


def production(database_url: str) -> dict[str, str]:
    """A production environment `serve` accepts up to its database check."""
    return clean_environment(
        ENVIRONMENT="production",
        DATABASE_URL=database_url,
        PORT=str(free_port()),
        TAVUS_API_KEY="tvsk_not_a_real_key",
        TAVUS_DEFAULT_PAL_ID="p0000default",
        SUPABASE_URL="https://proj.supabase.co",
        PUBLIC_BASE_URL="https://api.example.com",
        DEPLOYMENT_NAME="acme-prod",
        METRICS_TOKEN=STRONG_METRICS_TOKEN,
        LOG_LEVEL="WARNING",
    )


def assert_one_line(run: Run, variable: str) -> None:
    assert run.returncode not in (0, None), run.stdout
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert variable in lines[0], lines[0]


#: (what changes in the production environment (None: unset), the variable the line names)
REFUSED: list[tuple[dict[str, str | None], str]] = [
    ({"PUBLIC_BASE_URL": "https://127.0.0.1:8443"}, "PUBLIC_BASE_URL"),
    ({"PUBLIC_BASE_URL": "https://192.168.1.20"}, "PUBLIC_BASE_URL"),
    ({"PUBLIC_BASE_URL": "https://localhost"}, "PUBLIC_BASE_URL"),
    ({"TAVUS_BASE_URL": "http://tavusapi.com/v2"}, "TAVUS_BASE_URL"),
    ({"TAVUS_API_KEY": SIM_API_KEY}, "TAVUS_API_KEY"),
    ({"METRICS_TOKEN": None}, "METRICS_TOKEN"),
    ({"METRICS_TOKEN": "1"}, "METRICS_TOKEN"),
    ({"METRICS_TOKEN": None, "METRICS_PORT": "9100", "METRICS_HOST": "0.0.0.0"}, "METRICS_HOST"),
    ({"CORS_ALLOWED_ORIGINS": "null"}, "CORS_ALLOWED_ORIGINS"),
    ({"CORS_ALLOWED_ORIGINS": "https://a.example,http://b.example"}, "CORS_ALLOWED_ORIGINS"),
    ({"SUPABASE_JWT_SECRET": DEV_JWT_SECRET}, "SUPABASE_JWT_SECRET"),
    ({"DB_ROW_LEVEL_SECURITY": "false"}, "DB_ROW_LEVEL_SECURITY"),
    # Unreadable values, in production as anywhere.
    ({"PORT": "eighty"}, "PORT"),
    ({"CORS_ALLOWED_ORIGINS": '["https://a.example"'}, "CORS_ALLOWED_ORIGINS"),
    ({"ENVIRONMENT": "staging"}, "ENVIRONMENT"),
    ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE"),
    ({"METRICS_PORT": "70000"}, "METRICS_PORT"),
    ({"DATABASE_URL": "mysql://db.example.com/app"}, "DATABASE_URL"),
    # Not production, but the development issuer's published secret all the same.
    ({"ENVIRONMENT": "test", "SUPABASE_JWT_SECRET": DEV_JWT_SECRET}, "SUPABASE_JWT_SECRET"),
]


@pytest.mark.parametrize(("change", "variable"), REFUSED, ids=[v for _, v in REFUSED])
def test_serve_refuses_a_bad_setting_in_one_line(
    change: dict[str, str | None], variable: str, pg_database_url: str, tmp_path: Path
) -> None:
    env: dict[str, str | None] = {**production(app_role_url(pg_database_url)), **change}
    given = {key: value for key, value in env.items() if value is not None}
    assert_one_line(cli("serve", env=given, cwd=tmp_path, check=False), variable)


def test_serve_in_production_refuses_a_role_that_escapes_row_level_security(
    pg_database_url: str, tmp_path: Path
) -> None:
    """The owner's URL (a superuser here): the doctor's rule, checked before serving."""
    run = cli("serve", env=production(pg_database_url), cwd=tmp_path, check=False)
    assert_one_line(run, "DATABASE_URL")
    assert "superuser" in run.stderr


@pytest.mark.parametrize("command", ["migrate", "token", "reconcile", "seed-demo", "purge-user"])
def test_every_command_reports_an_unreadable_setting_in_one_line(
    command: str, tmp_path: Path
) -> None:
    env = clean_environment(ENVIRONMENT="development", DATA_DIR=str(tmp_path / "data"))
    env["CORS_ALLOWED_ORIGINS"] = "[not json"
    args = [command] + (
        ["--user-id", "00000000-0000-4000-8000-000000000001", "--yes"]
        if command == "purge-user"
        else []
    )
    run = cli(*args, env=env, cwd=tmp_path, check=False)
    assert_one_line(run, "CORS_ALLOWED_ORIGINS")
    assert "e.g. CORS_ALLOWED_ORIGINS=https://a.example,https://b.example" in run.stderr


def test_row_level_security_off_with_the_least_privilege_role_is_one_line(
    pg_database_url: str, tmp_path: Path
) -> None:
    """Outside production it is allowed, but that role reads no table as itself: said at start
    in one line (it was the application's startup traceback)."""
    env = clean_environment(
        ENVIRONMENT="test",
        SUPABASE_JWT_SECRET=TEST_JWT_SECRET,
        DATABASE_URL=app_role_url(pg_database_url),
        DB_ROW_LEVEL_SECURITY="false",
        PORT=str(free_port()),
        TAVUS_SIM_PORT=str(free_port()),
        LOG_LEVEL="WARNING",
    )
    assert_one_line(cli("serve", env=env, cwd=tmp_path, check=False), "DB_ROW_LEVEL_SECURITY")


def test_token_by_email_as_the_least_privilege_role_is_one_line(
    pg_database_url: str, tmp_path: Path
) -> None:
    env = clean_environment(
        ENVIRONMENT="test",
        SUPABASE_JWT_SECRET=TEST_JWT_SECRET,
        DATABASE_URL=app_role_url(pg_database_url),
        LOG_LEVEL="WARNING",
    )
    run = cli("token", "--email", "maria@example.com", env=env, cwd=tmp_path, check=False)
    # The role reads no table as itself (or, if a grant lets it, finds no profile): either
    # way one line about that email.
    assert_one_line(run, "'maria@example.com'")


def test_token_outside_development_without_a_secret_is_one_line(tmp_path: Path) -> None:
    """The development issuer's secret is not there to fall back on."""
    env = clean_environment(ENVIRONMENT="test", LOG_LEVEL="WARNING")
    run = cli(
        "token",
        "--user-id",
        "00000000-0000-4000-8000-000000000001",
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert_one_line(run, "SUPABASE_JWT_SECRET")


def test_doctor_reports_an_unreadable_setting_without_a_traceback(tmp_path: Path) -> None:
    """The doctor's output is its report: the settings check names the variable."""
    env = clean_environment(ENVIRONMENT="development", DATA_DIR=str(tmp_path / "data"))
    env["CORS_ALLOWED_ORIGINS"] = "[not json"
    run = cli("doctor", env=env, cwd=tmp_path, check=False)
    assert run.returncode == 1
    assert "Traceback" not in run.stdout + run.stderr
    [settings_line] = [
        line for line in run.stdout.splitlines() if line.startswith("FAIL  settings")
    ]
    assert "CORS_ALLOWED_ORIGINS" in settings_line
    assert "e.g. CORS_ALLOWED_ORIGINS=https://a.example,https://b.example" in settings_line
