"""`clock`: move the service's clock (`facetoface.clock`) forward instead of sleeping."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from facetoface import clock as service_clock


class Clock:
    """The service's clock, as a test moves it."""

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass for the service (its database's own `now()` is not moved)."""
        service_clock.travel(timedelta(seconds=seconds))


@pytest.fixture
def clock() -> Iterator[Clock]:
    """The service's clock; back to the wall clock when the test ends."""
    yield Clock()
    service_clock.reset()
