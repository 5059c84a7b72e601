"""The import contract: every top-level module has a layer, and imports point down.

- foundation (config, errors, clock, observability): foundation only.
- infrastructure (db, models, auth, tavus, limits, http_protocol, apidocs, app_state, demo,
  seeding, shutdown): foundation, infrastructure, and the core's vocabulary.
- core (conversations, outbox): foundation, infrastructure, the core.
- features (sessions, callbacks, reconcile, preferences, health, doctor, tools, webhooks): the
  above; never another feature.
- adapters (compat, console): the above, and a feature through its package's `__all__` only.
- migrations: foundation, infrastructure, the core.
- wiring (app, cli, `__main__`): anything.

The core's vocabulary is its enums and event types (`conversations.status`,
`conversations.events`, `outbox.events`): the tables' CHECK sets. Imports only made for type
checking (`if TYPE_CHECKING:`) are not dependencies and are not checked. A module in no layer
fails the test: a new module is placed on purpose. `tavus_sim` imports nothing of facetoface.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import facetoface.db

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "facetoface"

LAYERS: dict[str, frozenset[str]] = {
    "foundation": frozenset({"config", "errors", "clock", "observability"}),
    "infrastructure": frozenset(
        {
            "db",
            "models",
            "auth",
            "tavus",
            "limits",
            "http_protocol",
            "apidocs",
            "app_state",
            "demo",
            "seeding",
            "shutdown",
        }
    ),
    "core": frozenset({"conversations", "outbox"}),
    "features": frozenset(
        {
            "sessions",
            "callbacks",
            "reconcile",
            "preferences",
            "health",
            "doctor",
            "tools",
            "webhooks",
        }
    ),
    "adapters": frozenset({"compat", "console"}),
    "migrations": frozenset({"migrations"}),
    "wiring": frozenset({"app", "cli", "__main__", "__init__"}),
}
ALLOWED: dict[str, tuple[str, ...]] = {
    "foundation": ("foundation",),
    "infrastructure": ("foundation", "infrastructure"),
    "core": ("foundation", "infrastructure", "core"),
    "features": ("foundation", "infrastructure", "core"),
    "adapters": ("foundation", "infrastructure", "core", "adapters"),
    "migrations": ("foundation", "infrastructure", "core"),
}
VOCABULARY = frozenset(
    {
        "facetoface.conversations.status",
        "facetoface.conversations.events",
        "facetoface.outbox.events",
    }
)
#: What `facetoface.db` offers everyone; the rest are its modules (failures, admission, ...).
DB_API = frozenset(
    {
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
    }
)


def layer_of(top: str) -> str | None:
    return next((name for name, members in LAYERS.items() if top in members), None)


def top_level_modules() -> set[str]:
    return {
        entry.name.removesuffix(".py")
        for entry in PACKAGE.iterdir()
        if (entry.suffix == ".py" or (entry / "__init__.py").exists())
    }


def _type_checking_only(tree: ast.AST) -> set[int]:
    """Line numbers of imports under `if TYPE_CHECKING:`."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                for inner in ast.walk(child):
                    if isinstance(inner, ast.Import | ast.ImportFrom):
                        lines.add(inner.lineno)
    return lines


def imports(source: str, prefix: str = "facetoface") -> Iterator[tuple[str, list[str]]]:
    """(module, imported names) of every runtime `import`/`from … import` of `prefix`."""
    tree = ast.parse(source)
    skipped = _type_checking_only(tree)
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == prefix or node.module.startswith(prefix + "."):
                yield node.module, [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == prefix or alias.name.startswith(prefix + "."):
                    yield alias.name, []


def violations(relative: str, source: str) -> list[str]:
    """What the module at `relative` (to the package) breaks of the contract."""
    own = relative.split("/")[0].removesuffix(".py")
    own_layer = layer_of(own)
    if own_layer is None:
        return [f"{relative}: its top-level module {own!r} has no layer"]
    if own_layer == "wiring":
        return []
    found = []
    for module, names in imports(source):
        target = module.split(".")[1] if "." in module else own
        if target == own:
            continue
        target_layer = layer_of(target)
        where = f"{relative} imports {module}"
        if own_layer == "adapters" and target_layer == "features":
            if module != f"facetoface.{target}":
                found.append(
                    f"{where}: an adapter uses a feature through its package (`from "
                    f"facetoface.{target} import …`), never its modules"
                )
                continue
            public = set(__import__(module, fromlist=["__all__"]).__all__)
            if not set(names) <= public:
                found.append(f"{where}: {sorted(set(names) - public)} not in its __all__")
            continue
        if module in VOCABULARY and own_layer == "infrastructure":
            continue
        if target_layer not in ALLOWED[own_layer]:
            found.append(
                f"{where}: {own_layer} may import {', '.join(ALLOWED[own_layer])} only, not "
                f"{target_layer}"
            )
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_top_level_module_has_a_layer() -> None:
    unplaced = sorted(top for top in top_level_modules() if layer_of(top) is None)
    assert not unplaced, f"place these in a layer of tests/test_architecture.py: {unplaced}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_contract(path: Path) -> None:
    assert not violations(path.relative_to(PACKAGE).as_posix(), path.read_text())


def test_features_export_their_public_names() -> None:
    """What adapters may use is a feature's `__all__`, and every name in it exists."""
    for feature in sorted(LAYERS["features"]):
        package = __import__(f"facetoface.{feature}", fromlist=["__all__"])
        exported = getattr(package, "__all__", None)
        if exported is None:
            continue  # no adapter uses it
        missing = [name for name in exported if not hasattr(package, name)]
        assert not missing, f"facetoface.{feature}.__all__ names what it lacks: {missing}"


def test_the_database_package_offers_a_curated_api() -> None:
    assert set(facetoface.db.__all__) == DB_API
    assert all(hasattr(facetoface.db, name) for name in DB_API)


def test_the_simulator_imports_nothing_of_the_service() -> None:
    found = [
        f"{path.relative_to(SRC)}: {module}"
        for path in sorted((SRC / "tavus_sim").rglob("*.py"))
        for module, _ in imports(path.read_text())
    ]
    assert not found


@pytest.mark.parametrize(
    ("relative", "statement"),
    [
        ("conversations/x.py", "from facetoface.sessions.service import SessionService"),
        ("sessions/x.py", "from facetoface.callbacks.service import CallbackService"),
        ("compat/x.py", "from facetoface.sessions.service import SessionService"),
        ("compat/x.py", "from facetoface.sessions import SessionRepository"),
        ("observability/x.py", "from facetoface.db import Database"),
        ("newthing.py", "import json"),
    ],
)
def test_the_contract_catches_a_wrong_import(relative: str, statement: str) -> None:
    """The checker itself: each kind of violation is reported."""
    assert violations(relative, statement + "\n")
