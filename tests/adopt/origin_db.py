"""The origin's database for the adoption tests: the settings an operator adopts it with, SQL
run on it (each call on a connection of its own, as the owner), and the origin's schema with
or without its data."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg

from facetoface.config import Settings

HERE = Path(__file__).resolve().parent

#: The adoption is one transaction, and the database layer's deadline (the statement timeout
#: plus 2 s) covers a whole transaction: on a busy machine an adoption outlasts the default
#: 8 s. Ten minutes, as an operator adopting a large database would set.
STATEMENT_TIMEOUT_MS = 600_000


def settings(url: str) -> Settings:
    """The settings `migrate --adopt` runs with on the database at `url`."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        environment="test",
        database_url=url,
        db_statement_timeout_ms=STATEMENT_TIMEOUT_MS,
    )


async def _connected(url: str, work: Any) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await work(conn)
    finally:
        await conn.close()


def execute(url: str, *scripts: str) -> None:
    """Run `scripts` one after another."""

    async def run(conn: asyncpg.Connection) -> None:
        for script in scripts:
            await conn.execute(script)

    asyncio.run(_connected(url, run))


def fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """The rows of `sql`."""
    return list(asyncio.run(_connected(url, lambda conn: conn.fetch(sql, *args))))


def scalar(url: str, sql: str) -> object:
    """The first column of `sql`'s first row."""
    return asyncio.run(_connected(url, lambda conn: conn.fetchval(sql)))


def origin_schema(url: str, *extra: str) -> None:
    """The origin's tables (empty), then `extra` SQL."""
    execute(url, (HERE / "origin_schema.sql").read_text(), *extra)


def origin_with_data(url: str, *extra: str) -> None:
    """The origin's tables with its sample data, then `extra` SQL."""
    execute(
        url,
        (HERE / "origin_schema.sql").read_text(),
        (HERE / "origin_data.sql").read_text(),
        *extra,
    )
