"""The import contract: features depend on the conversation core, never on each other's insides.

- `conversations/` (the core) imports no feature.
- Infrastructure (`models`, `db`, `errors`, `config`, `observability`, `auth`, `tavus`) imports
  no feature, and of the core only its vocabulary: the enums (`conversations.status`: the
  tables' CHECK sets, the metrics' labels) and the event types (`conversations.events`).
- A feature (`sessions`, `callbacks`, `reconcile`, `compat`, `console`, `doctor`) imports
  another feature only where it is an adapter over it, and then only its public surface
  (`service`, `schemas`, `idempotency`): `compat` → `sessions`; `console` → `sessions`,
  `reconcile`.
- Only `app.py` and `cli.py` wire everything together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "facetoface"
FEATURES = {"sessions", "callbacks", "reconcile", "compat", "console", "doctor"}
INFRASTRUCTURE = {"models", "db", "errors", "config", "observability", "auth", "tavus", "sql"}
PUBLIC_SURFACE = {"service", "schemas", "idempotency"}
VOCABULARY = {"facetoface.conversations.status", "facetoface.conversations.events"}
ADAPTERS = {("compat", "sessions"), ("console", "sessions"), ("console", "reconcile")}


def _imports(path: Path) -> set[str]:
    """Every `facetoface.*` module a source file imports."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("facetoface."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("facetoface."))
    return found


def _top(module: str) -> str:
    return module.split(".")[1]


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def test_the_package_is_where_the_contract_looks() -> None:
    assert len(SOURCES) > 50
    assert {p.relative_to(PACKAGE).parts[0] for p in SOURCES} >= FEATURES | {"conversations"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_contract(path: Path) -> None:
    own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    for module in _imports(path):
        target = _top(module)
        if target == own or own in {"app", "cli"}:
            continue
        if own == "conversations" or own in INFRASTRUCTURE:
            allowed = own in INFRASTRUCTURE and module in VOCABULARY
            assert target not in FEATURES | {"conversations"} or allowed, (
                f"{path.relative_to(PACKAGE)} imports {module}: the core and the infrastructure "
                "depend on no feature"
            )
        if own in FEATURES and target in FEATURES:
            assert (own, target) in ADAPTERS, (
                f"{path.relative_to(PACKAGE)} imports {module}: features never import each other"
            )
            assert module.split(".")[2] in PUBLIC_SURFACE, (
                f"{path.relative_to(PACKAGE)} imports {module}: an adapter uses the public "
                f"surface ({', '.join(sorted(PUBLIC_SURFACE))}) only"
            )
