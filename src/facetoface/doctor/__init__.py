"""`facetoface doctor`: check a deployment end to end and say how to fix what fails.

Settings for the environment; the database (reachable, migrated, and on PostgreSQL the serving
role and row-level security); token signing keys; Tavus (key, default persona and replica, a
`test_mode` create); the public base URL. `diagnose_environment()` reads the settings as
`serve` does, `diagnose(settings)` takes them; `render_text`/`render_json` print the report.
"""

from facetoface.doctor.database_checks import serving_role_problem
from facetoface.doctor.report import (
    Check,
    CheckResult,
    Report,
    Status,
    render_json,
    render_text,
)
from facetoface.doctor.service import diagnose, diagnose_environment

__all__ = [
    "Check",
    "CheckResult",
    "Report",
    "Status",
    "diagnose",
    "diagnose_environment",
    "render_json",
    "render_text",
    "serving_role_problem",
]
