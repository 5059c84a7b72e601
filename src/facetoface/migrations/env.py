"""Alembic environment: runs migrations over a synchronous connection of the same driver.

Synchronous (psycopg's blocking API behind the same `postgresql+psycopg` URL): migrating
needs no event loop, so it runs the same from the CLI, a thread, or inside a running loop.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context
from sqlalchemy import Connection, create_engine, pool, text

from facetoface.db.compatibility import MARKERS_EXIST_SQL
from facetoface.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        record_revisions(connection)


def _one(revisions: str | Sequence[str] | None) -> str | None:
    if revisions is None or isinstance(revisions, str):
        return revisions
    return ",".join(revisions)


def record_revisions(connection: Connection) -> None:
    """Write every revision this code knows, and whether it is backward-compatible, into
    `schema_revisions` (once migration 0012 made it), in the migration's transaction: code
    older than the database reads them there (`facetoface.db.compatibility`). A file without
    the marker counts as incompatible: refusing to serve is the safe mistake."""
    if not connection.scalar(text(MARKERS_EXIST_SQL)):
        return
    rows = [
        {
            "revision": script.revision,
            # A merge point follows several: kept as one text the walk cannot follow (refuses).
            "down_revision": _one(script.down_revision),
            "backward_compatible": getattr(script.module, "backward_compatible", False) is True,
        }
        for script in context.script.walk_revisions()
    ]
    connection.execute(
        text(
            "INSERT INTO public.schema_revisions (revision, down_revision, backward_compatible) "
            "VALUES (:revision, :down_revision, :backward_compatible) "
            "ON CONFLICT (revision) DO UPDATE SET down_revision = excluded.down_revision, "
            "backward_compatible = excluded.backward_compatible, recorded_at = now()"
        ),
        rows,
    )


def _run_with_url(url: str) -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set"
    _run_with_url(url)


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `facetoface migrate`")
run_migrations_online()
