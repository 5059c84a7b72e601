"""The database: engine, the transaction boundary, identity and roles, failure classification.

What the rest of the service uses is listed in `__all__` (a test keeps it curated); the
modules behind it: `database` (the boundary), `roles` (who a transaction acts as),
`statements` (SQL parsed once), `group_commit` (concurrent writes sharing one commit),
`failures` (every failure as a 503 or a bug), `admission` (load shedding), `connections`
(engine, liveness, deadlines), `migrations` (Alembic) and `embedded` (the development
PostgreSQL).

Names are imported on first use (PEP 562): a command that only needs `db.embedded` or
`db.roles` does not pay for SQLAlchemy, psycopg and Alembic at startup.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facetoface.db.admission import recording_tavus_outcome
    from facetoface.db.connections import create_engine
    from facetoface.db.database import Database
    from facetoface.db.failures import DatabaseUnavailable
    from facetoface.db.group_commit import GroupCommit
    from facetoface.db.migrations import alembic_config, run_migrations
    from facetoface.db.roles import Identity, Role, app_login_role_sql
    from facetoface.db.statements import Rows, Statement

#: Each public name and the module it lives in.
_WHERE = {
    "Database": "database",
    "DatabaseUnavailable": "failures",
    "GroupCommit": "group_commit",
    "Identity": "roles",
    "Role": "roles",
    "Rows": "statements",
    "Statement": "statements",
    "alembic_config": "migrations",
    "app_login_role_sql": "roles",
    "create_engine": "connections",
    "recording_tavus_outcome": "admission",
    "run_migrations": "migrations",
}

__all__ = [
    "Database",
    "DatabaseUnavailable",
    "GroupCommit",
    "Identity",
    "Role",
    "Rows",
    "Statement",
    "alembic_config",
    "app_login_role_sql",
    "create_engine",
    "recording_tavus_outcome",
    "run_migrations",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'facetoface.db' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"facetoface.db.{module}"), name)
    globals()[name] = value
    return value
