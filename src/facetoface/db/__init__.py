"""The database: engine, the transaction boundary, identity and roles, failure classification.

What the rest of the service uses is listed in `__all__` (a test keeps it curated); the
modules behind it: `database` (the boundary), `roles` (who a transaction acts as),
`statements` (SQL parsed once), `failures` (every failure as a 503 or a bug), `admission`
(load shedding), `connections` (engine, liveness, deadlines), `migrations` (Alembic) and
`embedded` (the development PostgreSQL).
"""

from facetoface.db.admission import recording_tavus_outcome
from facetoface.db.connections import create_engine
from facetoface.db.database import Database
from facetoface.db.failures import DatabaseUnavailable
from facetoface.db.migrations import alembic_config, run_migrations
from facetoface.db.roles import Identity, Role, app_login_role_sql
from facetoface.db.statements import Rows, Statement

__all__ = [
    "Database",
    "DatabaseUnavailable",
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
