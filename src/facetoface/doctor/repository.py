"""What the doctor reads from PostgreSQL's catalogue about the role it connects as.

Only catalogue views every role may read (`pg_roles`, `pg_tables`, `pg_class`); nothing here
touches application data, so it works under the login role's no-privilege default.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from facetoface.db.roles import SWITCHED_DB_ROLES

_ROLE_SQL = text(
    """
    SELECT r.rolname AS name,
           r.rolsuper AS superuser,
           r.rolbypassrls AS bypass_rls,
           ARRAY(SELECT s.name FROM unnest(CAST(:switched AS text[])) AS s(name)
                 WHERE to_regrole(s.name) IS NULL
                    OR NOT pg_has_role(r.oid, to_regrole(s.name)::oid, 'MEMBER')
                 ORDER BY s.name) AS not_member_of,
           ARRAY(SELECT t.tablename::text FROM pg_catalog.pg_tables t
                 WHERE t.schemaname = 'public' AND t.tableowner = r.rolname
                 ORDER BY t.tablename) AS owned_tables,
           CASE WHEN to_regclass('public.facetoface_installation') IS NULL THEN false
                ELSE has_table_privilege('public.facetoface_installation', 'SELECT')
           END AS reads_tables
    FROM pg_catalog.pg_roles r
    WHERE r.rolname = current_user
    """
)

_TABLES_SQL = text(
    """
    SELECT c.relname::text AS name, c.relrowsecurity AS rls
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
    ORDER BY c.relname
    """
)


@dataclass(frozen=True, slots=True)
class ServingRole:
    """The role a connection runs as, and what would let it escape row-level security."""

    name: str
    superuser: bool
    bypass_rls: bool
    owned_tables: tuple[str, ...]
    not_member_of: tuple[str, ...] = ()
    """The roles of `SWITCHED_DB_ROLES` it is not a member of (cannot switch to per
    transaction), or that do not exist."""
    reads_tables: bool = False
    """May read the service's tables as itself (the least-privilege login role may not: it
    only switches to `SWITCHED_DB_ROLES` per transaction)."""

    def escapes(self) -> list[str]:
        """What lets this role escape row-level security (empty: nothing): the one rule the
        doctor reports and production's `serve` refuses to start on."""
        found = []
        if self.superuser:
            found.append("is a superuser")
        if self.bypass_rls:
            found.append("has BYPASSRLS")
        if self.owned_tables:
            shown = ", ".join(self.owned_tables[:3]) + ("…" if len(self.owned_tables) > 3 else "")
            found.append(f"owns {len(self.owned_tables)} table(s) ({shown})")
        return found


async def serving_role(session: AsyncSession) -> ServingRole:
    """The connection's own role (`current_user`)."""
    row = (await session.execute(_ROLE_SQL, {"switched": list(SWITCHED_DB_ROLES)})).one()
    return ServingRole(
        name=row.name,
        superuser=row.superuser,
        bypass_rls=row.bypass_rls,
        owned_tables=tuple(row.owned_tables),
        not_member_of=tuple(row.not_member_of),
        reads_tables=row.reads_tables,
    )


async def tables_row_level_security(session: AsyncSession) -> dict[str, bool]:
    """Every table of schema `public`, and whether row-level security is enabled on it."""
    rows = (await session.execute(_TABLES_SQL)).all()
    return {row.name: row.rls for row in rows}
