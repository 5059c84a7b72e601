"""Continuity: a second session's context knows the first.

Real sessions through the simulator's room: what the user said in the first is quoted in the
second's "since last time" section — in `GET /v1/me/context` and in what Tavus was sent —
with the goals they moved since; never another user's; not when the user turned the mentor's
memory off; and not once the session it came from is deleted.
"""

from __future__ import annotations

import uuid

from sqlalchemy import update

from facetoface.models import UserGoal
from tests.conftest import RunningService
from tests.support.factories import create_user
from tests.support.sessions import given_session
from tests.support.whole_sessions import (
    context,
    finished_session,
    section,
    start_session,
)

FIRST_WORDS = ("I slept badly and work is piling up", "My manager keeps emailing me at midnight")


async def _move_goal(service: RunningService, user_id: uuid.UUID, progress: int) -> None:
    """What the app does when the user records progress (the table's trigger moves updated_at
    to the database's `now()`: later than the session's end, which was recorded before)."""
    async with service.db.transaction() as session:
        await session.execute(
            update(UserGoal)
            .where(UserGoal.user_id == user_id, UserGoal.goal_text.startswith("Meditate"))
            .values(progress_percentage=progress)
        )


async def test_the_second_session_recalls_the_first(service: RunningService) -> None:
    user_id = await create_user(service.db, timezone="America/Sao_Paulo")
    assert section(await context(service, user_id), "since_last_time") is None

    await finished_session(service, user_id, FIRST_WORDS)
    await _move_goal(service, user_id, 55)

    preview = await context(service, user_id)
    since = section(preview, "since_last_time")
    assert since is not None, preview["text"]
    lines = since.splitlines()
    assert lines[0] == "Since last time (their previous sessions, most recent first):"
    assert lines[1].startswith("- Session on ")
    assert lines[1].endswith(", it was ended from the app")
    assert lines[2] == (
        "- What they said last, in their own words: «I slept badly and work is piling up», "
        "then «My manager keeps emailing me at midnight»"
    )
    assert lines[3:] == [
        "- Goal updated since then: «Meditate 10 minutes every morning», now 55% done"
    ]
    assert preview["sections"][-1]["name"] == "since_last_time"

    # The start sends exactly what the preview shows (one statement loads both).
    second = await start_session(service, user_id)
    sent = service.sim.conversation(second["conversation_id"])["conversational_context"]
    assert sent == preview["text"]


async def test_previous_sessions_newest_first_capped_recap_of_the_latest(
    service: RunningService,
) -> None:
    user_id = await create_user(service.db)
    await finished_session(service, user_id, ["the oldest session"])
    for _ in range(2):
        await finished_session(service, user_id)
    latest = await finished_session(service, user_id, ["one", "two", "three", "four"])

    since = section(await context(service, user_id), "since_last_time")
    assert since is not None
    lines = since.splitlines()
    assert [line.startswith("- Session on ") for line in lines[1:4]] == [True] * 3
    assert not lines[4].startswith("- Session on ")  # three sessions, not four
    assert lines[4] == (
        "- What they said last, in their own words: «two», then «three», then «four»"
    )
    assert "the oldest session" not in since
    assert latest["id"]


async def test_a_session_that_never_ended_is_not_carried_over(service: RunningService) -> None:
    user_id = await create_user(service.db)
    # Live, with a transcript in which the user said nothing usable.
    live = await given_session(
        service,
        user_id,
        transcript=[
            {"role": "user", "content": 7},
            {"role": "user", "content": " \n "},
            {"role": "assistant", "content": "Hello"},
        ],
    )
    assert section(await context(service, user_id), "since_last_time") is None
    # Ended: listed, no recap.
    ended = await service.client.post(
        f"/v1/sessions/{live.session_id}/end", headers=service.auth(user_id)
    )
    assert ended.status_code == 200, ended.text
    since = section(await context(service, user_id), "since_last_time")
    assert since is not None
    assert "own words" not in since


async def test_never_another_users(service: RunningService) -> None:
    alice = await create_user(service.db, full_name="Alice Doe")
    bob = await create_user(service.db, full_name="Bob Roe")
    await finished_session(service, alice, ["Alice's private worry"])
    assert section(await context(service, bob), "since_last_time") is None
    await finished_session(service, bob, ["Bob's own words"])

    bobs = section(await context(service, bob), "since_last_time")
    alices = section(await context(service, alice), "since_last_time")
    assert bobs is not None
    assert alices is not None
    assert "Bob's own words" in bobs
    assert "Alice" not in bobs
    assert "Bob" not in alices


async def test_memory_off_leaves_it_out_and_on_brings_it_back(service: RunningService) -> None:
    user_id = await create_user(service.db)
    await finished_session(service, user_id, FIRST_WORDS)
    headers = service.auth(user_id)

    off = await service.client.put(
        "/v1/me/preferences", json={"mentor_memory": False}, headers=headers
    )
    assert off.status_code == 200, off.text
    preview = await context(service, user_id)
    assert section(preview, "since_last_time") is None
    assert "midnight" not in preview["text"]
    second = await start_session(service, user_id)
    sent = service.sim.conversation(second["conversation_id"])["conversational_context"]
    assert "midnight" not in sent
    await service.client.post(f"/v1/sessions/{second['id']}/end", headers=headers)

    on = await service.client.put(
        "/v1/me/preferences", json={"mentor_memory": True}, headers=headers
    )
    assert on.json()["mentor_memory"] is True
    since = section(await context(service, user_id), "since_last_time")
    assert since is not None
    assert since.count("- Session on ") == 2


async def test_deleting_a_session_forgets_its_recap(service: RunningService) -> None:
    user_id = await create_user(service.db)
    earlier = await finished_session(service, user_id, ["words of the earlier session"])
    latest = await finished_session(service, user_id, ["words to be forgotten"])
    since = section(await context(service, user_id), "since_last_time")
    assert since is not None
    assert "words to be forgotten" in since

    deleted = await service.client.delete(
        f"/v1/sessions/{latest['id']}", headers=service.auth(user_id)
    )
    assert deleted.status_code == 204

    since = section(await context(service, user_id), "since_last_time")
    assert since is not None
    assert "words to be forgotten" not in since
    assert since.count("- Session on ") == 1
    assert "words of the earlier session" in since  # the latest one left is the earlier one
    await service.client.delete(f"/v1/sessions/{earlier['id']}", headers=service.auth(user_id))
    assert section(await context(service, user_id), "since_last_time") is None
