"""Checks of the database: reachable, migrated to head, and, on PostgreSQL, that the role the
service connects as is subject to row-level security and that every table has it on."""

from __future__ import annotations

from dataclasses import dataclass

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import make_url

from facetoface.config import Environment, Settings
from facetoface.db import Database, alembic_config
from facetoface.db.roles import SWITCHED_DB_ROLES
from facetoface.doctor import repository
from facetoface.doctor.report import Check, CheckResult

DATABASE = Check("database", "database")
MIGRATIONS = Check("migrations", "migrations")
ROLE = Check("database_role", "database role")
ROW_LEVEL_SECURITY = Check("row_level_security", "row-level security")

_ROLE_FIX = (
    "serve with a dedicated login role: as the tables' owner run the SQL in docs/security.md "
    "(facetoface.db.app_login_role_sql()), then put that role in DATABASE_URL"
)
_MIGRATE_FIX = "run `facetoface migrate` with the tables' owner's DATABASE_URL"


@dataclass(slots=True)
class DatabaseState:
    """What the database checks learned, for the checks that depend on them."""

    db: Database | None = None
    migrated: bool = False


def describe(settings: Settings) -> str:
    """Where the database is, without credentials."""
    url = make_url(settings.sqlalchemy_url)
    port = f":{url.port}" if url.port else ""
    return f"PostgreSQL {url.host}{port}/{url.database} as {url.username}"


def _error(exc: BaseException, settings: Settings) -> str:
    """The innermost cause's type and first line, with the password scrubbed."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    inner = getattr(exc, "orig", None) or exc
    first = (str(inner).strip().splitlines() or [""])[0][:200]
    password = make_url(settings.sqlalchemy_url).password
    if password:
        first = first.replace(str(password), "***")
    name = type(inner).__name__
    return f"{name}: {first}" if first else name


async def check_database(settings: Settings, state: DatabaseState) -> CheckResult:
    """The database answers a query."""
    where = describe(settings)
    db = Database(settings)
    try:
        await db.ping()
    except Exception as exc:
        await db.dispose()
        return DATABASE.failed(
            f"cannot query {where} ({_error(exc, settings)})",
            "check DATABASE_URL (host, port, database, user, password, sslmode) and that the "
            "server accepts connections from this host",
        )
    state.db = db
    return DATABASE.passed(f"{where} answers")


async def check_migrations(settings: Settings, state: DatabaseState) -> CheckResult:
    """The schema is at this code's migration head."""
    if state.db is None:
        return MIGRATIONS.skipped("needs a reachable database")
    try:
        current, head = await state.db.migration_state()
    except Exception as exc:
        return MIGRATIONS.failed(
            f"cannot read the schema version ({_error(exc, settings)})",
            "let the serving role read alembic_version: the SQL in docs/security.md grants it",
        )
    if current == head:
        state.migrated = True
        return MIGRATIONS.passed(f"at head ({head})")
    if current is None:
        return MIGRATIONS.failed("the database is empty (no migration applied)", _MIGRATE_FIX)
    try:
        ScriptDirectory.from_config(alembic_config(settings)).get_revision(current)
    except CommandError:
        # Newer than this code: it serves when every revision between is backward-compatible.
        verdict = await state.db.schema_verdict()
        if verdict.serves:
            state.migrated = True
            return MIGRATIONS.passed(
                f"at {current}, ahead of this code's {head} by backward-compatible "
                f"revision(s) only ({', '.join(reversed(verdict.ahead_by))}): this code serves it"
            )
        return MIGRATIONS.failed(
            f"at {current}, a revision this code does not know (its head is {head}): "
            f"{verdict.message}",
            'deploy the code version that matches the database (README "Upgrading")',
        )
    return MIGRATIONS.failed(f"at {current}, this code needs {head}", _MIGRATE_FIX)


async def check_role(settings: Settings, state: DatabaseState) -> CheckResult:
    """The serving role is neither superuser, BYPASSRLS nor a table owner."""
    if state.db is None:
        return ROLE.skipped("needs a reachable database")
    async with state.db.transaction() as session:
        role = await repository.serving_role(session)
    escapes = role.escapes()
    if escapes:
        return ROLE.failed(
            f"{role.name} {', '.join(escapes)}: row-level security does not apply to it",
            _ROLE_FIX,
        )
    if state.migrated and settings.db_row_level_security and role.not_member_of:
        return ROLE.failed(
            f"{role.name} is not a member of {', '.join(role.not_member_of)}, so it cannot "
            f"take {'that role' if len(role.not_member_of) == 1 else 'those roles'} per "
            f"transaction (it needs each of {', '.join(SWITCHED_DB_ROLES)})",
            _ROLE_FIX,
        )
    return ROLE.passed(f"{role.name}: not superuser, no BYPASSRLS, owns no table")


async def check_row_level_security(settings: Settings, state: DatabaseState) -> CheckResult:
    """Row-level security is on for every table, and the service uses it."""
    if state.db is None or not state.migrated:
        return ROW_LEVEL_SECURITY.skipped("needs a database migrated to head")
    async with state.db.transaction() as session:
        tables = await repository.tables_row_level_security(session)
    off = [name for name, enabled in tables.items() if not enabled]
    if off:
        return ROW_LEVEL_SECURITY.failed(
            f"off on {len(off)} of {len(tables)} tables: {', '.join(off)}",
            "run `facetoface migrate` (it enables it on every table); a table created by hand "
            "needs ALTER TABLE … ENABLE ROW LEVEL SECURITY and its policies",
        )
    on_all = f"enabled on all {len(tables)} tables"
    if settings.db_row_level_security:
        return ROW_LEVEL_SECURITY.passed(on_all)
    if settings.environment is Environment.production:
        return ROW_LEVEL_SECURITY.failed(
            f"{on_all}, but DB_ROW_LEVEL_SECURITY=false: the service never switches roles",
            "unset DB_ROW_LEVEL_SECURITY (it defaults to true)",
        )
    return ROW_LEVEL_SECURITY.passed(
        f"{on_all}; DB_ROW_LEVEL_SECURITY=false (allowed outside production)",
    )


async def serving_role_problem(db: Database, settings: Settings) -> str | None:
    """One line naming the variable to change when `serve` cannot run safely as the role
    `DATABASE_URL` connects as, else None: in production, a role that escapes row-level
    security (superuser, BYPASSRLS, owner of a table: the doctor's rule); anywhere, queries
    left to a login role that may not read the tables (`DB_ROW_LEVEL_SECURITY=false` with the
    least-privilege role)."""
    async with db.transaction() as session:
        role = await repository.serving_role(session)
    escapes = role.escapes()
    if escapes and settings.environment is Environment.production:
        return (
            f"DATABASE_URL connects as {role.name}, which {', '.join(escapes)}: row-level "
            "security does not apply to it; " + _ROLE_FIX
        )
    if not settings.db_row_level_security and not role.reads_tables:
        return (
            f"DB_ROW_LEVEL_SECURITY=false runs every query as {role.name}, which may not read "
            f"the tables (it only switches to {'/'.join(SWITCHED_DB_ROLES)} per "
            "transaction): unset DB_ROW_LEVEL_SECURITY (it defaults to true)"
        )
    return None
