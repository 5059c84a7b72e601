"""The mentor's tool calls and the post-call session report, as Tavus delivers them.

Every request is checked in this order, and each failure is the same 404 (`UnknownToolCall`)
with nothing changed:

1. the signature (`signature.py`), before anything else — no database work for a forgery;
2. the conversation is a session of ours in the right state: live (`active`) for a tool call;
   for the report, one that ran (live or ended no longer than `SESSION_REPORT_WINDOW_SECONDS`
   ago) and has no report yet;
3. then, as the session's user under row-level security (never with the service's rights):
   a goal named must be theirs.

A call's `tool_call_id` is recorded with its answer: the same id again is a replay, refused
with that same 404, and changes nothing. A session's calls may make at most
`TOOL_CHANGES_PER_SESSION` changes; calls beyond it are answered politely and change nothing.
One session's calls are serialised by a transaction-scoped advisory lock, so the limit and the
replay check hold across replicas.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel, ValidationError

from facetoface.clock import utcnow
from facetoface.config import Settings
from facetoface.conversations.status import ConversationStatus
from facetoface.db import Database, Identity
from facetoface.models.mentor_action import ChangeSource, GoalChangeKind
from facetoface.models.user_goal import GoalStatus
from facetoface.observability import metrics
from facetoface.observability.metrics import ToolCallOutcome
from facetoface.tavus.mentor_tools import (
    ADD_GOAL,
    IN_CALL_TOOLS,
    REMEMBER,
    SESSION_REPORT,
    TOOLS_BY_NAME,
    UPDATE_GOAL_PROGRESS,
)
from facetoface.tools.errors import InvalidToolCall, UnknownToolCall
from facetoface.tools.memory import MemoryService
from facetoface.tools.recording import (
    NewGoalChange,
    NewSessionReport,
    record_goal_change,
    record_session_report,
)
from facetoface.tools.repository import ActionsRepository, CallSession
from facetoface.tools.schemas import (
    AddGoalArgs,
    RememberArgs,
    SessionReportArgs,
    ToolCallBody,
    UpdateGoalProgressArgs,
)
from facetoface.tools.signature import signature_valid

log = structlog.get_logger(__name__)

A = TypeVar("A", bound=BaseModel)

#: Sessions a tool call may act on, and those a report may be about.
_TOOL_STATUSES = frozenset({ConversationStatus.active})
_REPORT_STATUSES = frozenset(
    {ConversationStatus.active, ConversationStatus.ending, ConversationStatus.ended}
)
#: Where a goal the mentor adds comes from (`user_goals.source`, the origin's set).
_MENTOR_GOAL_SOURCE = "session_suggestion"

LIMIT_REACHED = (
    "I can't change anything more in this session; the user can update their goals in the app."
)
MEMORY_OFF = (
    "I can't remember things between sessions: the user turned that off (or it is not "
    "available here). Don't promise to remember it."
)
MEMORY_FAILED = "I couldn't save that just now; it was not remembered."


def _percent(value: int) -> str:
    return f"{value} %"


class MentorActions:
    """Tool calls and session reports; one per app."""

    def __init__(self, settings: Settings, db: Database, memory: MemoryService) -> None:
        self.settings = settings
        self.db = db
        self.memory = memory

    # --- the front door ----------------------------------------------------------------------
    async def tool_call(self, tool_name: str, body: bytes, signature: str | None) -> str:
        """Run an in-call tool; the short text the model is given."""
        call = self._verified(body, signature, known=tool_name in IN_CALL_TOOLS, tool=tool_name)
        session = await self._session_of(call, tool_name, _TOOL_STATUSES)
        if tool_name == UPDATE_GOAL_PROGRESS:
            progress = _arguments(UpdateGoalProgressArgs, call)
            return await self._as_user(
                session, call, tool_name, lambda repo: self._progress(repo, session, call, progress)
            )
        if tool_name == ADD_GOAL:
            goal = _arguments(AddGoalArgs, call)
            return await self._as_user(
                session, call, tool_name, lambda repo: self._add_goal(repo, session, call, goal)
            )
        assert tool_name == REMEMBER, "IN_CALL_TOOLS names three tools"
        return await self._remember(session, call, _arguments(RememberArgs, call))

    async def session_report(self, body: bytes, signature: str | None) -> str:
        """Store a session's post-call report and apply its goal updates."""
        call = self._verified(body, signature, known=True, tool=SESSION_REPORT)
        session = await self._session_of(call, SESSION_REPORT, _REPORT_STATUSES)
        if session.status == ConversationStatus.ended:
            ended = session.end_time or utcnow()
            window = timedelta(seconds=self.settings.session_report_window_seconds)
            if utcnow() > ended + window:
                raise self._refused(SESSION_REPORT, "report_too_late")
        report = _arguments(SessionReportArgs, call)
        return await self._as_user(
            session,
            call,
            SESSION_REPORT,
            lambda repo: self._report(repo, session, call, report),
            statuses=_REPORT_STATUSES,
            limited=False,  # the report is stored anyway; its goal updates respect the limit
        )

    # --- checks ------------------------------------------------------------------------------
    def _verified(
        self, body: bytes, signature: str | None, *, known: bool, tool: str
    ) -> ToolCallBody:
        if not signature_valid(self.settings.tool_secret, body, signature):
            raise self._refused(tool, "bad_signature" if signature else "no_signature")
        if not known:
            raise self._refused(tool, "unknown_tool")
        try:
            return ToolCallBody.model_validate(json.loads(body))
        except (ValueError, ValidationError) as exc:
            metrics.record_tool_call(ToolCallOutcome.invalid)
            raise InvalidToolCall("The body is not a tool call.") from exc

    async def _session_of(
        self, call: ToolCallBody, tool: str, statuses: frozenset[ConversationStatus]
    ) -> CallSession:
        async with self.db.transaction(role="service") as s:
            session = await ActionsRepository(s).find_session(call.conversation_id)
        if session is None:
            raise self._refused(tool, "unknown_conversation")
        if session.status not in statuses:
            raise self._refused(tool, "session_not_live")
        return session

    def _refused(self, tool: str, reason: str) -> UnknownToolCall:
        # The tool's name comes from the path: only ours are logged as they are.
        known = tool if tool in TOOLS_BY_NAME else "unknown"
        log.warning("tool_call.refused", tool=known, reason=reason)
        metrics.record_tool_call(ToolCallOutcome.refused)
        return UnknownToolCall("No such conversation.")

    async def _as_user(
        self,
        session: CallSession,
        call: ToolCallBody,
        tool: str,
        act: Callable[[ActionsRepository], Awaitable[tuple[str, int]]],
        *,
        statuses: frozenset[ConversationStatus] = _TOOL_STATUSES,
        limited: bool = True,
    ) -> str:
        """Run `act` as the session's user, once per tool_call_id, within the session's
        limit; `act` returns the answer and how many changes it made."""
        async with self.db.transaction(Identity(session.user_id), role="user") as s:
            repo = ActionsRepository(s)
            gate = await self._gate(repo, session, call, tool, statuses, limited=limited)
            if gate is not None:
                return gate
            answer, changes = await act(repo)
            await repo.record_call(
                session, call.tool_call_id, tool, answer, changes=changes, now=utcnow()
            )
        log.info("tool_call.done", tool=tool, changes=changes)
        metrics.record_tool_call(ToolCallOutcome.done)
        return answer

    async def _gate(
        self,
        repo: ActionsRepository,
        session: CallSession,
        call: ToolCallBody,
        tool: str,
        statuses: frozenset[ConversationStatus],
        *,
        limited: bool = True,
    ) -> str | None:
        """Under the session's lock: refuse a replay (404); the polite refusal once the limit
        is reached (recorded, so its replay is refused too); None to go on."""
        await repo.lock_session(session.mentor_conversation_id)
        status = await repo.session_status(session.mentor_conversation_id)
        if status is None or status not in statuses:
            raise self._refused(tool, "session_not_live")
        if await repo.recorded_answer(session.mentor_conversation_id, call.tool_call_id):
            # A replay: answered like any other call we do not act on (it changed things
            # the first time, or was refused then).
            raise self._refused(tool, "replayed")
        if limited and await self._room_left(repo, session) <= 0:
            await repo.record_call(
                session, call.tool_call_id, tool, LIMIT_REACHED, changes=0, now=utcnow()
            )
            log.info("tool_call.limit_reached", tool=tool)
            metrics.record_tool_call(ToolCallOutcome.limit_reached)
            return LIMIT_REACHED
        return None

    async def _room_left(self, repo: ActionsRepository, session: CallSession) -> int:
        made = await repo.changes_made(session.mentor_conversation_id)
        return self.settings.tool_changes_per_session - made

    # --- the tools -----------------------------------------------------------------------------
    async def _progress(
        self,
        repo: ActionsRepository,
        session: CallSession,
        call: ToolCallBody,
        args: UpdateGoalProgressArgs,
        source: ChangeSource = ChangeSource.tool,
    ) -> tuple[str, int]:
        goal = await repo.goal(args.goal_id, lock=True)
        if goal is None or goal.status == GoalStatus.archived:
            # Not the user's (row-level security hid it) or gone: as any forgery.
            raise self._refused(call_tool(source), "unknown_goal")
        if goal.progress_percentage == args.progress_percentage:
            return f"«{goal.goal_text}» is already at {_percent(goal.progress_percentage)}", 0
        now = utcnow()
        await repo.set_progress(goal.id, args.progress_percentage, now)
        await record_goal_change(
            repo,
            NewGoalChange(
                user_id=session.user_id,
                goal_id=goal.id,
                session_id=session.session_id,
                kind=GoalChangeKind.progress,
                source=source,
                before={"progress_percentage": goal.progress_percentage},
                after={"progress_percentage": args.progress_percentage},
                note=args.note,
                tool_call_id=call.tool_call_id,
                at=now,
            ),
        )
        return f"Updated «{goal.goal_text}» to {_percent(args.progress_percentage)}", 1

    async def _add_goal(
        self, repo: ActionsRepository, session: CallSession, call: ToolCallBody, args: AddGoalArgs
    ) -> tuple[str, int]:
        now = utcnow()
        goal_id = await repo.add_goal(
            session.user_id,
            args.goal_text,
            args.goal_type,
            args.target_date,
            _MENTOR_GOAL_SOURCE,
            now,
        )
        after: dict[str, Any] = {
            "goal_text": args.goal_text,
            "status": GoalStatus.active.value,
            "progress_percentage": 0,
        }
        await record_goal_change(
            repo,
            NewGoalChange(
                user_id=session.user_id,
                goal_id=goal_id,
                session_id=session.session_id,
                kind=GoalChangeKind.added,
                source=ChangeSource.tool,
                before=None,
                after=after,
                note=None,
                tool_call_id=call.tool_call_id,
                at=now,
            ),
        )
        return f"Added the goal «{args.goal_text}» (goal_id {goal_id})", 1

    async def _remember(self, session: CallSession, call: ToolCallBody, args: RememberArgs) -> str:
        """Pin the fact to the user's memory store at Tavus — outside any transaction — then
        record the call. A replay racing the first delivery may pin it twice; nothing else."""
        async with self.db.transaction(Identity(session.user_id), role="user") as s:
            repo = ActionsRepository(s)
            gate = await self._gate(repo, session, call, REMEMBER, _TOOL_STATUSES)
            if gate is not None:
                return gate
            if not (self.memory.deployment_remembers and await repo.mentor_memory(session.user_id)):
                await repo.record_call(
                    session, call.tool_call_id, REMEMBER, MEMORY_OFF, changes=0, now=utcnow()
                )
                log.info("tool_call.memory_off")
                metrics.record_tool_call(ToolCallOutcome.memory_off)
                return MEMORY_OFF
        if not session.persona_id or not await self.memory.pin(
            session.user_id, session.persona_id, args.fact
        ):
            metrics.record_tool_call(ToolCallOutcome.memory_failed)
            return MEMORY_FAILED  # not recorded: Tavus may deliver it again
        answer = f"I'll remember: «{args.fact}»"
        async with self.db.transaction(Identity(session.user_id), role="user") as s:
            await ActionsRepository(s).record_call(
                session, call.tool_call_id, REMEMBER, answer, changes=1, now=utcnow()
            )
        log.info("tool_call.done", tool=REMEMBER, changes=1)
        metrics.record_tool_call(ToolCallOutcome.done)
        return answer

    async def _report(
        self,
        repo: ActionsRepository,
        session: CallSession,
        call: ToolCallBody,
        report: SessionReportArgs,
    ) -> tuple[str, int]:
        if await repo.has_report(session.mentor_conversation_id):
            raise self._refused(SESSION_REPORT, "report_exists")
        room = await self._room_left(repo, session)
        applied = 0
        skipped = 0
        kept = 0
        for update in report.goal_updates:
            if applied >= room:
                skipped += 1
                continue
            if await repo.undone_in_session(update.goal_id, session.session_id):
                # The user already undid the mentor's change to this goal in this session:
                # the report (written from the same conversation) does not redo it.
                kept += 1
                continue
            _, changes = await self._progress(
                repo,
                session,
                call,
                UpdateGoalProgressArgs(
                    goal_id=update.goal_id, progress_percentage=update.progress_percentage
                ),
                source=ChangeSource.report,
            )
            applied += changes
        await record_session_report(
            repo,
            NewSessionReport(
                mentor_conversation_id=session.mentor_conversation_id,
                session_id=session.session_id,
                user_id=session.user_id,
                summary=report.summary,
                next_steps=list(report.next_steps),
                mood=report.mood,
                goal_updates=[u.model_dump(mode="json") for u in report.goal_updates],
                at=utcnow(),
            ),
        )
        answer = f"Report stored; {applied} goal update(s) applied"
        if kept:
            answer += f", {kept} left as the user set it (they undid the change)"
        if skipped:
            answer += f", {skipped} not applied (the session's change limit was reached)"
        return answer, applied


def call_tool(source: ChangeSource) -> str:
    """The tool a change came through (for the refusal's log line)."""
    return SESSION_REPORT if source is ChangeSource.report else UPDATE_GOAL_PROGRESS


def _arguments(model: type[A], call: ToolCallBody) -> A:
    try:
        return model.model_validate(call.arguments)
    except ValidationError as exc:
        metrics.record_tool_call(ToolCallOutcome.invalid)
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
        raise InvalidToolCall(
            f"Invalid arguments: {', '.join(fields) or 'the arguments'}."
        ) from exc
