"""The package's public surface is curated: `__all__` is sorted and lists every public name."""

from __future__ import annotations

import facetoface.tavus as tavus


def test_all_is_sorted_and_complete() -> None:
    submodules = {"client", "errors", "resilience", "schemas", "registry", "mentor_tools"}
    public = {name for name in dir(tavus) if not name.startswith("_") and name not in submodules}
    assert tavus.__all__ == sorted(tavus.__all__)
    assert set(tavus.__all__) == public
