"""`facetoface migrate --adopt`: take over a PostgreSQL database that already holds the origin's
tables and data (the app whose Edge Functions facetoface replaces), in place, keeping every row.
It is one long procedure read top to bottom, in the order it runs.

What it does, in one transaction (so it either happens whole or not at all), in two phases: the
origin app keeps running during an adoption, so its reads are blocked only for the last one.

1. **Detects** the origin's schema: its six migrated tables in `public` and no `alembic_version`.
2. **Derives the target** from migration 0001 itself: 0001 is run into a scratch schema inside
   the transaction and read back from the catalog (columns, types, defaults, NOT NULL,
   constraints, indexes), so "the state 0001 would have produced" is never restated by hand.
3. **Plans**, holding the tables `SHARE ROW EXCLUSIVE` (`PLAN_LOCK`: plain reads go on, every
   write waits, so nothing planned from can change before it is applied). Each table is copied
   into a temporary *working copy*, given 0001's columns there (the avatar foreign key renamed
   to `mentor_avatar_id`, missing columns added, 0001's defaults), and every data decision is
   made by changing the copies, never `public`. What it cannot simply carry over it reports
   (table, id, reason, what was done) instead of failing half-way:
   - Rows that belong to nobody (`user_id` NULL, or naming no profile) and rows that break a
     new constraint (a CHECK, a duplicate Tavus conversation) are moved, whole, as JSON, to
     `facetoface_adopt.quarantined_rows` (a schema the APIs do not expose), not deleted.
   - NULLs in columns that get NOT NULL are filled with 0001's column default; a column with
     no default and NULLs left (e.g. an avatar without a Tavus replica) stays nullable.
   - `mentor_conversations`: the origin's `completed` becomes `ended`; a callback-token hash
     nobody knows and a name outside this deployment's prefix (`origin:<id>`) are filled in.
   - Impossible rows: a Tavus id the client refuses (`conv 42/../x`) is cleared (the row as it
     was kept in quarantine) and, if live, the row is closed; a live row that starts in the
     future (beyond `FUTURE_SKEW`) is closed. Both are listed.
   - **Sessions the origin left live forever** (its shipped end page never ended them): a
     conversation still `active` that started more than an hour ago (Tavus ends every call by
     then) is closed — `status = ended`, `failure_code = closed_by_adoption`, its end time left
     unknown — and its `daily_sessions` row becomes `interrupted`; of a user's younger live
     conversations the newest stays live (so the user can rejoin or end it) and the others are
     closed the same way.
   - Each conversation is linked to its `daily_sessions` row where that is provable: same
     user, a face-to-face row started at the very same instant (the origin stamped both rows
     with one clock reading), or the only such row within 10 s and vice versa. Otherwise it
     gets a new `daily_sessions` row of its own (`session_metadata.adopted`). Linking is
     set-based (temporary tables and window counts: a handful of statements whatever the
     number of rows). `daily_sessions` rows still `started`/`in_progress` an hour after they
     started, with no live conversation, become `interrupted`.
   - The columns that can become NOT NULL are those with no NULL left in the copy; the rows
     to apply are those whose digest (`_DIGEST`) the plan changed.
4. **Applies it: the final step**, holding the tables `ACCESS EXCLUSIVE` (every DDL statement
   takes that lock until the commit anyway, so all of it is here, after the plan): the origin's
   row-level security policies on these tables are dropped (migration 0005 installs
   facetoface's own), the tables the origin never migrated are created and the others given
   the copies' columns, `virtue_collection`'s foreign key to `daily_sessions` gets `ON DELETE
   SET NULL` (so deleting a session is possible), the origin's constraints are dropped, the
   planned rows applied (three set-based statements a table) and the quarantined ones stored,
   then 0001's NOT NULLs, constraints (same CHECK value sets; named by our convention) and
   indexes (renaming the origin's equivalent ones, dropping the ones a unique constraint makes
   redundant) are made. The origin's defects the schema allows are fixed: every view in
   `public` gets `security_invoker` (the origin's `user_dashboard` ran with its owner's rights
   and bypassed RLS), every SECURITY DEFINER function there gets `search_path = ''` when its
   body names its tables with their schema (else it is reported).
5. **Stamps 0001**; after the commit the normal upgrade runs to the head revision.

The report says how long writes waited (both phases) and how long reads did (the final step,
counted from when ACCESS EXCLUSIVE was asked for: new reads queue behind that request).

The origin's other tables (`user_streaks`, `virtue_collection`, `app_settings`), their policies,
and the profiles' foreign key to `auth.users` are kept as they are. Running it again reports
nothing to do. `--dry-run` does all of it in a transaction that is rolled back, and prints the
plan: nothing changes (it holds the same locks while it runs). Needs PostgreSQL ≥ 14 (15 for
`security_invoker`; on 14 such a view is dropped and reported).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from facetoface.config import Settings
from facetoface.db import Database, alembic_config, run_migrations
from facetoface.db.migrations import head_revision
from facetoface.tavus import validate_conversation_id

#: The origin's migrated tables: all six present (and no alembic_version) means "the origin".
ORIGIN_TABLES = (
    "profiles",
    "onboarding_profiles",
    "user_emotional_categories",
    "user_goals",
    "ritual_preferences",
    "daily_sessions",
)
#: Where 0001 is built to be read back (inside the transaction; dropped before it ends).
TARGET_SCHEMA = "facetoface_adopt_target"
#: Where rows that cannot stay are kept.
QUARANTINE_SCHEMA = "facetoface_adopt"
QUARANTINE = f"{QUARANTINE_SCHEMA}.quarantined_rows"
#: A conversation live for longer than Tavus lets any call run is not running any more.
STALE_AFTER = timedelta(hours=1)
#: A start later than this ahead of the database's clock is impossible (clock skew allowed).
FUTURE_SKEW = timedelta(minutes=5)
#: How far apart a conversation's and its daily session's start may be to pair them.
LINK_WINDOW = timedelta(seconds=10)
#: Held while the plan is made: plain reads (the origin app's) go on, writes wait.
PLAN_LOCK = "SHARE ROW EXCLUSIVE"
ADOPTED_REVISION = "0001"
QUARANTINED = f"moved to {QUARANTINE}"

Outcome = Literal["adopted", "planned", "nothing_to_do", "upgraded"]


class AdoptRefused(Exception):
    """The database cannot be adopted as it is; nothing was changed. The message says why."""


class _RolledBack(Exception):
    """A dry run's way out of its transaction."""


@dataclass(frozen=True, slots=True)
class Finding:
    """A row (or object) that could not simply be carried over, and what was done with it."""

    table: str
    row_id: str
    reason: str
    action: str


@dataclass(frozen=True, slots=True)
class LockTimes:
    """How long the adoption held the origin's tables, in seconds: writes waited for all of
    `writes_blocked` (the plan and the final step), reads only for its last `reads_blocked`
    (the final step's ACCESS EXCLUSIVE, counted from the moment it was asked for)."""

    writes_blocked: float
    reads_blocked: float

    def sentence(self) -> str:
        """The report's line about the locks."""
        return (
            f"The origin's tables took no writes for {self.writes_blocked:.2f} s; reads went on "
            f"for the first {self.writes_blocked - self.reads_blocked:.2f} s (the plan, "
            f"{PLAN_LOCK}) and waited only for the last {self.reads_blocked:.2f} s "
            "(the final step, ACCESS EXCLUSIVE)."
        )


@dataclass
class AdoptReport:
    outcome: Outcome
    message: str
    steps: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    revision: str | None = None
    locks: LockTimes | None = None

    def render(self, *, max_findings: int = 200) -> str:
        """The report as printed by `facetoface migrate --adopt`."""
        lines = [self.message]
        if self.steps:
            lines.append("")
            lines.append("Plan:" if self.outcome == "planned" else "Done:")
            lines += [f"  {n:>2}. {step}" for n, step in enumerate(self.steps, 1)]
        if self.findings:
            lines.append("")
            lines.append(f"Rows and objects that needed attention ({len(self.findings)}):")
            for f in self.findings[:max_findings]:
                lines.append(f"  - {f.table} {f.row_id}: {f.reason} → {f.action}")
            if len(self.findings) > max_findings:
                lines.append(f"  … and {len(self.findings) - max_findings} more")
        elif self.outcome in ("adopted", "planned"):
            lines.append("")
            lines.append("No row needed attention.")
        return "\n".join(lines)


# --- the catalog -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    notnull: bool
    default: str | None


@dataclass(frozen=True, slots=True)
class Constraint:
    table: str
    name: str
    kind: str  # p, u, f, c
    definition: str
    columns: tuple[str, ...]
    ref_table: str | None
    ref_schema: str | None


@dataclass(frozen=True, slots=True)
class Index:
    table: str
    name: str
    definition: str
    unique: bool
    partial: bool
    columns: tuple[str, ...]

    @property
    def shape(self) -> str:
        """The definition without its name and schema: equal shapes are the same index."""
        return _INDEX_NAME.sub(r"CREATE \1INDEX ON \3 ", self.definition)


_INDEX_NAME = re.compile(r"^CREATE (UNIQUE )?INDEX (\S+) ON (?:ONLY )?(?:\S+\.)?(\S+) ")


@dataclass
class Catalog:
    columns: dict[str, dict[str, Column]]
    constraints: list[Constraint]
    indexes: list[Index]

    def has(self, table: str) -> bool:
        return table in self.columns

    def of(self, table: str, kind: str) -> list[Constraint]:
        return [c for c in self.constraints if c.table == table and c.kind == kind]


async def _rows(session: AsyncSession, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    return list((await session.execute(text(sql), params or {})).all())


async def read_catalog(session: AsyncSession, schema: str) -> Catalog:
    """Tables of `schema` as the catalog describes them, definitions written as seen from
    inside it (unqualified names), so they can be replayed against `public`."""
    await session.execute(text("SELECT set_config('search_path', :s, true)"), {"s": schema})
    columns: dict[str, dict[str, Column]] = defaultdict(dict)
    for r in await _rows(
        session,
        """
        SELECT c.relname AS tbl, a.attname AS col, format_type(a.atttypid, a.atttypmod) AS typ,
               a.attnotnull AS notnull, pg_get_expr(d.adbin, d.adrelid) AS dflt
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
        WHERE n.nspname = :schema AND c.relkind IN ('r', 'p')
        ORDER BY c.relname, a.attnum
        """,
        {"schema": schema},
    ):
        columns[r.tbl][r.col] = Column(r.col, r.typ, r.notnull, r.dflt)
    constraints = [
        Constraint(
            r.tbl, r.conname, r.contype, r.definition, tuple(r.cols), r.ref_table, r.ref_schema
        )
        for r in await _rows(
            session,
            """
            SELECT cl.relname AS tbl, co.conname, co.contype::text AS contype,
                   pg_get_constraintdef(co.oid) AS definition,
                   ARRAY(SELECT a.attname FROM unnest(co.conkey) WITH ORDINALITY AS k(num, ord)
                         JOIN pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.num
                         ORDER BY k.ord)::text[] AS cols,
                   rf.relname AS ref_table, rn.nspname AS ref_schema
            FROM pg_constraint co
            JOIN pg_class cl ON cl.oid = co.conrelid
            JOIN pg_namespace n ON n.oid = cl.relnamespace
            LEFT JOIN pg_class rf ON rf.oid = co.confrelid
            LEFT JOIN pg_namespace rn ON rn.oid = rf.relnamespace
            WHERE n.nspname = :schema AND co.contype IN ('p', 'u', 'f', 'c')
            ORDER BY cl.relname, co.conname
            """,
            {"schema": schema},
        )
    ]
    indexes = [
        Index(r.tbl, r.idx, r.definition, r.indisunique, r.partial, tuple(r.cols))
        for r in await _rows(
            session,
            """
            SELECT t.relname AS tbl, i.relname AS idx, pg_get_indexdef(x.indexrelid) AS definition,
                   x.indisunique, x.indpred IS NOT NULL AS partial,
                   ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY AS k(num, ord)
                         JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.num
                         ORDER BY k.ord)::text[] AS cols
            FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname = :schema
              AND NOT EXISTS (SELECT FROM pg_constraint c
                              WHERE c.conindid = x.indexrelid AND c.contype IN ('p', 'u', 'x'))
            ORDER BY t.relname, i.relname
            """,
            {"schema": schema},
        )
    ]
    await session.execute(text("SELECT set_config('search_path', 'public', true)"))
    return Catalog(dict(columns), constraints, indexes)


# --- entry points ----------------------------------------------------------------------------
def adopt_database(settings: Settings, *, dry_run: bool = False) -> AdoptReport:
    """Adopt the database at `settings.database_url` (blocking: call it from the CLI or a
    thread). Raises AdoptRefused (nothing changed) when it cannot."""
    report = asyncio.run(_adopt(settings, dry_run=dry_run))
    if report.outcome in ("adopted", "upgraded"):
        run_migrations(settings)
        report.revision = head_revision()
        report.message += f" Upgraded to {report.revision} (head)."
    return report


async def _adopt(settings: Settings, *, dry_run: bool) -> AdoptReport:
    db = Database(settings)
    try:
        async with db.engine.connect() as conn:
            version = await conn.scalar(text("SELECT current_setting('server_version_num')::int"))
            stamped = await conn.scalar(text("SELECT to_regclass('public.alembic_version')"))
            revision = (
                await conn.scalar(text("SELECT max(version_num) FROM public.alembic_version"))
                if stamped
                else None
            )
        if int(version or 0) < 140000:
            raise AdoptRefused("PostgreSQL 14 or newer is needed")
        head = head_revision()
        if stamped is not None:
            if revision == head:
                return AdoptReport(
                    "nothing_to_do",
                    f"Nothing to do: the database is managed by facetoface at {revision} "
                    "(the head revision).",
                    revision=revision,
                )
            if revision is None:
                raise AdoptRefused("alembic_version exists but is empty: stamp it or drop it")
            return AdoptReport(
                "planned" if dry_run else "upgraded",
                f"Already adopted (at {revision}): only the normal upgrade to {head} "
                + ("would run." if dry_run else "runs."),
                revision=revision,
            )
        adoption: Adoption | None = None
        try:
            # Bounded by the server's own timeouts (set by the adoption), not a call deadline.
            async with db.transaction(deadline=False) as session:
                adoption = Adoption(session, settings, server_version=int(version or 0))
                await adoption.run()
                if dry_run:
                    raise _RolledBack
        except _RolledBack:
            pass
        except DBAPIError as exc:
            raise AdoptRefused(
                f"the database refused a step ({type(exc.orig).__name__}: {exc.orig}); "
                "nothing was changed"
            ) from exc
        # Held from each LOCK to the commit (or the dry run's rollback): measured, reported.
        locks = adoption.lock_times(time.monotonic()) if adoption is not None else None
        locked = f" {locks.sentence()}" if locks is not None else ""
        return AdoptReport(
            "planned" if dry_run else "adopted",
            "Dry run: the origin's schema was detected; this is what adopting it does "
            "(nothing was changed)." + locked
            if dry_run
            else "Adopted the origin's database: stamped 0001." + locked,
            adoption.steps if adoption else [],
            adoption.findings if adoption else [],
            revision=None if dry_run else ADOPTED_REVISION,
            locks=locks,
        )
    finally:
        await db.dispose()


# --- the adoption ----------------------------------------------------------------------------
class Adoption:
    """One adoption, inside one transaction: each method is a step of the module docstring."""

    target: Catalog
    public: Catalog
    tables: list[str]
    widen: list[tuple[str, str]]
    closed: set[uuid.UUID]
    invalid_live: set[uuid.UUID]

    def __init__(self, session: AsyncSession, settings: Settings, *, server_version: int) -> None:
        self.session = session
        self.settings = settings
        self.server_version = server_version
        self.steps: list[str] = []
        self.findings: list[Finding] = []
        self.invalid_live = set()
        #: When the plan's lock was taken and when ACCESS EXCLUSIVE was asked for
        #: (time.monotonic()); both are held until the end of the transaction.
        self.locked_at: float | None = None
        self.exclusive_at: float | None = None
        #: Per existing table, the ALTER TABLE clauses that bring its columns to 0001's.
        self.column_changes: dict[str, list[str]] = {}
        self.column_steps: list[str] = []
        self.created: list[str] = []
        self.not_null: dict[str, list[str]] = {}
        self.dropped_constraints = 0

    def lock_times(self, now: float) -> LockTimes | None:
        """The locks' durations up to `now` (the commit), or None if none was taken."""
        if self.locked_at is None:
            return None
        exclusive = now - self.exclusive_at if self.exclusive_at is not None else 0.0
        return LockTimes(writes_blocked=now - self.locked_at, reads_blocked=exclusive)

    async def sql(self, statement: str, params: dict[str, Any] | None = None) -> Any:
        return await self.session.execute(text(statement), params or {})

    async def rows(self, statement: str, params: dict[str, Any] | None = None) -> list[Any]:
        return await _rows(self.session, statement, params)

    def step(self, title: str) -> None:
        self.steps.append(title)

    def find(self, table: str, row_id: Any, reason: str, action: str) -> None:
        self.findings.append(Finding(table, str(row_id), reason, action))

    async def run(self) -> None:
        await self.sql("SET LOCAL statement_timeout = 0")
        await self.sql("SET LOCAL lock_timeout = '10s'")
        await self.sql("SELECT set_config('search_path', 'public', true)")
        present = {
            r.tablename
            for r in await self.rows("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        missing = [t for t in ORIGIN_TABLES if t not in present]
        if len(missing) == len(ORIGIN_TABLES):
            raise AdoptRefused(
                "no origin tables in this database: use `facetoface migrate` (no --adopt)"
            )
        if missing:
            raise AdoptRefused(f"not the origin's schema: missing {', '.join(missing)}")
        self.target = await self._build_target()
        self.public = await read_catalog(self.session, "public")
        self.tables = list(self.target.columns)
        self._check_types()
        self.step(
            "detected the origin's schema (" + ", ".join(ORIGIN_TABLES) + ") without "
            "alembic_version; migration 0001 read back as the target"
        )
        existing = [t for t in self.tables if self.public.has(t)]
        tables = ", ".join(f"public.{t}" for t in existing)
        # The plan: the origin's reads go on, its writes wait (so what is planned from cannot
        # change before it is applied); every change is made to working copies.
        await self.sql(f"LOCK TABLE {tables} IN {PLAN_LOCK} MODE")
        self.locked_at = time.monotonic()
        self._plan_columns()
        await self._copy_tables()
        await self._quarantine_ownerless()
        await self._fill_defaults()
        await self._conversations()
        await self._quarantine_check_violations()
        await self._deduplicate()
        await self._invalid_tavus_ids()
        await self._close_stale()
        await self._link()
        await self._interrupt_stale_daily_sessions()
        await self._plan_not_null()
        await self._diff_copies()
        # The final step: DDL takes ACCESS EXCLUSIVE anyway (until the commit), so it is all
        # here, with the planned rows applied set-based. Readers queue from the request on.
        self.exclusive_at = time.monotonic()
        await self.sql(f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE")
        await self._drop_policies(existing)
        await self._create_and_complete_tables()
        await self._fix_virtue_foreign_key()
        await self._drop_origin_constraints()
        await self._apply_rows()
        await self._apply_quarantine()
        await self._not_null()
        await self._constraints()
        await self._indexes()
        await self._views_and_functions()
        await self.sql(f"DROP SCHEMA {TARGET_SCHEMA} CASCADE")
        await self.sql(
            "CREATE TABLE public.alembic_version (version_num VARCHAR(32) NOT NULL,"
            " CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
        await self.sql("INSERT INTO public.alembic_version (version_num) VALUES ('0001')")
        self.step("stamped 0001: `facetoface migrate` takes it from here (0002 → head)")

    # --- the target --------------------------------------------------------------------------
    async def _build_target(self) -> Catalog:
        await self.sql(f"CREATE SCHEMA {TARGET_SCHEMA}")
        await self.sql("SELECT set_config('search_path', :s, true)", {"s": TARGET_SCHEMA})
        module = (
            ScriptDirectory.from_config(alembic_config(self.settings))
            .get_revision(ADOPTED_REVISION)
            .module
        )

        def build(sync_session: Any) -> None:
            connection: Connection = sync_session.connection()
            with Operations.context(MigrationContext.configure(connection)):
                module.upgrade()

        await self.session.run_sync(build)
        return await read_catalog(self.session, TARGET_SCHEMA)

    def _check_types(self) -> None:
        self.widen: list[tuple[str, str]] = []
        wrong = []
        for table in self.tables:
            if not self.public.has(table):
                continue
            for name, column in self.target.columns[table].items():
                found = self.public.columns[table].get(name)
                if found is None or found.type == column.type:
                    continue
                if column.type == "text" and found.type.startswith("character varying"):
                    self.widen.append((table, name))
                else:
                    wrong.append(f"{table}.{name} is {found.type}, facetoface needs {column.type}")
        if wrong:
            raise AdoptRefused("column types differ: " + "; ".join(wrong))

    # --- the plan: on working copies, under PLAN_LOCK ----------------------------------------
    def _plan_columns(self) -> None:
        """What brings each table's columns to 0001's: a table to create, or ALTER TABLE
        clauses run on its working copy now and on `public` in the final step. `self.public`
        describes the tables as they will be from here on."""
        for table in self.tables:
            target = self.target.columns[table]
            if not self.public.has(table):
                self.created.append(table)
                self.public.columns[table] = {
                    n: Column(n, c.type, False, c.default) for n, c in target.items()
                }
                self.column_steps.append(
                    f"created {table} (the origin used it but never migrated it)"
                )
                continue
            have = self.public.columns[table]
            clauses = self.column_changes[table] = []
            if table == "user_personas" and "mentor_avatar_id" not in have:
                old = self._avatar_column()
                if old is not None:
                    clauses.append(f"RENAME COLUMN {_ident(old)} TO mentor_avatar_id")
                    have["mentor_avatar_id"] = have.pop(old)
                    self.column_steps.append(
                        f"user_personas.{old} (its foreign key to mentor_avatars)"
                        " → mentor_avatar_id"
                    )
            for t, name in [w for w in self.widen if w[0] == table]:
                clauses.append(f"ALTER COLUMN {_ident(name)} TYPE text")
                self.column_steps.append(f"{t}.{name}: varchar → text")
            added = []
            for name, column in target.items():
                if name in have:
                    continue
                default = f" DEFAULT {column.default}" if column.default else ""
                clauses.append(f"ADD COLUMN {_ident(name)} {column.type}{default}")
                have[name] = Column(name, column.type, False, column.default)
                added.append(name)
            if added:
                self.column_steps.append(f"completed {table}: added {', '.join(added)}")
            changed = []
            for name, column in target.items():
                if column.default and have[name].default != column.default:
                    clauses.append(f"ALTER COLUMN {_ident(name)} SET DEFAULT {column.default}")
                    changed.append(f"{name} → {column.default}")
            if changed:
                self.column_steps.append(f"{table}: column defaults {', '.join(changed)}")

    def _avatar_column(self) -> str | None:
        """The hand-made user_personas' one column with a foreign key to mentor_avatars."""
        fks = [
            c
            for c in self.public.of("user_personas", "f")
            if c.ref_table == "mentor_avatars" and len(c.columns) == 1
        ]
        return fks[0].columns[0] if len(fks) == 1 else None

    def _columns_sql(self, table: str) -> str:
        return ", ".join(
            f"{_ident(c.name)} {c.type}" + (f" DEFAULT {c.default}" if c.default else "")
            for c in self.target.columns[table].values()
        )

    async def _copy_tables(self) -> None:
        """A working copy of each table (a temporary table, already with 0001's columns), and
        a digest of each of its rows: the plan changes the copies, the final step applies to
        `public` only the rows whose digest changed."""
        await self.sql(
            "CREATE TEMPORARY TABLE adopt_quarantine (table_name text NOT NULL,"
            " row_id text NOT NULL, reason text NOT NULL, row_data jsonb NOT NULL) ON COMMIT DROP"
        )
        await self.sql(
            "CREATE TEMPORARY TABLE adopt_before (table_name text, id uuid, digest text,"
            " PRIMARY KEY (table_name, id)) ON COMMIT DROP"
        )
        for table in self.tables:
            copy = _work(table)
            if table in self.created:
                await self.sql(
                    f"CREATE TEMPORARY TABLE {copy} ({self._columns_sql(table)}) ON COMMIT DROP"
                )
            else:
                # Defaults included: a row the plan inserts gets what public would give it.
                await self.sql(
                    f"CREATE TEMPORARY TABLE {copy} (LIKE public.{table} INCLUDING DEFAULTS)"
                    " ON COMMIT DROP"
                )
                await self.sql(f"INSERT INTO {copy} SELECT * FROM public.{table}")  # noqa: S608
                for clause in self.column_changes[table]:
                    await self.sql(f"ALTER TABLE {copy} {clause}")
            await self.sql(f"ALTER TABLE {copy} ADD PRIMARY KEY (id)")
            await self.sql(
                f"INSERT INTO adopt_before SELECT :t, id, {_DIGEST} FROM {copy} c",  # noqa: S608
                {"t": table},
            )
        await self.sql("ANALYZE " + ", ".join(_work(t) for t in self.tables) + ", adopt_before")

    async def _quarantine(self, table: str, where: str, reason: str, **params: Any) -> int:
        if table == "profiles":
            # A profile's rows cascade from it: never move one. (0001 keeps the origin's CHECK
            # sets, so a profile the origin accepted cannot break them.)
            offending = await self.rows(
                f"SELECT id FROM adopt_work_profiles WHERE {where}",  # noqa: S608
                params,
            )
            if offending:
                raise AdoptRefused(
                    f"profiles {', '.join(str(r.id) for r in offending)}: {reason}; fix them "
                    "first (nothing was changed)"
                )
            return 0
        moved = await self.rows(
            f"WITH moved AS (DELETE FROM {_work(table)} WHERE {where} RETURNING *)"  # noqa: S608
            " INSERT INTO adopt_quarantine (table_name, row_id, reason, row_data)"
            " SELECT :table, moved.id::text, :reason, to_jsonb(moved) FROM moved"
            " RETURNING row_id",
            {"table": table, "reason": reason, **params},
        )
        for r in moved:
            self.find(table, r.row_id, reason, QUARANTINED)
        return len(moved)

    async def _quarantine_ownerless(self) -> None:
        moved = 0
        for table in self.tables:
            if "user_id" not in self.target.columns[table]:
                continue
            moved += await self._quarantine(table, "user_id IS NULL", "user_id is NULL")
            moved += await self._quarantine(
                table,
                "NOT EXISTS (SELECT FROM adopt_work_profiles p WHERE p.id = user_id)",
                "user_id names no profile",
            )
        if moved:
            self.step(f"quarantined {moved} rows that belong to no user")

    async def _fill_defaults(self) -> None:
        for table in self.tables:
            for name, column in self.target.columns[table].items():
                if not column.notnull or column.default is None:
                    continue
                result = await self.sql(
                    f"UPDATE {_work(table)} SET {_ident(name)} = {column.default}"  # noqa: S608
                    f" WHERE {_ident(name)} IS NULL"
                )
                if result.rowcount:
                    self.step(f"{table}.{name}: {result.rowcount} NULLs set to {column.default}")

    async def _conversations(self) -> None:
        mapped = await self.sql(
            "UPDATE adopt_work_mentor_conversations SET status = 'ended'"
            " WHERE status = 'completed' OR status IS NULL"
        )
        if mapped.rowcount:
            self.step(f"mentor_conversations: {mapped.rowcount} `completed` → `ended`")
        for r in await self.rows(
            "UPDATE adopt_work_mentor_conversations SET status = 'ended' WHERE status NOT IN"
            " ('starting', 'active', 'ending', 'ended', 'failed', 'indeterminate')"
            " RETURNING id"
        ):
            self.find("mentor_conversations", r.id, "unknown status", "set to ended")
        for r in await self.rows(
            "UPDATE adopt_work_mentor_conversations SET session_type = 'face_to_face'"
            " WHERE session_type IS NULL OR session_type NOT IN ('face_to_face', 'extended')"
            " RETURNING id"
        ):
            self.find("mentor_conversations", r.id, "unknown session_type", "set to face_to_face")
        filled = await self.sql(
            "UPDATE adopt_work_mentor_conversations SET"
            " conversation_name = coalesce(conversation_name, 'origin:' || id::text),"
            " callback_token_hash = coalesce(callback_token_hash,"
            " sha256(convert_to(gen_random_uuid()::text, 'UTF8')))"
            " WHERE conversation_name IS NULL OR callback_token_hash IS NULL"
        )
        if filled.rowcount:
            self.step(
                f"mentor_conversations: {filled.rowcount} rows named `origin:<id>` (outside "
                "this deployment's prefix) with an unguessable callback-token hash"
            )
        for table in ("mentor_conversations", "daily_sessions"):
            for r in await self.rows(
                f"UPDATE {_work(table)} SET duration_seconds = NULL"  # noqa: S608
                " WHERE duration_seconds < 0 RETURNING id"
            ):
                self.find(table, r.id, "negative duration_seconds", "set to NULL")

    async def _quarantine_check_violations(self) -> None:
        for table in self.tables:
            for check in self.target.of(table, "c"):
                expression = check.definition.removeprefix("CHECK ")
                await self._quarantine(table, f"({expression}) IS FALSE", f"breaks {check.name}")

    async def _deduplicate(self) -> None:
        for table in self.tables:
            for unique in self.target.of(table, "u"):
                if unique.columns == ("daily_session_id",):
                    continue  # filled by the link below, one row each by construction
                columns = ", ".join(_ident(c) for c in unique.columns)
                not_null = " AND ".join(f"{_ident(c)} IS NOT NULL" for c in unique.columns)
                await self._quarantine(
                    table,
                    f"id IN (SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY"  # noqa: S608
                    f" {columns} ORDER BY created_at, id) AS n FROM {_work(table)}"
                    f" WHERE {not_null}) d WHERE n > 1)",
                    f"duplicate ({', '.join(unique.columns)}) of an older row",
                )

    async def _invalid_tavus_ids(self) -> None:
        """A Tavus id the client refuses to put in a URL (`conv 42/../x`) can never be ended
        or fetched through Tavus's API: kept live it locked its user out (409 forever) and
        made every end path fail. The row stays, its id cleared (the whole row kept in
        quarantine as it was); if it was live, `_close_stale` closes it."""
        invalid: dict[uuid.UUID, bool] = {}
        for r in await self.rows(
            "SELECT id, tavus_conversation_id, status IN ('starting', 'active', 'ending',"
            " 'indeterminate') AS live FROM adopt_work_mentor_conversations"
            # Only the suspects leave the database (the client's rule, spelled in SQL); the
            # client's own check below decides.
            " WHERE tavus_conversation_id !~ '^[A-Za-z0-9_-]{1,128}$'"
        ):
            try:
                validate_conversation_id(r.tavus_conversation_id)
            except ValueError:
                invalid[r.id] = r.live
        self.invalid_live = {row_id for row_id, live in invalid.items() if live}
        if not invalid:
            return
        reason = "tavus_conversation_id is not a Tavus id (cannot be ended or fetched at Tavus)"
        await self.sql(
            "INSERT INTO adopt_quarantine (table_name, row_id, reason, row_data)"
            " SELECT 'mentor_conversations', id::text, :reason, to_jsonb(c)"
            " FROM adopt_work_mentor_conversations c WHERE id = ANY(CAST(:ids AS uuid[]))",
            {"ids": list(invalid), "reason": reason},
        )
        await self.sql(
            "UPDATE adopt_work_mentor_conversations SET tavus_conversation_id = NULL"
            " WHERE id = ANY(CAST(:ids AS uuid[]))",
            {"ids": list(invalid)},
        )
        for row_id in invalid:
            self.find(
                "mentor_conversations",
                row_id,
                reason,
                f"id cleared (the row as it was: {QUARANTINE}); end it in Tavus's dashboard "
                "if it still runs",
            )

    async def _close_stale(self) -> None:
        now = await self.session.scalar(text("SELECT now()"))
        assert isinstance(now, datetime)
        live = await self.rows(
            "SELECT id, user_id, coalesce(start_time, created_at) AS started"
            " FROM adopt_work_mentor_conversations"
            " WHERE status IN ('starting', 'active', 'ending', 'indeterminate')"
            " ORDER BY user_id, coalesce(start_time, created_at) DESC NULLS LAST, id"
        )
        close: dict[uuid.UUID, str] = {}
        kept: set[uuid.UUID] = set()
        for r in live:
            if r.id in self.invalid_live:
                close[r.id] = "live with an invalid Tavus id (nothing could end it)"
            elif r.started is not None and r.started - now > FUTURE_SKEW:
                # Kept as "the newest", it would close a genuinely younger live row.
                close[r.id] = f"started {r.started.isoformat()}, in the future (impossible)"
            elif r.started is None or now - r.started > STALE_AFTER:
                close[r.id] = "live for over an hour (Tavus ends every call by then)"
            elif r.user_id in kept:
                close[r.id] = "an older live session of a user with a newer one"
            else:
                kept.add(r.user_id)
        for row_id, reason in close.items():
            self.find(
                "mentor_conversations",
                row_id,
                reason,
                "closed: ended, failure_code closed_by_adoption, daily session interrupted",
            )
        if close:
            await self.sql(
                "UPDATE adopt_work_mentor_conversations SET status = 'ended',"
                " failure_code = 'closed_by_adoption', updated_at = now()"
                " WHERE id = ANY(CAST(:ids AS uuid[]))",
                {"ids": list(close)},
            )
        self.closed = set(close)
        self.step(
            f"sessions the origin left live: {len(close)} closed, {len(kept)} kept live "
            "(the newest of a user, under an hour old)"
        )

    async def _link(self) -> None:
        """Set-based: a handful of statements whatever the number of rows (a Python loop over
        candidate pairs was quadratic: 8,000 conversations took minutes under the locks)."""
        # Fresh statistics: the tables were just rewritten, and a plan made for "a few rows"
        # (nested loops) is quadratic again.
        await self.sql("ANALYZE adopt_work_mentor_conversations, adopt_work_daily_sessions")
        # Every (conversation, free face-to-face session) pair of one user within the window.
        await self.sql(
            "CREATE TEMPORARY TABLE adopt_link_candidates ON COMMIT DROP AS"
            " SELECT c.id AS mc, s.id AS ds, c.start_time = s.started_at AS exact"
            " FROM adopt_work_mentor_conversations c"
            " JOIN adopt_work_daily_sessions s ON s.user_id = c.user_id"
            " AND s.session_type = 'face_to_face' AND s.started_at IS NOT NULL"
            " AND s.started_at BETWEEN c.start_time - CAST(:window AS interval)"
            " AND c.start_time + CAST(:window AS interval)"
            " WHERE c.daily_session_id IS NULL AND c.start_time IS NOT NULL"
            " AND NOT EXISTS (SELECT FROM adopt_work_mentor_conversations t"
            " WHERE t.daily_session_id = s.id)",
            {"window": LINK_WINDOW},
        )
        await self.sql("ANALYZE adopt_link_candidates")
        await self.sql(
            "CREATE TEMPORARY TABLE adopt_link_pairs (mc uuid PRIMARY KEY, ds uuid UNIQUE)"
            " ON COMMIT DROP"
        )
        # First the same instant (the origin stamped both rows from one clock reading), then
        # the window, among what is left: a pair only where each is the other's only candidate.
        for exact_only in (True, False):
            await self.sql(
                "INSERT INTO adopt_link_pairs (mc, ds) SELECT mc, ds FROM (SELECT mc, ds,"
                " count(*) OVER (PARTITION BY mc) AS per_mc,"
                " count(*) OVER (PARTITION BY ds) AS per_ds"
                " FROM adopt_link_candidates c WHERE (exact OR NOT CAST(:exact_only AS boolean))"
                " AND NOT EXISTS (SELECT FROM adopt_link_pairs p WHERE p.mc = c.mc)"
                " AND NOT EXISTS (SELECT FROM adopt_link_pairs p WHERE p.ds = c.ds)) open"
                " WHERE per_mc = 1 AND per_ds = 1",
                {"exact_only": exact_only},
            )
            await self.sql("ANALYZE adopt_link_pairs")
        linked = await self.sql(
            "UPDATE adopt_work_mentor_conversations mc SET daily_session_id = p.ds"
            " FROM adopt_link_pairs p WHERE mc.id = p.mc"
        )
        # The linked session tells the same story as its conversation.
        await self.sql(
            "UPDATE adopt_work_daily_sessions ds SET session_status = 'interrupted'"
            " FROM adopt_work_mentor_conversations mc WHERE mc.daily_session_id = ds.id"
            " AND mc.failure_code = 'closed_by_adoption'"
            " AND ds.session_status IN ('started', 'in_progress')"
        )
        # The rest get a daily_sessions row of their own, all in one statement each.
        await self.sql(
            "CREATE TEMPORARY TABLE adopt_new_sessions ON COMMIT DROP AS"
            " SELECT c.id AS mc, gen_random_uuid() AS ds, c.user_id,"
            " coalesce(c.start_time, c.created_at) AS started, c.end_time, c.duration_seconds,"
            " c.tavus_conversation_id,"
            " CASE WHEN c.id = ANY(CAST(:closed AS uuid[])) THEN 'interrupted'"
            " WHEN c.status = 'ended' THEN 'completed'"
            " WHEN c.status = 'failed' THEN 'failed' ELSE 'started' END AS status"
            " FROM adopt_work_mentor_conversations c WHERE c.daily_session_id IS NULL",
            {"closed": list(self.closed)},
        )
        await self.sql(
            "INSERT INTO adopt_work_daily_sessions (id, user_id, session_type, session_status,"
            " started_at, completed_at, duration_seconds, session_date, created_at,"
            " session_metadata) SELECT ds, user_id, 'face_to_face', status, started, end_time,"
            " duration_seconds, coalesce(started, now())::date, coalesce(started, now()),"
            " jsonb_build_object('adopted', 'no provable daily_sessions row',"
            " 'tavus_conversation_id', tavus_conversation_id) FROM adopt_new_sessions"
        )
        orphans = await self.rows(
            "UPDATE adopt_work_mentor_conversations mc SET daily_session_id = n.ds"
            " FROM adopt_new_sessions n WHERE mc.id = n.mc RETURNING mc.id, n.ds"
        )
        for c in orphans:
            self.find(
                "mentor_conversations",
                c.id,
                "no daily_sessions row is provably its own",
                f"linked to a new daily_sessions row {c.ds}",
            )
        self.step(
            f"linked {linked.rowcount} conversations to their daily_sessions rows (proven by "
            f"user and start time); {len(orphans)} got a new row of their own"
        )

    async def _interrupt_stale_daily_sessions(self) -> None:
        stale = await self.rows(
            "UPDATE adopt_work_daily_sessions ds SET session_status = 'interrupted'"
            " WHERE ds.session_status IN ('started', 'in_progress')"
            " AND coalesce(ds.started_at, ds.created_at) < now() - CAST(:stale AS interval)"
            " AND NOT EXISTS (SELECT FROM adopt_work_mentor_conversations mc"
            " WHERE mc.daily_session_id = ds.id"
            " AND mc.status IN ('starting', 'active', 'ending', 'indeterminate'))"
            " RETURNING id",
            {"stale": STALE_AFTER},
        )
        for r in stale:
            self.find(
                "daily_sessions", r.id, "started over an hour ago, never ended", "interrupted"
            )
        if stale:
            self.step(f"daily_sessions: {len(stale)} left `started` forever → `interrupted`")

    async def _plan_not_null(self) -> None:
        """Which columns become NOT NULL: those without a NULL left in the working copy."""
        for table in self.tables:
            have = self.public.columns[table]
            for name, column in self.target.columns[table].items():
                if not column.notnull or have[name].notnull:
                    continue
                nulls = await self.rows(
                    f"SELECT id FROM {_work(table)} WHERE {_ident(name)} IS NULL"  # noqa: S608
                )
                for r in nulls:
                    self.find(
                        table,
                        r.id,
                        f"{name} is NULL and has no default",
                        f"{table}.{name} left nullable (fill it, then SET NOT NULL)",
                    )
                if not nulls:
                    self.not_null.setdefault(table, []).append(name)

    async def _diff_copies(self) -> None:
        """The rows the plan changed, inserted or removed: what the final step applies."""
        await self.sql(
            "CREATE TEMPORARY TABLE adopt_changes (table_name text, id uuid, change text,"
            " PRIMARY KEY (table_name, id)) ON COMMIT DROP"
        )
        for table in self.tables:
            await self.sql(
                "INSERT INTO adopt_changes SELECT :t, id, CASE WHEN w.digest IS NULL THEN"  # noqa: S608
                " CAST(:delete AS text) WHEN b.digest IS NULL THEN CAST(:insert AS text)"
                " ELSE CAST(:update AS text) END"
                " FROM (SELECT id, digest FROM adopt_before WHERE table_name = :t) b"
                f" FULL JOIN (SELECT id, {_DIGEST} AS digest FROM {_work(table)} c) w"
                " USING (id) WHERE b.digest IS DISTINCT FROM w.digest",
                {"t": table, "delete": _DELETE, "insert": _INSERT, "update": _UPDATE},
            )
        await self.sql("ANALYZE adopt_changes")

    # --- the final step: ACCESS EXCLUSIVE ------------------------------------------------------
    async def _drop_policies(self, tables: list[str]) -> None:
        policies = await self.rows(
            "SELECT tablename, policyname FROM pg_policies WHERE schemaname = 'public'"
            " AND tablename = ANY(CAST(:t AS text[])) ORDER BY tablename, policyname",
            {"t": tables},
        )
        for p in policies:
            await self.sql(f"DROP POLICY {_ident(p.policyname)} ON public.{p.tablename}")
        if policies:
            self.step(
                f"dropped the origin's {len(policies)} row-level security policies on these "
                "tables (migration 0005 installs facetoface's own): "
                + "; ".join(f'{p.tablename} "{p.policyname}"' for p in policies)
            )

    async def _create_and_complete_tables(self) -> None:
        for table in self.tables:
            if table in self.created:
                await self.sql(f"CREATE TABLE public.{table} ({self._columns_sql(table)})")
            for clause in self.column_changes.get(table, []):
                await self.sql(f"ALTER TABLE public.{table} {clause}")
        self.steps += self.column_steps

    async def _fix_virtue_foreign_key(self) -> None:
        fks = await self.rows(
            """
            SELECT co.conname, cl.relname AS tbl,
                   ARRAY(SELECT a.attname FROM unnest(co.conkey) AS k(num)
                         JOIN pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.num)
                         ::text[] AS cols
            FROM pg_constraint co JOIN pg_class cl ON cl.oid = co.conrelid
            WHERE co.contype = 'f' AND co.confrelid = 'public.daily_sessions'::regclass
              AND co.confdeltype = 'a' AND cl.relnamespace = 'public'::regnamespace
              AND cl.relname <> ALL(CAST(:ours AS text[]))
            """,
            {"ours": self.tables},
        )
        for fk in fks:
            column = fk.cols[0]
            await self.sql(f"ALTER TABLE public.{fk.tbl} DROP CONSTRAINT {_ident(fk.conname)}")
            await self.sql(
                f"ALTER TABLE public.{fk.tbl} ADD CONSTRAINT {_ident(fk.conname)} FOREIGN KEY"
                f" ({_ident(column)}) REFERENCES public.daily_sessions(id) ON DELETE SET NULL"
            )
            self.step(
                f"{fk.tbl}.{column} → daily_sessions: ON DELETE SET NULL (it blocked deleting "
                "a session)"
            )

    async def _drop_origin_constraints(self) -> None:
        """The origin's constraints and unique indexes go before its rows are changed (a
        planned value may break one, e.g. a session type its CHECK did not know)."""
        ours = set(self.tables)
        for table in self.tables:
            for c in self.public.constraints:
                if c.table != table or c.kind == "p":
                    continue
                if c.kind == "f" and not (c.ref_schema == "public" and c.ref_table in ours):
                    continue  # e.g. profiles.id → auth.users: Supabase's link, kept
                await self.sql(f"ALTER TABLE public.{table} DROP CONSTRAINT {_ident(c.name)}")
                self.dropped_constraints += 1
            for index in self.public.indexes:
                if index.table == table and index.unique:
                    await self.sql(f"DROP INDEX public.{_ident(index.name)}")
                    self.dropped_constraints += 1
        self.public.indexes = [i for i in self.public.indexes if not i.unique]

    async def _apply_rows(self) -> None:
        """The working copies' changed rows into `public`: three statements a table."""
        counts = dict.fromkeys((_DELETE, _UPDATE, _INSERT), 0)
        for table in self.tables:
            columns = [_ident(c) for c in self.public.columns[table]]
            changes = (
                "JOIN adopt_changes x ON x.id = w.id AND x.table_name = :t AND x.change = :change"
            )
            result = await self.sql(
                f"DELETE FROM public.{table} p USING adopt_changes x"  # noqa: S608
                " WHERE x.id = p.id AND x.table_name = :t AND x.change = :change",
                {"t": table, "change": _DELETE},
            )
            counts[_DELETE] += result.rowcount
            result = await self.sql(
                f"UPDATE public.{table} p SET "  # noqa: S608
                + ", ".join(f"{c} = w.{c}" for c in columns if c != "id")
                + f" FROM {_work(table)} w {changes} WHERE p.id = w.id",
                {"t": table, "change": _UPDATE},
            )
            counts[_UPDATE] += result.rowcount
            result = await self.sql(
                f"INSERT INTO public.{table} ({', '.join(columns)})"  # noqa: S608
                f" SELECT {', '.join(f'w.{c}' for c in columns)} FROM {_work(table)} w {changes}",
                {"t": table, "change": _INSERT},
            )
            counts[_INSERT] += result.rowcount
        self.step(
            f"applied the plan: {counts[_UPDATE]} rows changed, {counts[_INSERT]} inserted, "
            f"{counts[_DELETE]} moved out"
        )

    async def _apply_quarantine(self) -> None:
        if not await self.session.scalar(text("SELECT EXISTS (SELECT FROM adopt_quarantine)")):
            return
        await self.sql(f"CREATE SCHEMA IF NOT EXISTS {QUARANTINE_SCHEMA}")
        await self.sql(f"REVOKE ALL ON SCHEMA {QUARANTINE_SCHEMA} FROM PUBLIC")
        await self.sql(
            f"CREATE TABLE IF NOT EXISTS {QUARANTINE} (table_name text NOT NULL,"
            " row_id text NOT NULL, reason text NOT NULL, row_data jsonb NOT NULL,"
            " quarantined_at timestamptz NOT NULL DEFAULT now())"
        )
        await self.sql(
            f"INSERT INTO {QUARANTINE} (table_name, row_id, reason, row_data)"  # noqa: S608
            " SELECT table_name, row_id, reason, row_data FROM adopt_quarantine"
        )

    async def _not_null(self) -> None:
        """One statement a table: its NOT NULL columns are checked in one scan."""
        for table, names in self.not_null.items():
            await self.sql(
                f"ALTER TABLE public.{table} "
                + ", ".join(f"ALTER COLUMN {_ident(n)} SET NOT NULL" for n in names)
            )
        if self.not_null:
            self.step(
                "NOT NULL: "
                + ", ".join(f"{t}.{n}" for t, names in self.not_null.items() for n in names)
            )

    async def _constraints(self) -> None:
        renamed = []
        for table in self.tables:
            [pk] = self.target.of(table, "p")
            current = self.public.of(table, "p")
            if current and current[0].name != pk.name:
                await self.sql(
                    f"ALTER TABLE public.{table} RENAME CONSTRAINT {_ident(current[0].name)}"
                    f" TO {_ident(pk.name)}"
                )
                renamed.append(f"{current[0].name} → {pk.name}")
            elif not current:
                await self.sql(
                    f"ALTER TABLE public.{table} ADD CONSTRAINT {pk.name} {pk.definition}"
                )
        for kind in ("c", "u", "f"):
            for table in self.tables:
                for c in self.target.of(table, kind):
                    await self.sql(
                        f"ALTER TABLE public.{table} ADD CONSTRAINT {_ident(c.name)} {c.definition}"
                    )
        self.step(
            f"constraints: the origin's {self.dropped_constraints} replaced by 0001's "
            f"{sum(len(self.target.of(t, k)) for t in self.tables for k in 'cuf')} (same CHECK "
            "value sets, our names)"
            + (f"; primary keys renamed ({', '.join(renamed)})" if renamed else "")
        )

    async def _indexes(self) -> None:
        created, renamed, dropped = [], [], []
        for index in self.target.indexes:
            if any(i.name == index.name and i.table == index.table for i in self.public.indexes):
                continue
            same = [
                i
                for i in self.public.indexes
                if i.table == index.table and i.shape == index.shape and i.name != index.name
            ]
            if same:
                await self.sql(f"ALTER INDEX public.{_ident(same[0].name)} RENAME TO {index.name}")
                self.public.indexes.remove(same[0])
                renamed.append(f"{same[0].name} → {index.name}")
                continue
            definition = _INDEX_NAME.sub(
                lambda m: f"CREATE {m.group(1) or ''}INDEX {m.group(2)} ON public.{m.group(3)} ",
                index.definition,
            )
            await self.sql(definition)
            created.append(index.name)
        # An index on a leading part of one facetoface has (a unique constraint's or one just
        # made) only costs writes: the longer one serves the same lookups.
        covering = [(c.table, c.columns) for c in self.target.constraints if c.kind in ("p", "u")]
        covering += [(i.table, i.columns) for i in self.target.indexes if not i.partial]
        for index in self.public.indexes:
            if index.partial or index.unique:
                continue
            if any(
                table == index.table and columns[: len(index.columns)] == index.columns
                for table, columns in covering
            ):
                await self.sql(f"DROP INDEX public.{_ident(index.name)}")
                dropped.append(index.name)
        parts = []
        if renamed:
            parts.append(f"renamed {', '.join(renamed)}")
        if created:
            parts.append(f"created {', '.join(created)}")
        if dropped:
            parts.append(f"dropped {', '.join(dropped)} (a longer index or constraint covers them)")
        if parts:
            self.step("indexes: " + "; ".join(parts))

    async def _views_and_functions(self) -> None:
        views = await self.rows(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace"
            " AND c.relkind IN ('v', 'm')"
            " AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)"
        )
        for view in views:
            if self.server_version >= 150000:
                await self.sql(
                    f"ALTER VIEW public.{_ident(view.relname)} SET (security_invoker = true)"
                )
                self.step(
                    f"view {view.relname}: security_invoker (it ran with its owner's rights "
                    "and bypassed row-level security)"
                )
            else:
                await self.sql(f"DROP VIEW public.{_ident(view.relname)}")
                self.find(
                    "view",
                    view.relname,
                    "bypasses row-level security; PostgreSQL 14 has no security_invoker",
                    "dropped (recreate it as a security-invoker function)",
                )
        definers = await self.rows(
            "SELECT p.oid::regprocedure::text AS signature, p.prosrc FROM pg_proc p"
            " WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef"
            " AND NOT coalesce(p.proconfig::text[] && ARRAY['search_path=\"\"',"
            " 'search_path='''''], false)"
        )
        for function in definers:
            unqualified = _unqualified_tables(function.prosrc)
            if unqualified:
                self.find(
                    "function",
                    function.signature,
                    "SECURITY DEFINER without a fixed search_path, and it names tables "
                    f"without their schema ({', '.join(sorted(unqualified))})",
                    "left as is: qualify them (public.…), then SET search_path = ''",
                )
                continue
            await self.sql(f"ALTER FUNCTION {function.signature} SET search_path = ''")
            self.step(
                f"function {function.signature}: SECURITY DEFINER now with search_path = '' "
                "(it had none, so a caller's objects could be found first)"
            )


# --- helpers ---------------------------------------------------------------------------------
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
_TABLE_REFERENCE = re.compile(
    r"\b(?:from|join|into|update|table)\s+(\"?[A-Za-z_][\w$]*\"?(?:\.\"?[A-Za-z_][\w$]*\"?)?)",
    re.IGNORECASE,
)


def _work(table: str) -> str:
    """The working copy of `table` the plan changes (a temporary table)."""
    return f"adopt_work_{table}"


#: A row's digest (the same row, the same digest): what tells the plan's changes apart.
_DIGEST = "md5(to_jsonb(c)::text)"
#: What the final step does with a row of a working copy.
_DELETE, _UPDATE, _INSERT = "delete", "update", "insert"


def _ident(name: str) -> str:
    """An identifier, quoted unless it is plain (policy names contain spaces)."""
    return name if _IDENT.match(name) else '"' + name.replace('"', '""') + '"'


def _unqualified_tables(source: str) -> set[str]:
    """Table names a function body uses without a schema (a heuristic for plpgsql/sql bodies)."""
    found = set()
    for match in _TABLE_REFERENCE.finditer(source):
        name = match.group(1)
        if "." not in name and name.lower() not in {"new", "old"}:
            found.add(name.strip('"'))
    return found
