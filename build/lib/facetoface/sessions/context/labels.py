"""Readable words for the values of the origin's CHECK sets (DISC, Enneagram, ritual
preferences, focus areas, goal types)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

# --------------------------------------------------------------------------------------------
# Readable words for the origin's CHECK value sets
# --------------------------------------------------------------------------------------------

DISC: Final[Mapping[str, str]] = MappingProxyType(
    {
        "D": "Dominance: direct, decisive, results-oriented",
        "I": "Influence: outgoing, enthusiastic, persuasive",
        "S": "Steadiness: patient, supportive, dependable",
        "C": "Conscientiousness: analytical, precise, quality-focused",
    }
)
ENNEAGRAM: Final[Mapping[int, str]] = MappingProxyType(
    {
        1: "the Reformer",
        2: "the Helper",
        3: "the Achiever",
        4: "the Individualist",
        5: "the Investigator",
        6: "the Loyalist",
        7: "the Enthusiast",
        8: "the Challenger",
        9: "the Peacemaker",
    }
)
TIMING: Final[Mapping[str, str]] = MappingProxyType(
    {
        "morning_person": "a morning person",
        "evening_person": "an evening person",
        "flexible": "flexible about the time of day",
    }
)
DURATION: Final[Mapping[str, str]] = MappingProxyType(
    {
        "quick_focused": "quick, focused sessions",
        "deeper_dive": "deeper-dive sessions",
        "variable": "varies from day to day",
    }
)
STYLE: Final[Mapping[str, str]] = MappingProxyType(
    {
        "guided_structure": "guided structure",
        "open_conversation": "open conversation",
        "mixed": "a mix of guided structure and open conversation",
    }
)
VOICE: Final[Mapping[str, str]] = MappingProxyType(
    {
        "confident_coach": "a confident coach",
        "warm_friend": "a warm friend",
        "gentle_guide": "a gentle guide",
        "wise_mentor": "a wise mentor",
    }
)
FREQUENCY: Final[Mapping[str, str]] = MappingProxyType(
    {"daily": "daily", "weekdays": "on weekdays", "custom": "on a custom schedule"}
)
CATEGORY: Final[Mapping[str, str]] = MappingProxyType(
    {
        "stress_management": "stress management",
        "goal_achievement": "goal achievement",
        "relationships": "relationships",
        "self_worth": "self-worth",
        "emotional_regulation": "emotional regulation",
        "work_life_balance": "work-life balance",
        "personal_growth": "personal growth",
        "mindfulness": "mindfulness",
    }
)
GOAL_TYPE: Final[Mapping[str, str]] = MappingProxyType(
    {
        "emotional_wellness": "emotional wellness",
        "personal_growth": "personal growth",
        "relationships": "relationships",
        "career": "career",
        "health": "health",
        "mindfulness": "mindfulness",
    }
)
# Time zone names such as "America/Sao_Paulo", "UTC", "Etc/GMT+3" render as they are;
# anything else is treated as user text.
TZ_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-/:.")
TZ_MAX_CHARS: Final = 64
