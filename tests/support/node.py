"""Node.js for the tests that use the real supabase-js: `npm ci` into `tests/node/node_modules`.

The packages are pinned by `tests/node/package-lock.json`. `npm ci` runs once and again only
when the lock file changes (a stamp in `node_modules` records the lock it installed), under a
file lock so parallel test workers do not install at once. Without node/npm, or when the
registry cannot be reached, these tests are skipped with a loud reason on a developer machine
and fail under `CI=true` (`.ci/run` installs node and npm).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
NODE_DIR = Path(__file__).resolve().parents[1] / "node"
NODE_MODULES = NODE_DIR / "node_modules"
_STAMP = NODE_MODULES / ".facetoface-lock-sha256"


def _unavailable(reason: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"supabase-js tests need node and npm under CI=true: {reason}")
    pytest.skip(f"SUPABASE-JS TESTS SKIPPED: {reason}")


def _lock_digest() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((NODE_DIR / name).read_bytes())
    return digest.hexdigest()


def install_node_modules() -> str:
    """Make `tests/node/node_modules` match the lock file; returns the `node` executable."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("no `node`/`npm` on PATH (.ci/run installs Debian's nodejs and npm)")
    wanted = _lock_digest()
    with open(NODE_DIR / ".npm-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _STAMP.exists() and _STAMP.read_text() == wanted:
            return node
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            _unavailable(f"`npm ci` failed: {(result.stderr or result.stdout)[-2000:]}")
        _STAMP.write_text(wanted)
    return node
