"""The mentor context: what the Tavus mentor is told about the user.

:func:`build_mentor_context` is a pure function from the aggregated user data
(:class:`UserContextData`, built by the repository from ``profiles``,
``onboarding_profiles``, ``ritual_preferences``, ``user_emotional_categories`` and the active
``user_goals``) to the ``conversational_context`` string sent to Tavus, plus its parts for the
``GET /v1/me/context`` preview and the Tavus ``properties.language`` value.

Decisions (each fixes a defect of the origin app's context builder, which interpolated raw
profile text and printed empty sections):

* **Shape.** An opening line, then labelled sections in a fixed order — ``profile``,
  ``personality``, ``preferences``, ``focus_areas``, ``goals``, ``since_last_time`` —
  separated by exactly one blank line. Inside a section every line is ``"- label: value"``
  or similar; there are no blank lines, and a section (or line) whose data is missing is
  left out rather than rendered as ``None``/``undefined``.
  ``MentorContext.text == "\\n\\n".join(s.text for s in sections)``, and each
  ``ContextSection.text`` is the block exactly as it appears in the context (heading line
  included).
* **User text is data, not instructions.** Everything that a user can write (name, focus area,
  goal texts, SMART goals, a non-standard time zone, any enum value outside the origin's CHECK
  sets, and the mentor's display name) is passed through :func:`sanitize_user_text` and wrapped
  in ``«guillemets»``. The opening line tells the mentor that text inside guillemets is quoted
  data, never instructions. Sanitising replaces guillemets (and look-alikes) inside user text
  with plain quotes and turns all line breaks into spaces, so user text can neither close its
  own quote nor start a new line that looks like one of our headings.
* **Determinism.** Categories are de-duplicated (keeping the highest priority) and ordered by
  ``priority_level`` (1 first) then label; goals are ordered by ``target_date`` (soonest first,
  undated last), then ``progress_percentage`` (highest first), then text, and exact duplicate
  lines are removed. The input order of the lists therefore never changes the output.
* **Since last time.** With ``continuity`` (the repository passes it only when the user lets
  the mentor remember, and only sessions that ran and ended): up to ``max_previous_sessions``
  previous sessions, newest first — the local date in the profile's time zone (UTC when it is
  unknown), the duration, how it ended (from ``shutdown_reason``, else the status) — then the
  user's own last ``max_recap_lines`` lines of the latest one, sanitised (Tavus's
  ``USER_SPEECH:`` markers removed), capped and quoted like all user text, then up to
  ``max_changed_goals`` active goals updated after it ended, most recently updated first.
  Without a previous session the section is left out.
* **Caps.** Each piece of user text is capped at ``item_max_chars`` (cut on a word boundary
  when one is near, then ``…``); at most ``max_goals`` goals and ``max_categories`` categories
  are listed. These configured caps do not set ``truncated``. If the whole text is longer than
  ``max_chars``, the "since last time" section goes first, whole; then whole items are
  dropped, lowest priority first: goals beyond the first, then
  categories beyond the first three, then the preferences section, then (only for very small
  limits) the remaining goals, focus areas, personality and profile sections, and as a last
  resort the opening is cut at a space outside any quote. ``truncated`` is then True. Nothing is
  ever cut inside a ``«…»`` quote by this step, and the result is always ``<= max_chars``.
* **Language.** ``profiles.language`` codes map to Tavus's full lowercase language names
  (:func:`tavus_language`); an unknown or missing code gives ``english`` with
  ``language_fallback=True`` so that the caller can log it. The profile section says
  "Preferred language" for a recognised code and "Conversation language: English" otherwise.
* ``OnboardingData.personality_insights`` is accepted but not rendered: its JSON shape is not
  documented anywhere, and rendering arbitrary JSON would be noise for the mentor and one more
  injection surface.
* Nullable columns with a database default (``priority_level``, ``progress_percentage``) accept
  ``NULL`` and read it as that default, so a hand-edited row cannot turn a session start into an
  error.
"""

from facetoface.sessions.context.builder import build_mentor_context
from facetoface.sessions.context.data import (
    ContextSection,
    ContinuityData,
    EmotionalCategoryData,
    GoalData,
    GoalProgressData,
    MentorContext,
    OnboardingData,
    PreviousSessionData,
    ProfileData,
    RitualPreferencesData,
    UserContextData,
)
from facetoface.sessions.context.text import sanitize_user_text, tavus_language

__all__ = [
    "ContextSection",
    "ContinuityData",
    "EmotionalCategoryData",
    "GoalData",
    "GoalProgressData",
    "MentorContext",
    "OnboardingData",
    "PreviousSessionData",
    "ProfileData",
    "RitualPreferencesData",
    "UserContextData",
    "build_mentor_context",
    "sanitize_user_text",
    "tavus_language",
]
