"""Start, end and read face-to-face sessions; the mentor's context; data rights.

What other packages (the drop-in `compat` routes, the console) may use is listed here; the
rest is this feature's own.
"""

from facetoface.sessions.data_rights import DataRights, PurgeReport
from facetoface.sessions.errors import SessionAlreadyActive, SessionNotFound
from facetoface.sessions.idempotency import Replay, idempotency_request
from facetoface.sessions.repository import SessionSelector
from facetoface.sessions.schemas import SessionOut, join_url
from facetoface.sessions.service import SessionService

__all__ = [
    "DataRights",
    "PurgeReport",
    "Replay",
    "SessionAlreadyActive",
    "SessionNotFound",
    "SessionOut",
    "SessionSelector",
    "SessionService",
    "idempotency_request",
    "join_url",
]
