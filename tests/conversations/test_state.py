"""The merges of Tavus's facts commute and are idempotent: any order, any number of copies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from facetoface.conversations.state import (
    ConversationState,
    Delta,
    derive,
    merge,
    post_call_action_list,
    readable_transcript,
)
from facetoface.conversations.status import ConversationStatus

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
times = st.integers(0, 5).map(lambda s: T0 + timedelta(seconds=10 * s))
facts = st.one_of(
    st.builds(Delta, conversation_id=st.just("c1"), joined_at=times),
    st.builds(
        Delta,
        conversation_id=st.just("c1"),
        shutdown_at=times,
        shutdown_reason=st.sampled_from([None, "participant_left_timeout", "internal error"]),
    ),
    st.builds(
        Delta,
        conversation_id=st.just("c1"),
        transcript=st.lists(
            st.fixed_dictionaries(
                {"role": st.sampled_from(["user", "assistant"]), "content": st.text(max_size=3)}
            ),
            min_size=1,
            max_size=3,
        ),
    ),
    st.builds(
        Delta,
        conversation_id=st.just("c1"),
        recording=st.fixed_dictionaries(
            {"status": st.sampled_from(["ready", "copy_failed"]), "k": st.integers(0, 2)}
        ),
    ),
    st.builds(Delta, conversation_id=st.just("c1"), perception_analysis=st.text(max_size=3)),
    st.builds(
        Delta,
        conversation_id=st.just("c1"),
        post_call_action=st.fixed_dictionaries({"tool": st.integers(0, 3)}),
    ),
)
START = ConversationState(status=ConversationStatus.active.value, start_time=T0)


def _apply(deltas: list[Delta]) -> ConversationState:
    state = START
    for delta in deltas:
        state = merge(state, delta)
    return state


@given(st.lists(facts, min_size=1, max_size=8), st.randoms())
def test_any_order_gives_the_same_state(deltas: list[Delta], rnd: object) -> None:
    shuffled = list(deltas)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert _apply(shuffled) == _apply(deltas)


@given(st.lists(facts, min_size=1, max_size=6))
def test_copies_change_nothing(deltas: list[Delta]) -> None:
    assert _apply(deltas + deltas) == _apply(deltas)


def test_a_failed_conversation_only_binds_its_tavus_id() -> None:
    failed = ConversationState(status=ConversationStatus.failed.value)
    after = merge(failed, Delta(conversation_id="c9", joined_at=T0, shutdown_at=T0))
    assert after == ConversationState(status="failed", tavus_conversation_id="c9")


def test_an_unresolved_start_becomes_active_failed_or_indeterminate() -> None:
    starting = ConversationState(status=ConversationStatus.starting.value)
    adopted = merge(starting, Delta(conversation_id="c1", adopt=True, start_time=T0))
    assert (adopted.status, adopted.start_time) == ("active", T0)
    failed = merge(starting, Delta(fail=True, failure_code="not_created_at_tavus"))
    assert (failed.status, failed.failure_code) == ("failed", "not_created_at_tavus")
    unknown = merge(starting, Delta(unresolved=True, failure_code="tavus_server_error"))
    assert (unknown.status, unknown.failure_code) == ("indeterminate", "tavus_server_error")
    # A verdict about a start never undoes what a callback proved.
    assert merge(adopted, Delta(fail=True, failure_code="x")) == adopted


def test_derive_reads_like_the_session_api() -> None:
    state = merge(
        START,
        Delta(
            conversation_id="c1",
            shutdown_at=T0 + timedelta(seconds=65),
            shutdown_reason="participant_left_timeout",
            transcript=[
                {"role": "system", "content": "prompt"},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
            ],
        ),
    )
    view = derive(state)
    assert (view.session_status, view.duration_seconds) == ("completed", 65)
    assert view.conversation_transcript == "User: Hi\n\nMentor: Hello"
    assert readable_transcript(state.transcript, "Sage") == "User: Hi\n\nSage: Hello"
    assert view.session_metadata == {
        "tavus_conversation_id": "c1",
        "shutdown_reason": "participant_left_timeout",
    }


def test_post_call_actions_are_a_set_listed_by_digest() -> None:
    one, two = {"tool": 1}, {"tool": 2}
    state = _apply([Delta(post_call_action=one), Delta(post_call_action=two)])
    again = _apply([Delta(post_call_action=two), Delta(post_call_action=one)])
    assert post_call_action_list(state.post_call_actions) == post_call_action_list(
        again.post_call_actions
    )
    assert sorted(post_call_action_list(state.post_call_actions) or [], key=str) == [one, two]


def test_a_session_never_ends_before_it_started() -> None:
    """Tavus's shutdown time comes from its clock, the start time from the create's answer:
    a shutdown stamped before the start ends the session at its start."""
    state = ConversationState(status=ConversationStatus.starting)
    for delta in (
        Delta(conversation_id="c1", adopt=True, start_time=T0),
        Delta(
            conversation_id="c1",
            shutdown_at=T0 - timedelta(seconds=30),
            shutdown_reason="end_conversation_endpoint_hit",
        ),
    ):
        state = merge(state, delta)
    view = derive(state)
    assert view.started_at == T0
    assert view.end_time == T0
    assert view.duration_seconds == 0
    assert view.session_status == "completed"


def test_a_session_closed_before_its_create_was_recorded_never_started() -> None:
    """Our side ended it while Tavus was creating it: the user never had the room, so it is
    `interrupted` with no start, whether Tavus's replica joined before or after our end."""
    joined = Delta(conversation_id="c1", joined_at=T0 + timedelta(seconds=2))
    closed = Delta(closed_at=T0 + timedelta(seconds=1))
    adopted = Delta(conversation_id="c1", adopt=True, start_time=T0)
    shutdown = Delta(
        conversation_id="c1",
        shutdown_at=T0 + timedelta(seconds=3),
        shutdown_reason="end_conversation_endpoint_hit",
    )
    for order in ((closed, adopted, joined, shutdown), (joined, closed, adopted, shutdown)):
        state = ConversationState(status=ConversationStatus.starting)
        for delta in order:
            state = merge(state, delta)
        view = derive(state)
        assert view.session_status == "interrupted", order
        assert view.started_at is None
        assert view.duration_seconds is None
