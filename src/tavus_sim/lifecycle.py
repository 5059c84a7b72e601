"""Conversation state machine and timers: ``active`` → ``ended``, and the callbacks on the way.

Timers are asyncio tasks, one per (conversation, timer name), all divided by
``SimConfig.time_scale`` when scheduled:

- ``replica_join``: ``replica_join_delay_ms`` after create → ``system.replica_joined``.
- ``absent``: ``participant_absent_timeout`` after create, cancelled by the first join →
  shutdown ``participant_absent_timeout``. It is counted from creation, as in the API
  reference; the timeout page's "present but inactive" reading is not modelled.
- ``left``: ``participant_left_timeout`` after the last participant leaves (0 → at once),
  cancelled by a new join → shutdown ``participant_left_timeout``.
- ``max_duration``: ``max_call_duration`` after create → shutdown ``max_call_duration``.

Shutdown reasons are sent without the " reached" suffix of the documented list, matching
Tavus's own example payloads and observed traffic.

What the participant says may make the mentor call its PAL's tools before it answers
(actions.py); asked "what do you remember about me?", it lists its memory of them (memory.py).

On shutdown the conversation becomes ``ended``, what the participant said becomes memories of
its memory store and legacy tags (memory.py), and these callbacks are generated, in order:
``system.shutdown``, ``application.transcription_ready`` (first entry: the system prompt with
the conversational context), ``application.perception_analysis`` only when the persona has a
Raven perception model, and ``application.recording_ready`` only when
``properties.enable_recording`` is set and someone joined (nothing was recorded otherwise).
Test-mode conversations never start timers or generate callbacks (Tavus does not document any
for them). After these, the PAL's post-call actions run (actions.py) and each adds an
``application.post_call_action_executed`` callback.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import structlog

from tavus_sim import actions, mentor
from tavus_sim.callbacks import CallbackSender, envelope
from tavus_sim.catalog import ANALYSING_PERCEPTION_MODELS
from tavus_sim.config import SimConfig
from tavus_sim.memory import MemoryBank
from tavus_sim.state import Conversation, Participant, SimState, TranscriptEntry, utcnow
from tavus_sim.tool_calls import ToolCaller
from tavus_sim.tools import ToolRegistry

log = structlog.stdlib.get_logger(__name__)

TimerAction = Callable[[Conversation], Awaitable[None]]

_SECONDS_PER_WORD = 0.35
_MIN_TURN_SECONDS = 0.5
_DEFAULT_BUCKET = "tavus-sim-recordings"
_URI_SCHEMES = {"s3": "s3", "gcs": "gs", "azure_blob": "https"}
_WHAT_DO_YOU_REMEMBER = re.compile(
    r"\bwhat\s+do\s+you\s+(?:remember|know)\s+about\s+me\b", re.IGNORECASE
)


class LifecycleParts(Protocol):
    """What the lifecycle uses of the runtime (`config` changes at run time)."""

    config: SimConfig
    state: SimState
    memory: MemoryBank
    sender: CallbackSender
    tools: ToolRegistry
    caller: ToolCaller


class Lifecycle:
    """Drives conversations through their lifecycle and owns their timers."""

    def __init__(self, runtime: LifecycleParts) -> None:
        self._runtime = runtime
        self._timers: dict[str, dict[str, asyncio.Task[None]]] = {}
        #: When each running timer fires (the room page counts down to it).
        self._deadlines: dict[asyncio.Task[None], datetime] = {}

    # ------------------------------------------------------------------ timers

    def started(self, conversation: Conversation) -> None:
        """Start the timers of a freshly created live conversation."""
        if conversation.test_mode:
            return
        config = self._runtime.config
        timings = conversation.timings
        self._schedule(
            conversation,
            "replica_join",
            config.scaled(config.replica_join_delay_ms / 1000),
            self._replica_joined,
        )
        self._schedule(
            conversation,
            "absent",
            config.scaled(timings.participant_absent_timeout),
            self._shutdown_action("participant_absent_timeout"),
        )
        self._schedule(
            conversation,
            "max_duration",
            config.scaled(timings.max_call_duration),
            self._shutdown_action("max_call_duration"),
        )

    def _shutdown_action(self, reason: str) -> TimerAction:
        async def action(conversation: Conversation) -> None:
            await self.shutdown(conversation, reason)

        return action

    def _schedule(
        self, conversation: Conversation, name: str, delay_s: float, action: TimerAction
    ) -> None:
        conversation_id = conversation.conversation_id
        self._cancel(conversation_id, name)
        task = asyncio.create_task(
            self._run_timer(conversation, name, delay_s, action),
            name=f"tavus_sim.timer:{name}:{conversation_id}",
        )
        self._timers.setdefault(conversation_id, {})[name] = task
        self._deadlines[task] = utcnow() + timedelta(seconds=delay_s)
        task.add_done_callback(lambda done: self._forget(conversation_id, name, done))

    async def _run_timer(
        self, conversation: Conversation, name: str, delay_s: float, action: TimerAction
    ) -> None:
        await asyncio.sleep(delay_s)
        try:
            await action(conversation)
        except Exception:
            # A timer has nobody to report to; log instead of losing the error in the task.
            log.exception(
                "tavus_sim.timer.failed", timer=name, conversation_id=conversation.conversation_id
            )

    def _forget(self, conversation_id: str, name: str, task: asyncio.Task[None]) -> None:
        self._deadlines.pop(task, None)
        timers = self._timers.get(conversation_id)
        if timers is not None and timers.get(name) is task:
            del timers[name]
            if not timers:
                del self._timers[conversation_id]

    def deadline(self, conversation_id: str, name: str) -> datetime | None:
        """When the conversation's ``name`` timer fires; None when it is not running."""
        task = self._timers.get(conversation_id, {}).get(name)
        if task is None or task.done() or task.cancelling():
            return None
        return self._deadlines.get(task)

    def _cancel(self, conversation_id: str, *names: str) -> None:
        timers = self._timers.get(conversation_id, {})
        current = asyncio.current_task()
        for name in names or tuple(timers):
            task = timers.get(name)
            # Never cancel the timer that is running this very shutdown.
            if task is not None and task is not current:
                task.cancel()

    async def cancel_all(self) -> None:
        """Cancel every timer of every conversation and wait until they have stopped."""
        tasks = [task for timers in self._timers.values() for task in timers.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._timers.clear()
        self._deadlines.clear()

    # ------------------------------------------------------------------ events

    def _emit(
        self, conversation: Conversation, event_type: str, properties: dict[str, Any]
    ) -> dict[str, Any]:
        event = envelope(conversation, event_type, properties)
        conversation.events.append(event)
        return event

    async def _replica_joined(self, conversation: Conversation) -> None:
        async with self._runtime.state.lock:
            if conversation.status != "active":
                return
            conversation.replica_joined_at = utcnow()
            event = self._emit(
                conversation, "system.replica_joined", {"replica_id": conversation.replica_id}
            )
        self._runtime.sender.send(conversation, [event], post_shutdown=False)

    # ------------------------------------------------------------------ room

    def _simulated_seconds(self, conversation: Conversation, wall: float) -> float:
        elapsed = max(0.0, wall - conversation.created_at.timestamp())
        return round(elapsed * self._runtime.config.time_scale, 3)

    def _add_turn(
        self, conversation: Conversation, role: Literal["user", "assistant"], content: str
    ) -> None:
        # Turns are stamped with the wall clock when they are said; the duration is an
        # estimate of speaking time and is not used to push later turns into the future.
        start = time.time()
        words = len(content.split())
        conversation.transcript.append(
            TranscriptEntry(
                role=role,
                content=content,
                timestamp=round(start, 3),
                seconds_from_start=self._simulated_seconds(conversation, start),
                duration=round(max(_MIN_TURN_SECONDS, words * _SECONDS_PER_WORD), 2),
                inference_id=f"inf_{secrets.token_hex(6)}" if role == "assistant" else None,
            )
        )
        conversation.touch()

    def join(self, conversation: Conversation, name: str | None) -> Participant:
        """Add a participant to an active conversation; the first one is greeted."""
        participant = Participant(
            participant_id=f"pt_{secrets.token_hex(4)}",
            name=name or "Guest",
            joined_at=utcnow(),
        )
        conversation.participants[participant.participant_id] = participant
        conversation.ever_joined = True
        self._cancel(conversation.conversation_id, "absent", "left")
        if not conversation.greeted:
            conversation.greeted = True
            # A custom greeting is said verbatim, so the context is mentioned in the first
            # answer instead (see mentor.py).
            conversation.context_mentioned = not conversation.custom_greeting
            self._add_turn(
                conversation,
                "assistant",
                mentor.greeting(conversation.custom_greeting, conversation.conversational_context),
            )
        conversation.touch()
        return participant

    def greeting_text(self, conversation: Conversation) -> str:
        """Return the greeting the mentor says (or will say) in this room."""
        return mentor.greeting(conversation.custom_greeting, conversation.conversational_context)

    async def say(self, conversation: Conversation, text: str) -> str:
        """Record a participant's utterance, call the tools it asks for, record the mentor's
        answer; return the answer."""
        turn = sum(1 for entry in conversation.transcript if entry.role == "user")
        turn_index = len(conversation.transcript)
        self._add_turn(conversation, "user", text)
        tool_lines = await actions.in_call(self._runtime, conversation, text, turn_index)
        if tool_lines:
            answer = " ".join(tool_lines)
        elif _WHAT_DO_YOU_REMEMBER.search(text):
            answer = self._runtime.memory.knows(conversation)
        else:
            answer = mentor.reply(
                conversation.conversational_context,
                text,
                turn,
                mention_context=not conversation.context_mentioned,
            )
        conversation.context_mentioned = True
        if not conversation.memory_recalled:
            conversation.memory_recalled = True
            answer = mentor.with_recall(answer, self._runtime.memory.recall(conversation))
        self._add_turn(conversation, "assistant", answer)
        return answer

    async def leave(self, conversation: Conversation, participant_id: str) -> None:
        """Remove a participant; when the room empties, start ``participant_left_timeout``."""
        conversation.participants.pop(participant_id, None)
        conversation.touch()
        if conversation.participants or conversation.status != "active":
            return
        timeout = conversation.timings.participant_left_timeout
        if timeout == 0:
            await self.shutdown(conversation, "participant_left_timeout")
        else:
            self._schedule(
                conversation,
                "left",
                self._runtime.config.scaled(timeout),
                self._shutdown_action("participant_left_timeout"),
            )

    # ------------------------------------------------------------------ shutdown

    async def shutdown(self, conversation: Conversation, reason: str) -> bool:
        """End an active conversation and send the post-call callbacks.

        Returns ``False`` (and does nothing) when the conversation is not active.
        """
        async with self._runtime.state.lock:
            if conversation.status != "active":
                return False
            now = utcnow()
            conversation.status = "ended"
            conversation.shutdown_reason = reason
            conversation.ended_at = now
            conversation.participants.clear()
            conversation.touch()
            self._cancel(conversation.conversation_id)
            events = self._post_call_events(conversation)
            self._runtime.memory.learn(conversation)
        log.info(
            "tavus_sim.conversation.shutdown",
            conversation_id=conversation.conversation_id,
            shutdown_reason=reason,
        )
        self._runtime.sender.send(conversation, events, post_shutdown=True)
        actions.post_call(self._runtime, conversation)
        return True

    def _post_call_events(self, conversation: Conversation) -> list[dict[str, Any]]:
        replica = {"replica_id": conversation.replica_id}
        transcript = [
            TranscriptEntry(
                role="system", content=mentor.system_prompt(conversation.conversational_context)
            ),
            *conversation.transcript,
        ]
        conversation.final_transcript = transcript
        user_turns = sum(1 for entry in transcript if entry.role == "user")
        events = [
            self._emit(
                conversation,
                "system.shutdown",
                {**replica, "shutdown_reason": conversation.shutdown_reason},
            ),
            self._emit(
                conversation,
                "application.transcription_ready",
                {**replica, "transcript": [entry.to_json() for entry in transcript]},
            ),
        ]
        if conversation.perception_model in ANALYSING_PERCEPTION_MODELS:
            events.append(
                self._emit(
                    conversation,
                    "application.perception_analysis",
                    {"analysis": mentor.perception_analysis(user_turns, conversation.ever_joined)},
                )
            )
        if conversation.properties.get("enable_recording") is True and conversation.ever_joined:
            events.append(
                self._emit(
                    conversation, "application.recording_ready", self._recording(conversation)
                )
            )
        return events

    def _recording(self, conversation: Conversation) -> dict[str, Any]:
        properties = conversation.properties
        storage = properties.get("recording_storage") or {}
        bucket = str(
            storage.get("bucket_name")
            or properties.get("recording_s3_bucket_name")
            or _DEFAULT_BUCKET
        )
        provider = str(storage.get("provider") or "s3")
        ended = conversation.ended_at or utcnow()
        key = f"{conversation.conversation_id}/{int(ended.timestamp())}.mp4"
        scheme = _URI_SCHEMES.get(provider, provider)
        return {
            "bucket_name": bucket,
            "s3_key": key,
            "duration": int(self._simulated_seconds(conversation, ended.timestamp())),
            "storage_provider": provider,
            "storage_uri": f"{scheme}://{bucket}/{key}",
        }
