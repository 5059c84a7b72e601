"""`/v1/me/preferences`: the caller's own memory choice, validated strictly, on every database."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from facetoface.models import Profile, UserPreference
from tests.conftest import RunningService
from tests.support.factories import create_user


async def test_defaults_then_replace_then_read_back(service: RunningService) -> None:
    user_id = await create_user(service.db)
    headers = service.auth(user_id)
    first = await service.client.get("/v1/me/preferences", headers=headers)
    assert first.status_code == 200
    assert first.json() == {"mentor_memory": True, "updated_at": None}

    put = await service.client.put(
        "/v1/me/preferences", json={"mentor_memory": False}, headers=headers
    )
    assert put.status_code == 200, put.text
    assert put.json()["mentor_memory"] is False
    assert put.json()["updated_at"] is not None
    read = await service.client.get("/v1/me/preferences", headers=headers)
    assert read.json() == put.json()
    again = await service.client.put(
        "/v1/me/preferences", json={"mentor_memory": True}, headers=headers
    )
    assert again.json()["mentor_memory"] is True
    async with service.db.transaction() as session:
        rows = (await session.execute(select(UserPreference))).scalars().all()
    assert [(row.user_id, row.mentor_memory) for row in rows] == [(user_id, True)]


async def test_each_user_has_their_own(service: RunningService) -> None:
    alice = await create_user(service.db)
    bob = await create_user(service.db)
    await service.client.put(
        "/v1/me/preferences", json={"mentor_memory": False}, headers=service.auth(alice)
    )
    bobs = await service.client.get("/v1/me/preferences", headers=service.auth(bob))
    assert bobs.json()["mentor_memory"] is True


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"mentor_memory": "false"},
        {"mentor_memory": 0},
        {"mentor_memory": None},
        {"mentor_memory": False, "user_id": "00000000-0000-0000-0000-000000000000"},
        [],
        "false",
    ],
)
async def test_bad_bodies_are_422_and_change_nothing(service: RunningService, body: Any) -> None:
    user_id = await create_user(service.db)
    response = await service.client.put(
        "/v1/me/preferences", json=body, headers=service.auth(user_id)
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "validation_error"
    read = await service.client.get("/v1/me/preferences", headers=service.auth(user_id))
    assert read.json() == {"mentor_memory": True, "updated_at": None}


async def test_no_profile_is_404_and_no_token_is_401(service: RunningService) -> None:
    nobody = await create_user(service.db)
    async with service.db.transaction() as session:
        await session.delete(await session.get(Profile, nobody))
    for method, body in (("GET", None), ("PUT", {"mentor_memory": False})):
        response = await service.client.request(
            method, "/v1/me/preferences", json=body, headers=service.auth(nobody)
        )
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "profile_not_found"
        anonymous = await service.client.request(method, "/v1/me/preferences", json=body)
        assert anonymous.status_code == 401
