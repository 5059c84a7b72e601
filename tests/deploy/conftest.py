"""The deploy kits' tests.

`test_kubernetes.py` and `test_compose_files.py` are fast and run in `make test`. The tests
marked `deploy` (`test_compose.py`: images built, a whole stack running in Docker) take
minutes and need Docker: they run only when selected with `-m deploy` (`make deploy-test`),
and are deselected from every other run.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "deploy" in (config.getoption("markexpr") or ""):
        return  # the run chose for itself (`-m deploy`, `-m "not deploy"`)
    deselected = [item for item in items if item.get_closest_marker("deploy")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("deploy")]
