"""Running every check in order; later checks are skipped when what they need failed."""

from __future__ import annotations

from collections.abc import Callable

from facetoface.config import Settings
from facetoface.doctor import config_checks, database_checks, tavus_checks
from facetoface.doctor.report import CheckResult, Report


def _headline(settings: Settings) -> str:
    database = "PostgreSQL" if settings.is_postgres else "SQLite"
    return f"{settings.environment.value} · {database} · {tavus_checks.target(settings)}"


async def diagnose(settings: Settings, settings_check: CheckResult | None = None) -> Report:
    """Check a deployment configured by `settings` end to end (see the README's "Checking a
    deployment"). Never raises for what it finds; secrets never appear in the report."""
    report = Report(_headline(settings))
    report.checks.append(settings_check or config_checks.check_settings(lambda: settings)[1])

    db_state = database_checks.DatabaseState()
    try:
        report.checks.append(await database_checks.check_database(settings, db_state))
        report.checks.append(await database_checks.check_migrations(settings, db_state))
        report.checks.append(await database_checks.check_role(settings, db_state))
        report.checks.append(await database_checks.check_row_level_security(settings, db_state))
    finally:
        if db_state.db is not None:
            await db_state.db.dispose()

    report.checks.append(await config_checks.check_signing_keys(settings))

    tavus_state = tavus_checks.TavusState()
    unusable = tavus_checks.unusable_key(settings)
    if unusable is not None:
        report.checks.append(unusable)
        for which in (tavus_checks.PERSONA, tavus_checks.REPLICA, tavus_checks.CREATE):
            report.checks.append(which.skipped("needs a working Tavus key"))
    else:
        tavus = tavus_checks.build_client(settings)
        async with tavus:
            report.checks.append(await tavus_checks.check_key(settings, tavus, tavus_state))
            report.checks.append(await tavus_checks.check_persona(settings, tavus, tavus_state))
            report.checks.append(await tavus_checks.check_replica(settings, tavus, tavus_state))
            report.checks.append(
                await tavus_checks.check_test_mode_create(settings, tavus, tavus_state)
            )

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
    config_checks.PUBLIC_BASE_URL,
)


async def diagnose_environment(load: Callable[[], Settings] = Settings) -> Report:
    """`diagnose` for the settings of the environment (and `.env`), as `serve` reads them; when
    they cannot be read at all, that is the one failure and everything else is skipped."""
    settings, settings_check = config_checks.check_settings(load)
    if settings is None:
        report = Report("configuration unreadable", [settings_check])
        report.checks += [which.skipped("needs readable settings") for which in _LATER]
        return report
    return await diagnose(settings, settings_check)
