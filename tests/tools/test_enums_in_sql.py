"""Where migration 0013 spells the goal-change log's value sets in SQL, they equal the enums."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from facetoface.models.mentor_action import ChangeSource, GoalChangeKind
from tests.conftest import RunningService


@pytest.mark.parametrize(
    ("constraint", "enum"),
    [("ck_goal_changes_kind", GoalChangeKind), ("ck_goal_changes_source", ChangeSource)],
)
async def test_the_check_constraints_hold_the_enums_values(
    service: RunningService, constraint: str, enum: type
) -> None:
    async with service.db.transaction() as session:
        definition = (
            await session.execute(
                text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = :c"),
                {"c": constraint},
            )
        ).scalar_one()
    assert set(re.findall(r"'([a-z_]+)'", definition)) == {member.value for member in enum}
