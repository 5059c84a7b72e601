"""The PL/pgSQL functions: one source file each, and that file is what the database runs.

Two checks (`facetoface.migrations.functions` explains the layout):
- drift: on a database migrated to head, installing each source file again changes nothing
  (`pg_get_functiondef` before and after are equal), and every function in the `facetoface`
  schema has a source file;
- the newest frozen copy of each function (what the last migration that touched it installs)
  is byte for byte its source file, so a change to a source file without a migration fails.
"""

from __future__ import annotations

import psycopg
import pytest

from facetoface.migrations.functions import SOURCES, frozen, frozen_revisions, source

_DEFINITIONS = """
SELECT p.proname, pg_get_functiondef(p.oid) AS definition
  FROM pg_proc p
 WHERE p.pronamespace = 'facetoface'::regnamespace
 ORDER BY p.proname
"""


def _definitions(conn: psycopg.Connection) -> dict[str, str]:
    return {name: definition for name, definition in conn.execute(_DEFINITIONS).fetchall()}


def test_every_function_has_a_source_file(pg_database_url: str) -> None:
    with psycopg.connect(pg_database_url) as conn:
        assert sorted(_definitions(conn)) == sorted(SOURCES)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_the_database_runs_the_source_file(pg_database_url: str, name: str) -> None:
    with psycopg.connect(pg_database_url) as conn:
        installed = _definitions(conn)[name]
        conn.execute(source(name).encode())  # CREATE OR REPLACE, rolled back below
        again = _definitions(conn)[name]
        conn.rollback()
    assert again == installed, f"{SOURCES[name]} differs from what the migrations installed"


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_the_newest_frozen_copy_is_the_source_file(name: str) -> None:
    revisions = frozen_revisions(name)
    assert revisions, f"no migration installs {name}"
    assert frozen(revisions[-1], name) == source(name), (
        f"{SOURCES[name]} changed after migration {revisions[-1]} froze it: write a migration "
        f"that installs it (python -m facetoface.migrations.functions <revision> {name})"
    )
