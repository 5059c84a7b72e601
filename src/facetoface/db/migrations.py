"""Alembic wiring: where the migrations live, and running them."""

from __future__ import annotations

import functools
from importlib.resources import files

from alembic.config import Config as AlembicConfig

from facetoface.config import Settings

MIGRATIONS_PATH = str(files("facetoface") / "migrations")


def alembic_config(settings: Settings) -> AlembicConfig:
    """Alembic configuration pointing at the packaged migrations and `settings`' database."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", MIGRATIONS_PATH)
    cfg.set_main_option("sqlalchemy.url", settings.sqlalchemy_url.replace("%", "%%"))
    return cfg


@functools.cache
def head_revision() -> str | None:
    """The newest revision this code knows (read once from the migration scripts: `/readyz`
    asks on every probe)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(MIGRATIONS_PATH).get_current_head()


@functools.cache
def known_revisions() -> frozenset[str]:
    """Every revision this code knows (its migration scripts never change while it runs)."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(MIGRATIONS_PATH).walk_revisions()
    return frozenset(script.revision for script in scripts)


def run_migrations(settings: Settings, revision: str = "head") -> None:
    """Apply migrations up to `revision` (blocking; call from the CLI or a thread)."""
    from alembic import command

    command.upgrade(alembic_config(settings), revision)
