"""The database's one-statement merge (`facetoface.apply_delta`,
`conversations/sql/apply_delta.sql`) does exactly what `conversations.state.merge` and
`derive`, the pure model of the merge, say.

Hypothesis draws sequences of deltas (callbacks of every kind, our end call, Tavus's answer to
a create, the reconciler's verdicts, with equal timestamps and equal-length transcripts to hit
the tie-breaks); each sequence is applied to a real row through `ConversationRepository.apply`
and, in memory, through `merge`. The stored facts and the derived session must be the model's.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facetoface.config import Settings
from facetoface.conversations.repository import ConversationRepository, state_from_row
from facetoface.conversations.state import ConversationState, Delta, derive, merge
from facetoface.conversations.status import ConversationStatus
from facetoface.db import Database
from facetoface.models import DailySession, MentorConversation, Profile
from tests.support.factories import session_rows

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
times = st.integers(min_value=0, max_value=8).map(lambda s: T0 + timedelta(seconds=s * 30))
reasons = st.sampled_from(
    [None, "participant_left_timeout", "max_call_duration", "internal error", "a", "b"]
)
entries = st.lists(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["user", "assistant", "system"]),
            "content": st.sampled_from(["Hi", "Hello", ""]),
        }
    ),
    min_size=1,
    max_size=3,
)
recordings = st.fixed_dictionaries(
    {"status": st.sampled_from(["ready", "copy_failed"]), "s3_key": st.sampled_from(["k1", "k2"])}
)
deltas = st.one_of(
    st.builds(Delta, conversation_id=st.just("c1"), joined_at=times),
    st.builds(Delta, conversation_id=st.just("c1"), shutdown_at=times, shutdown_reason=reasons),
    st.builds(Delta, closed_at=times, failure_code=st.sampled_from([None, "tavus_end_failed"])),
    st.builds(Delta, conversation_id=st.just("c1"), transcript=entries),
    st.builds(Delta, conversation_id=st.just("c1"), recording=recordings),
    st.builds(
        Delta, conversation_id=st.just("c1"), perception_analysis=st.sampled_from(["x", "y"])
    ),
    st.builds(
        Delta,
        conversation_id=st.just("c1"),
        post_call_action=st.fixed_dictionaries({"tool": st.sampled_from(["t1", "t2"])}),
    ),
    st.builds(
        Delta,
        conversation_id=st.just("c1"),
        adopt=st.just(True),
        start_time=times,
        conversation_url=st.sampled_from(["https://room/1", None]),
    ),
    st.builds(Delta, fail=st.just(True), failure_code=st.just("not_created_at_tavus")),
    st.builds(Delta, unresolved=st.just(True), failure_code=st.just("tavus_outcome_unknown")),
)
initial = st.sampled_from([ConversationStatus.starting, ConversationStatus.active])


async def _new_row(db: Database, status: ConversationStatus) -> tuple[uuid.UUID, uuid.UUID]:
    user_id, daily_id, row_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with db.transaction() as session:
        session.add(Profile(id=user_id, email=f"{user_id.hex}@x", full_name="P"))
        await session.flush()
        # As `derive` has it (the model starts from a consistent row).
        view = derive(ConversationState(status=status.value, replica_id="r1", mentor_name="Sage"))
        session.add(
            DailySession(
                id=daily_id,
                user_id=user_id,
                session_type="face_to_face",
                session_date=T0.date(),
                session_status=view.session_status,
                session_metadata=view.session_metadata,
            )
        )
        await session.flush()
        session.add(
            MentorConversation(
                id=row_id,
                user_id=user_id,
                daily_session_id=daily_id,
                conversation_name="n",
                status=status.value,
                mentor_name="Sage",
                replica_id="r1",
                callback_token_hash=b"h" * 32,
            )
        )
    return row_id, daily_id


async def _stored(db: Database, daily_id: uuid.UUID) -> tuple[ConversationState, dict[str, Any]]:
    rows = await session_rows(db, daily_id)
    return state_from_row(rows["conversation"]), rows


def _check(database_settings: dict[str, Any], status: ConversationStatus, seq: list[Delta]) -> None:
    # Tavus ids are unique across rows: each example binds its own.
    cid = f"c{uuid.uuid4().hex[:12]}"
    seq = [replace(d, conversation_id=cid) if d.conversation_id else d for d in seq]

    async def run() -> None:
        db = Database(Settings(_env_file=None, environment="test", **database_settings))  # type: ignore[call-arg]
        try:
            row_id, daily_id = await _new_row(db, status)
            before, _ = await _stored(db, daily_id)
            repository = ConversationRepository(db)
            model = before
            for delta in seq:
                await repository.apply(row_id, delta, now=T0 + timedelta(hours=1))
                model = merge(model, delta)
            stored, rows = await _stored(db, daily_id)
        finally:
            await db.dispose()
        assert stored == model
        view = derive(model)
        daily, conversation = rows["daily"], rows["conversation"]
        assert conversation["end_time"] == view.end_time
        assert conversation["duration_seconds"] == view.duration_seconds
        assert daily["session_status"] == view.session_status
        assert daily["started_at"] == view.started_at
        assert daily["completed_at"] == view.end_time
        assert daily["duration_seconds"] == view.duration_seconds
        assert daily["conversation_transcript"] == view.conversation_transcript
        assert daily["session_metadata"] == view.session_metadata

    asyncio.run(run())


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(status=initial, seq=st.lists(deltas, min_size=1, max_size=8))
def test_the_stored_merge_is_the_model(
    database_settings: dict[str, Any], status: ConversationStatus, seq: list[Delta]
) -> None:
    _check(database_settings, status, seq)


@pytest.mark.parametrize(
    "seq",
    [
        # Two copies of a shutdown at the same instant: the smaller reason wins either way.
        [
            Delta(conversation_id="c1", shutdown_at=T0, shutdown_reason="b"),
            Delta(conversation_id="c1", shutdown_at=T0, shutdown_reason="a"),
        ],
        # Equal-length transcripts: the smaller digest wins, whichever came first.
        [
            Delta(conversation_id="c1", transcript=[{"role": "user", "content": "Hi"}]),
            Delta(conversation_id="c1", transcript=[{"role": "user", "content": "Hello"}]),
        ],
        # Ended before Tavus answered: adopted without a start time (no duration).
        [
            Delta(closed_at=T0),
            Delta(conversation_id="c1", adopt=True, start_time=T0 - timedelta(minutes=1)),
        ],
        # Ended during its start, the replica joining anyway: it never started.
        [
            Delta(conversation_id="c1", joined_at=T0),
            Delta(closed_at=T0 + timedelta(seconds=1)),
            Delta(conversation_id="c1", adopt=True, start_time=T0 - timedelta(minutes=1)),
            Delta(conversation_id="c1", shutdown_at=T0, shutdown_reason="conversation_ended"),
        ],
        # A shutdown stamped before the start: it ends at its start.
        [
            Delta(conversation_id="c1", adopt=True, start_time=T0),
            Delta(conversation_id="c1", shutdown_at=T0 - timedelta(minutes=1)),
        ],
        # A failed start is frozen, but keeps the Tavus id an event names.
        [
            Delta(fail=True, failure_code="not_created_at_tavus"),
            Delta(conversation_id="c1", joined_at=T0),
        ],
    ],
)
def test_the_tie_breaks_and_transitions(
    database_settings: dict[str, Any], seq: list[Delta]
) -> None:
    _check(database_settings, ConversationStatus.starting, seq)
