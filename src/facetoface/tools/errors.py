"""The problems of the mentor's tools, the goal-change log and the memory routes."""

from __future__ import annotations

from facetoface.errors import BadRequest, Conflict, NotFound, ServiceUnavailable


class UnknownToolCall(NotFound):
    """Every call we do not act on for Tavus — a missing or wrong signature, an unknown tool,
    a conversation that is not a live session of ours, another user's goal — gets this same
    answer, so a forger learns nothing from it."""

    code = "not_found"
    title = "Not found"


class InvalidToolCall(BadRequest):
    """A signed call whose body or arguments are not what the tool takes."""

    status_code = 422
    code = "invalid_tool_call"
    title = "Invalid tool call"


class GoalChangeNotFound(NotFound):
    code = "goal_change_not_found"
    title = "Goal change not found"


class GoalChangedSince(Conflict):
    """The goal changed after the mentor's change: undoing it would lose the newer value."""

    code = "goal_changed_since"
    title = "The goal changed since"


class PinnedMemoryNotFound(NotFound):
    code = "pinned_memory_not_found"
    title = "Pinned memory not found"


class MemoryUnavailable(ServiceUnavailable):
    """Tavus, which keeps the memory, could not be reached; nothing was changed."""

    code = "memory_unavailable"
    title = "Memory temporarily unavailable"
