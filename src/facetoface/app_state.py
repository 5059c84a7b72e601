"""The application's state, typed: every service, built once (`facetoface.app.build_state`).

Endpoints reach their service through `app_state(request)` — one style everywhere — and never
the database directly: services own the transactions. Only type-checking imports the service
classes here, so any feature may import this module without importing another feature.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from facetoface.auth.tokens import TokenVerifier
    from facetoface.callbacks.service import CallbackService
    from facetoface.compat.service import CompatService
    from facetoface.config import Settings
    from facetoface.console.ops.service import OpsService
    from facetoface.console.service import ConsoleService
    from facetoface.conversations.service import ConversationService
    from facetoface.db import Database
    from facetoface.health.tavus import TavusHealth
    from facetoface.preferences.service import PreferencesService
    from facetoface.reconcile.service import Reconciler
    from facetoface.sessions.data_rights import DataRights
    from facetoface.sessions.service import SessionService
    from facetoface.shutdown import Shutdown
    from facetoface.tavus import TavusClient
    from facetoface.tools.change_log import GoalChangeLog
    from facetoface.tools.memory import MemoryService
    from facetoface.tools.service import MentorActions
    from facetoface.webhooks.service import WebhookDelivery


@dataclass(frozen=True, slots=True)
class AppState:
    """Everything a request may use; one per app, made in its lifespan."""

    settings: Settings
    db: Database
    tavus: TavusClient
    tavus_health: TavusHealth
    token_verifier: TokenVerifier
    installation_id: uuid.UUID
    conversations: ConversationService
    sessions: SessionService
    data_rights: DataRights
    callbacks: CallbackService
    preferences: PreferencesService
    reconciler: Reconciler
    compat: CompatService
    ops: OpsService
    console: ConsoleService
    webhooks: WebhookDelivery
    mentor_actions: MentorActions
    goal_changes: GoalChangeLog
    memory: MemoryService
    #: The process's drain (SIGTERM): readiness and the reconciler follow it.
    shutdown: Shutdown


def app_state(connection: HTTPConnection) -> AppState:
    """The running app's state (set by the lifespan before the first request)."""
    state: AppState = connection.app.state.services
    return state
