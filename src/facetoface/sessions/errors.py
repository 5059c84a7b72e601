"""The sessions feature's problems (each an HTTP status and a stable `code`)."""

from __future__ import annotations

from facetoface.errors import (
    BadGateway,
    BadRequest,
    Conflict,
    FacetofaceError,
    Forbidden,
    NotFound,
    ServiceUnavailable,
)


class MentorNotFound(NotFound):
    code = "mentor_not_found"
    title = "Mentor not found"


class SessionNotFound(NotFound):
    code = "session_not_found"
    title = "Session not found"


class PremiumMentorRequired(Forbidden):
    code = "premium_mentor_required"
    title = "This mentor needs a paid subscription"


class AnonymousNotAllowed(Forbidden):
    code = "anonymous_not_allowed"
    title = "Anonymous users cannot start sessions"


class TooManyStarts(FacetofaceError):
    status_code = 429
    code = "rate_limited"
    title = "Too many sessions started"


class SessionAlreadyActive(Conflict):
    code = "session_already_active"
    title = "A session is already live"


class NoMentorConfigured(BadGateway):
    code = "mentor_not_configured"
    title = "No Tavus persona or replica is configured"


class TavusCapacityReached(ServiceUnavailable):
    code = "tavus_capacity_reached"
    title = "All video mentor slots are busy"


class TavusUnavailableError(ServiceUnavailable):
    code = "tavus_unavailable"
    title = "The video service is unavailable"


class ServiceBusy(ServiceUnavailable):
    code = "busy"
    title = "Too many video calls in progress here"


class TavusConfigurationError(BadGateway):
    code = "tavus_configuration_error"
    title = "The video service rejected this deployment's request"


class TavusOutOfCreditsError(BadGateway):
    code = "tavus_out_of_credits"
    title = "The video service account is out of credits"


class SessionOutcomeUnknown(ServiceUnavailable):
    code = "session_outcome_unknown"
    title = "The video service did not confirm the session"


class InvalidCursor(BadRequest):
    code = "invalid_cursor"
    title = "Invalid pagination cursor"


class SessionDeleted(FacetofaceError):
    """The session was deleted (by its user, or with all their data) while its start was
    waiting for Tavus: the conversation Tavus made for it was ended and deleted there."""

    status_code = 410
    code = "session_deleted"
    title = "The session was deleted while it was starting"


class ErasureInProgress(FacetofaceError):
    """Everything about the user is being erased (`facetoface purge-user`): no session may
    start, since nothing it wrote would be kept."""

    status_code = 410
    code = "erasure_in_progress"
    title = "This account's data is being erased"
