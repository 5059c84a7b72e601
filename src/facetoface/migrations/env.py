"""Alembic environment: runs migrations over a synchronous connection of the same driver.

Synchronous (psycopg's blocking API behind the same `postgresql+psycopg` URL): migrating
needs no event loop, so it runs the same from the CLI, a thread, or inside a running loop.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

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
