"""Another release of the service, installed as a user installs it: its wheel, built from a
commit of this repository, in a venv of its own, for tests that run an older release beside
this code.

Cached across runs, keyed by the commit, inside the venv running the tests: a release whose
locked dependencies equal this checkout's borrows that venv's packages (a `.pth` file names
its site-packages), so the cache must live and die with it. A cache in the temporary
directory outlived the checkout that built it and then ran a release without its packages.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_CACHE = Path(sys.prefix) / "facetoface-releases"
_LOCK = "requirements/main.txt"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder at a time (xdist workers share the cache)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(*command: str) -> bytes:
    return subprocess.run(command, check=True, capture_output=True).stdout


def release_python(commit: str) -> str:
    """The Python of a venv holding the release at `commit` (built on first use)."""
    commit = _run("git", "-C", str(REPO), "rev-parse", "--verify", f"{commit}^{{commit}}")
    sha = commit.decode().strip()
    home = _CACHE / sha
    python = home / "venv" / "bin" / "python"
    with _locked(_CACHE / f"{sha}.lock"):
        if (home / "ready").exists():
            return str(python)
        shutil.rmtree(home, ignore_errors=True)  # what a failed build left
        source, dist = home / "src", home / "dist"
        archive = _run("git", "-C", str(REPO), "archive", "--format=tar", sha)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(source, filter="data")
        pip = (sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet")
        _run(*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(source))
        _run(sys.executable, "-m", "venv", "--without-pip", str(home / "venv"))
        if (source / _LOCK).read_bytes() == (REPO / _LOCK).read_bytes():
            # The same locked dependencies as this checkout's: the venv sees this
            # interpreter's (only the directory: its .pth files, among them the editable
            # install of this checkout, are not processed, so `facetoface` is the wheel's).
            purelib = _run(
                str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"
            )
            Path(purelib.decode().strip(), "_locked_dependencies.pth").write_text(
                sysconfig.get_paths()["purelib"] + "\n"
            )
        else:
            _run(
                *pip,
                "--python",
                str(python),
                "install",
                "--require-hashes",
                "-r",
                str(source / _LOCK),
            )
        (wheel,) = dist.glob("facetoface-*.whl")
        _run(*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel))
        (home / "ready").touch()
    return str(python)
