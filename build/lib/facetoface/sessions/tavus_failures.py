"""What a start tells the user, and records, when Tavus's create fails: one table.

Each kind of Tavus error has one row: the `failure_code` the session's row keeps, and the
problem the user gets. The order matters (the first matching class wins): subclasses before
their bases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from facetoface.config import Settings
from facetoface.conversations.status import FailureCode
from facetoface.sessions.errors import (
    ServiceBusy,
    TavusCapacityReached,
    TavusConfigurationError,
    TavusOutOfCreditsError,
    TavusUnavailableError,
)
from facetoface.tavus import (
    TavusAuthError,
    TavusBusy,
    TavusConcurrencyLimit,
    TavusError,
    TavusOutcomeUnknown,
    TavusOutOfCredits,
    TavusRateLimited,
    TavusRejected,
    TavusServerError,
    TavusUnavailable,
)

_Problem = Callable[[Settings, TavusError], Exception]


def _unavailable(settings: Settings, exc: TavusError) -> Exception:
    return TavusUnavailableError("The video service is not answering; try again shortly.")


def _capacity(settings: Settings, exc: TavusError) -> Exception:
    return TavusCapacityReached(
        "Every video mentor slot is in use; try again shortly.",
        retry_after_seconds=settings.tavus_concurrency_retry_after_seconds,
    )


def _rate_limited(settings: Settings, exc: TavusError) -> Exception:
    wait = exc.retry_after_seconds if isinstance(exc, TavusRateLimited) else None
    return TavusCapacityReached(
        "The video service asked us to slow down; try again shortly.",
        retry_after_seconds=int(wait or 5),
    )


def _out_of_credits(settings: Settings, exc: TavusError) -> Exception:
    return TavusOutOfCreditsError("The operator must top up the video service account.")


def _configuration(settings: Settings, exc: TavusError) -> Exception:
    return TavusConfigurationError(
        "The video service refused this deployment's request (API key, persona or replica "
        "configuration)."
    )


def _busy(settings: Settings, exc: TavusError) -> Exception:
    return ServiceBusy(
        "Too many video calls are being set up right now; try again in a moment.",
        retry_after_seconds=2,
    )


@dataclass(frozen=True, slots=True)
class StartFailure:
    """How one kind of Tavus error ends a start: recorded as `code`, answered as `problem`."""

    code: FailureCode
    problem: _Problem


#: Tavus error class → how the start ends. Searched in order; `TavusError` catches the rest.
START_FAILURES: tuple[tuple[type[TavusError], StartFailure], ...] = (
    (TavusConcurrencyLimit, StartFailure(FailureCode.tavus_concurrency_limit, _capacity)),
    (TavusRateLimited, StartFailure(FailureCode.tavus_rate_limited, _rate_limited)),
    (TavusOutOfCredits, StartFailure(FailureCode.tavus_out_of_credits, _out_of_credits)),
    (TavusAuthError, StartFailure(FailureCode.tavus_auth_failed, _configuration)),
    (TavusBusy, StartFailure(FailureCode.tavus_unavailable, _busy)),
    (TavusServerError, StartFailure(FailureCode.tavus_server_error, _unavailable)),
    (TavusOutcomeUnknown, StartFailure(FailureCode.tavus_outcome_unknown, _unavailable)),
    (TavusUnavailable, StartFailure(FailureCode.tavus_unavailable, _unavailable)),
    (TavusRejected, StartFailure(FailureCode.tavus_rejected, _configuration)),
    (TavusError, StartFailure(FailureCode.tavus_rejected, _unavailable)),
)


def start_failure(exc: TavusError) -> StartFailure:
    """The row of `START_FAILURES` for `exc`."""
    for kind, failure in START_FAILURES:
        if isinstance(exc, kind):
            return failure
    raise AssertionError("TavusError is the table's last row")
