"""`facetoface migrate --adopt` at scale: 2,000 / 8,000 / 10,000 origin conversations.

    .venv/bin/python -m bench.adopt_scale [--rows 2000,8000,10000]

For each size: a fresh database on 127.0.0.1:5432 (user postgres, trust) gets the origin's
schema (tests/adopt/origin_schema.sql) and generated rows (`generated`: ended conversations,
half with a daily session stamped at the same instant, a quarter within the linking window, a
quarter with none), then is adopted. Prints the adoption's wall time (the transaction, then the
upgrade to head) and the report's own measurements of the locks: how long the origin's writes
waited (the whole transaction from the plan's lock), and how long its reads did (the final
step's ACCESS EXCLUSIVE). Not part of `make test`: the tests assert the work is set-based and
the reads blocked only for the final step instead.
"""

from __future__ import annotations

import argparse
import time
import uuid
from pathlib import Path

import psycopg

from facetoface.config import Settings
from facetoface.migrations.adopt import adopt_database

ORIGIN_SCHEMA = Path(__file__).resolve().parents[1] / "tests" / "adopt" / "origin_schema.sql"
SERVER = "postgresql://postgres@127.0.0.1:5432"


def generated(users: int, per_user: int) -> str:
    """SQL adding `users` origin users with `per_user` ended conversations each."""
    return f"""
INSERT INTO auth.users (id, email)
SELECT ('00000000-0000-4000-9000-' || lpad(to_hex(u), 12, '0'))::uuid,
       'user' || u || '@example.com'
FROM generate_series(1, {users}) AS u;
CREATE TEMP TABLE gen AS
SELECT ('00000000-0000-4000-9000-' || lpad(to_hex(u), 12, '0'))::uuid AS user_id,
       now() - interval '2 days' - (k * interval '1 hour') AS started, k
FROM generate_series(1, {users}) AS u, generate_series(1, {per_user}) AS k;
INSERT INTO public.mentor_conversations (user_id, tavus_conversation_id, session_type, status,
  start_time, end_time, duration_seconds)
SELECT user_id, 'c' || md5(user_id::text || k), 'extended', 'completed', started,
       started + interval '10 minutes', 600 FROM gen;
INSERT INTO public.daily_sessions (user_id, session_type, session_status, started_at,
  session_date)
SELECT user_id, 'face_to_face', 'completed',
       started + CASE WHEN k % 4 = 1 THEN interval '3 seconds' ELSE interval '0' END,
       started::date
FROM gen WHERE k % 4 <> 0;
DROP TABLE gen;
"""


def measure(rows: int) -> tuple[float, float, float]:
    """(seconds the adoption took, seconds writes waited, seconds reads waited) for `rows`
    conversations."""
    name = f"facetoface_adopt_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}".encode())
    try:
        url = f"{SERVER}/{name}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(ORIGIN_SCHEMA.read_text().encode())
            conn.execute(generated(rows // 4, 4).encode())
        settings = Settings(
            _env_file=None, environment="test", database_url=url, db_statement_timeout_ms=0
        )
        started = time.monotonic()
        report = adopt_database(settings)
        took = time.monotonic() - started
        assert report.locks is not None
        return took, report.locks.writes_blocked, report.locks.reads_blocked
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="2000,8000,10000")
    args = parser.parse_args()
    print(f"{'conversations':>13}  {'adoption':>9}  {'writes blocked':>14}  {'reads blocked':>13}")
    for rows in (int(n) for n in args.rows.split(",")):
        took, writes, reads = measure(rows)
        print(f"{rows:>13,}  {took:>8.2f}s  {writes:>13.2f}s  {reads:>12.2f}s")


if __name__ == "__main__":
    main()
