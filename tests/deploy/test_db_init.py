"""deploy/image/facetoface_db_init.py (`facetoface-db-init` in the image): what it refuses and
how it reads DATABASE_URL. Its whole run — migrations, the login role, its password, then the
replicas connecting with it through PgBouncer — is the compose test's (`make deploy-test`)."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest

from tests.deploy.tools import DEPLOY


def db_init() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "db_init", DEPLOY / "image" / "facetoface_db_init.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("given", "libpq"),
    [
        (
            "postgres://o:pw@db.example:5432/app?ssl=require",
            "postgresql://o:pw@db.example:5432/app?sslmode=require",
        ),
        ("postgresql+psycopg://o:pw@h/app", "postgresql://o:pw@h/app"),
        (
            "postgresql://o:pw@h/app?sslmode=verify-full&ssl=x",
            "postgresql://o:pw@h/app?sslmode=verify-full",
        ),
    ],
)
def test_database_url_is_read_as_the_service_reads_it(given: str, libpq: str) -> None:
    assert db_init()._libpq_url(given) == libpq


def test_refuses_what_is_not_postgresql() -> None:
    with pytest.raises(SystemExit, match="PostgreSQL"):
        db_init()._libpq_url("sqlite:///data/x.db")


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"DATABASE_URL": "postgresql://o:pw@h/app"},
        {"DATABASE_URL": "postgresql://o:pw@h/app", "APP_DB_PASSWORD": "short"},
        {
            "DATABASE_URL": "postgresql://o:pw@h/app",
            "APP_DB_PASSWORD": "x" * 20,
            "APP_DB_USER": "Bad;",
        },
    ],
)
def test_refuses_to_start_without_what_it_needs(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DATABASE_URL", "APP_DB_PASSWORD", "APP_DB_USER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    module = db_init()
    if "APP_DB_USER" in env:
        with pytest.raises(ValueError, match="role name"):
            module.main()
    else:
        assert module.main() == 2
