"""`empty_tables` (tests/conftest.py) keeps one connection per database for the run; a chaos
test that terminates every backend of the database terminates it too, and the next test's
emptying connects again instead of failing."""

from __future__ import annotations

import psycopg

from tests import conftest


async def test_a_terminated_emptying_connection_is_replaced(pg_database_url: str) -> None:
    await conftest.empty_tables(pg_database_url)
    kept = conftest._EMPTYING[pg_database_url]
    with psycopg.connect(pg_database_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [kept.info.backend_pid])
    await conftest.empty_tables(pg_database_url)
    assert conftest._EMPTYING[pg_database_url] is not kept
    assert kept.closed
