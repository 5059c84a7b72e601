"""Running every check in order; later checks are skipped when what they need failed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from facetoface.config import Settings, get_settings
from facetoface.doctor import config_checks, database_checks, tavus_checks
from facetoface.doctor.report import Check, CheckResult, Report


async def _guarded(check: Check, run: Awaitable[CheckResult]) -> CheckResult:
    """A check's result; a check that breaks (a bug, or something no check foresaw) becomes
    its failure instead of ending the whole run."""
    try:
        return await run
    except Exception as exc:
        return check.failed(
            f"the check itself failed ({type(exc).__name__})",
            "run it again; if it persists, report it with the output of `facetoface doctor`",
        )


def _headline(settings: Settings) -> str:
    return f"{settings.environment.value} · PostgreSQL · {tavus_checks.target(settings)}"


async def diagnose(settings: Settings, settings_check: CheckResult | None = None) -> Report:
    """Check a deployment configured by `settings` end to end (see the README's "Checking a
    deployment"). Never raises for what it finds; secrets never appear in the report."""
    report = Report(_headline(settings))
    report.checks.append(settings_check or config_checks.check_settings(lambda: settings)[1])

    db_state = database_checks.DatabaseState()
    try:
        for check, run in (
            (database_checks.DATABASE, database_checks.check_database),
            (database_checks.MIGRATIONS, database_checks.check_migrations),
            (database_checks.ROLE, database_checks.check_role),
            (database_checks.ROW_LEVEL_SECURITY, database_checks.check_row_level_security),
        ):
            report.checks.append(await _guarded(check, run(settings, db_state)))
    finally:
        if db_state.db is not None:
            await db_state.db.dispose()

    report.checks.append(
        await _guarded(config_checks.SIGNING_KEYS, config_checks.check_signing_keys(settings))
    )

    tavus_state = tavus_checks.TavusState()
    unusable = tavus_checks.unusable_key(settings)
    if unusable is not None:
        report.checks.append(unusable)
        for which in (
            tavus_checks.PERSONA,
            tavus_checks.REPLICA,
            tavus_checks.CREATE,
            tavus_checks.MENTOR_TOOLS,
        ):
            report.checks.append(which.skipped("needs a working Tavus key"))
    else:
        tavus = tavus_checks.build_client(settings)
        async with tavus:
            for check, ask_tavus in (
                (tavus_checks.KEY, tavus_checks.check_key),
                (tavus_checks.PERSONA, tavus_checks.check_persona),
                (tavus_checks.REPLICA, tavus_checks.check_replica),
                (tavus_checks.CREATE, tavus_checks.check_test_mode_create),
                (tavus_checks.MENTOR_TOOLS, tavus_checks.check_mentor_tools),
            ):
                report.checks.append(await _guarded(check, ask_tavus(settings, tavus, tavus_state)))

    report.checks.append(config_checks.check_public_base_url(settings))
    return report


_LATER = (
    database_checks.DATABASE,
    database_checks.MIGRATIONS,
    database_checks.ROLE,
    database_checks.ROW_LEVEL_SECURITY,
    config_checks.SIGNING_KEYS,
    tavus_checks.KEY,
    tavus_checks.PERSONA,
    tavus_checks.REPLICA,
    tavus_checks.CREATE,
    tavus_checks.MENTOR_TOOLS,
    config_checks.PUBLIC_BASE_URL,
)


async def diagnose_environment(load: Callable[[], Settings] = get_settings) -> Report:
    """`diagnose` for the settings of the environment (and `.env`), as `serve` reads them; when
    they cannot be read at all, that is the one failure and everything else is skipped."""
    settings, settings_check = config_checks.check_settings(load)
    if settings is None:
        report = Report("configuration unreadable", [settings_check])
        report.checks += [which.skipped("needs readable settings") for which in _LATER]
        return report
    return await diagnose(settings, settings_check)
