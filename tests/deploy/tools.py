"""Helpers of the deploy kits' tests: where things are, and the tools they need."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
KUBERNETES_DIR = DEPLOY / "kubernetes"
IN_CI = os.environ.get("CI", "").lower() == "true"


def missing(what: str, why: str) -> None:
    """A tool this test needs is absent: fail under CI=true (CI must have it), else skip loudly."""
    message = f"{what} is not available, so {why}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: .ci/run must provide it)")
    pytest.skip(f"DEPLOY TEST SKIPPED: {message}")


def require_tool(name: str, why: str, hint: str) -> str:
    """The path of executable `name`, or fail (CI) / skip loudly (elsewhere)."""
    path = shutil.which(name)
    if path is None:
        missing(f"`{name}` ({hint})", why)
        raise AssertionError("unreachable")  # pytest.fail/skip raise
    return path
