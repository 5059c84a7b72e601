"""Tavus memory as an option (`TAVUS_MEMORY`), through the simulator.

With `participant`, each conversation carries the user's tag (`<deployment>:<user id>`) and the
simulated mentor recalls, in a second session, what the user said in the first — never what
another user said; `legacy` sends the same tag as `memory_stores`; a user who turned memory off
sends none; `off` (the default) sends nothing. Erasing a user deletes their memory stores at
Tavus, counted; if Tavus cannot list them, nothing is deleted here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from facetoface.models import Profile
from facetoface.sessions.data_rights import DataRights
from facetoface.sessions.errors import TavusUnavailableError
from tests.conftest import RunningService
from tests.support.factories import create_user
from tests.support.tavus_timing import no_backoff
from tests.support.whole_sessions import finished_session, start_session, talk

SAID = "I keep losing my keys before important meetings"
PARTICIPANT = {"tavus_memory": "participant"}


@pytest.fixture(autouse=True)
def _no_backoff() -> Iterator[None]:
    """A listing Tavus keeps refusing fails after its retries at once (no backoff waits)."""
    with no_backoff():
        yield


def _tag(service: RunningService, user_id: uuid.UUID) -> str:
    return f"{service.settings.deployment_name}:{user_id}"


def _data_rights(service: RunningService) -> DataRights:
    return service.state.data_rights


@pytest.mark.parametrize("service_overrides", [PARTICIPANT])
async def test_the_mentor_recalls_the_first_session_in_the_second(
    service: RunningService,
) -> None:
    alice = await create_user(service.db, full_name="Alice Doe")
    bob = await create_user(service.db, full_name="Bob Roe")
    first = await finished_session(service, alice, [SAID])
    created = service.sim.conversation(first["conversation_id"])
    assert created["participant_tags"] == [_tag(service, alice)]
    assert created["memory_stores"] == []

    second = await start_session(service, alice)
    [reply] = await talk(service, second, ["Hello again"])
    assert reply.startswith(f"Last time you mentioned «{SAID}».")

    # Bob's first session: the same persona, another tag, nothing recalled.
    bobs = await start_session(service, bob)
    assert service.sim.conversation(bobs["conversation_id"])["participant_tags"] == [
        _tag(service, bob)
    ]
    [reply] = await talk(service, bobs, ["Hello"])
    assert "Last time" not in reply
    assert SAID not in reply


@pytest.mark.parametrize("service_overrides", [{"tavus_memory": "legacy"}])
async def test_legacy_sends_the_tag_as_a_memory_store(service: RunningService) -> None:
    user_id = await create_user(service.db)
    first = await finished_session(service, user_id, [SAID])
    created = service.sim.conversation(first["conversation_id"])
    assert created["memory_stores"] == [_tag(service, user_id)]
    assert created["participant_tags"] == []
    second = await start_session(service, user_id)
    [reply] = await talk(service, second, ["Hello again"])
    assert reply.startswith(f"Last time you mentioned «{SAID}».")


@pytest.mark.parametrize("service_overrides", [PARTICIPANT])
async def test_a_user_who_turned_memory_off_sends_no_tag(service: RunningService) -> None:
    user_id = await create_user(service.db)
    await finished_session(service, user_id, [SAID])
    off = await service.client.put(
        "/v1/me/preferences", json={"mentor_memory": False}, headers=service.auth(user_id)
    )
    assert off.status_code == 200
    second = await start_session(service, user_id)
    created = service.sim.conversation(second["conversation_id"])
    assert created["participant_tags"] == []
    assert created["memory_stores"] == []
    [reply] = await talk(service, second, ["Hello again"])
    assert "Last time" not in reply
    assert SAID not in created["conversational_context"]


async def test_off_by_default(service: RunningService) -> None:
    assert service.settings.tavus_memory == "off"
    user_id = await create_user(service.db)
    first = await finished_session(service, user_id, [SAID])
    second = await start_session(service, user_id)
    for started in (first, second):
        created = service.sim.conversation(started["conversation_id"])
        assert (created["participant_tags"], created["memory_stores"]) == ([], [])
    [reply] = await talk(service, second, ["Hello again"])
    assert "Last time" not in reply
    # Our own continuity does not depend on Tavus's memory.
    assert SAID in service.sim.conversation(second["conversation_id"])["conversational_context"]


def _stores(service: RunningService) -> list[dict[str, Any]]:
    stores: list[dict[str, Any]] = service.sim.memory()["memory_stores"]
    return stores


@pytest.mark.parametrize("service_overrides", [PARTICIPANT])
async def test_purging_a_user_deletes_their_memory_stores_at_tavus(
    service: RunningService,
) -> None:
    user_id = await create_user(service.db)
    keep = await create_user(service.db)
    await finished_session(service, user_id, [SAID])
    await finished_session(service, keep, ["not to be forgotten"])
    tags = {store["participant_tag"] for store in _stores(service)}
    assert tags == {_tag(service, user_id), _tag(service, keep)}

    # Tavus cannot list the stores: nothing is deleted, here or there.
    service.sim.add_fault(endpoint="memory_stores", kind="status", status=503, count=10)
    with pytest.raises(TavusUnavailableError, match="memory"):
        await _data_rights(service).purge_user(user_id)
    service.sim.clear_faults()
    assert {store["participant_tag"] for store in _stores(service)} == tags
    async with service.db.transaction() as session:
        assert await session.get(Profile, user_id) is not None

    report = await _data_rights(service).purge_user(user_id)

    assert (report.conversations, report.memory_stores) == (1, 1)
    assert {store["participant_tag"] for store in _stores(service)} == {_tag(service, keep)}
    async with service.db.transaction() as session:
        profiles = set((await session.execute(select(Profile.id))).scalars())
    assert profiles == {keep}
    # Again: nothing left at Tavus or here, and that is no error.
    again = await _data_rights(service).purge_user(user_id)
    assert (again.conversations, again.memory_stores) == (0, 0)
