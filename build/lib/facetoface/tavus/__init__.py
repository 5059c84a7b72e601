"""Client for Tavus's Conversational Video Interface (CVI) REST API.

`TavusClient` creates, reads, lists, ends and deletes conversations, reads personas and
replicas, lists and deletes memory stores, and validates the API key; every failure is a
`TavusError` subclass that says what the caller may assume about Tavus's state (see
`facetoface.tavus.errors` for the tree and what to do with each).
"""

from facetoface.tavus.client import (
    OnRequest,
    TavusClient,
    validate_conversation_id,
    validate_id,
)
from facetoface.tavus.errors import (
    TavusAuthError,
    TavusBusy,
    TavusConcurrencyLimit,
    TavusError,
    TavusInvalidRequest,
    TavusNotFound,
    TavusOutcomeUnknown,
    TavusOutOfCredits,
    TavusRateLimited,
    TavusRejected,
    TavusServerError,
    TavusUnavailable,
)
from facetoface.tavus.schemas import (
    Conversation,
    ConversationDetails,
    ConversationEvent,
    ConversationPage,
    ConversationProperties,
    CreateConversationRequest,
    MemoryStore,
    MemoryStorePage,
    Persona,
    Replica,
    TavusStatus,
)

__all__ = [
    "Conversation",
    "ConversationDetails",
    "ConversationEvent",
    "ConversationPage",
    "ConversationProperties",
    "CreateConversationRequest",
    "MemoryStore",
    "MemoryStorePage",
    "OnRequest",
    "Persona",
    "Replica",
    "TavusAuthError",
    "TavusBusy",
    "TavusClient",
    "TavusConcurrencyLimit",
    "TavusError",
    "TavusInvalidRequest",
    "TavusNotFound",
    "TavusOutOfCredits",
    "TavusOutcomeUnknown",
    "TavusRateLimited",
    "TavusRejected",
    "TavusServerError",
    "TavusStatus",
    "TavusUnavailable",
    "validate_conversation_id",
    "validate_id",
]
