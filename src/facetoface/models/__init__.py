"""All tables, one module each; imported here so metadata and relationships see every table."""

from facetoface.models.base import Base, utcnow
from facetoface.models.callback_event import TavusCallbackEvent
from facetoface.models.daily_session import DailySession
from facetoface.models.idempotency_key import IdempotencyKey
from facetoface.models.installation import Installation
from facetoface.models.mentor_action import GoalChange, MentorToolCall, SessionReport
from facetoface.models.mentor_avatar import MentorAvatar
from facetoface.models.mentor_conversation import MentorConversation
from facetoface.models.onboarding_profile import OnboardingProfile
from facetoface.models.profile import Profile
from facetoface.models.reconcile_run import ReconcileRun
from facetoface.models.ritual_preferences import RitualPreferences
from facetoface.models.schema_revision import SchemaRevision
from facetoface.models.user_emotional_category import UserEmotionalCategory
from facetoface.models.user_goal import UserGoal
from facetoface.models.user_persona import UserPersona
from facetoface.models.user_preference import UserPreference
from facetoface.models.webhook_event import WebhookEvent

__all__ = [
    "Base",
    "DailySession",
    "GoalChange",
    "IdempotencyKey",
    "Installation",
    "MentorAvatar",
    "MentorConversation",
    "MentorToolCall",
    "OnboardingProfile",
    "Profile",
    "ReconcileRun",
    "RitualPreferences",
    "SchemaRevision",
    "SessionReport",
    "TavusCallbackEvent",
    "UserEmotionalCategory",
    "UserGoal",
    "UserPersona",
    "UserPreference",
    "WebhookEvent",
    "utcnow",
]
