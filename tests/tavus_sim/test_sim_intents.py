"""What the simulated model reads out of the user's words (intents.py) and out of a transcript
(digest.py): pure functions, deterministic."""

from __future__ import annotations

from typing import Any

import pytest

from tavus_sim import digest
from tavus_sim.intents import ContextGoal, context_goals, intents

UUID_A = "3f2a9c1e-0000-4000-8000-00000000000a"


@pytest.mark.parametrize(
    ("line", "goal"),
    [
        (
            f"- «Meditate 10 minutes every morning» (goal_id: {UUID_A}, habit goal, 20% done)",
            ContextGoal(UUID_A, "Meditate 10 minutes every morning"),
        ),
        ("- «Run a 5k» [goal_id=g_2]", ContextGoal("g_2", "Run a 5k")),
        ("Read 12 books (goal id 77)", ContextGoal("77", "Read 12 books")),
        (f"- «Sleep before 23:00» ({UUID_A}, 10% done)", ContextGoal(UUID_A, "Sleep before 23:00")),
    ],
)
def test_goals_and_their_ids_are_read_from_the_context(line: str, goal: ContextGoal) -> None:
    assert context_goals(f"Active goals:\n{line}\nOther: things") == [goal]


def test_goals_without_an_id_are_not_listed() -> None:
    assert context_goals("Active goals:\n- «Run a 5k» (10% done)\n- Sleep early") == []


CONTEXT = (
    "Active goals:\n"
    "- «Meditate 10 minutes every morning» (goal_id: g1, 20% done)\n"
    "- «Run a 5k by June» (goal_id: g2, 10% done)\n"
)


def _progress(goal_id: str, value: float) -> tuple[str, dict[str, Any]]:
    return ("update_goal_progress", {"goal_id": goal_id, "progress_percentage": value})


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        (
            "I'm at 60 % on meditating",
            [("update_goal_progress", {"goal_id": "g1", "progress_percentage": 60})],
        ),
        (
            "I am 42.5% done with the running",
            [("update_goal_progress", {"goal_id": "g2", "progress_percentage": 42.5})],
        ),
        (
            "Morning meditation? Call it 75 percent.",
            [("update_goal_progress", {"goal_id": "g1", "progress_percentage": 75})],
        ),
        ("I'm at 50 % on cooking", []),
        ("I'm 100% sure I want to keep running", []),
        ("What do you remember about me?", []),
        ("Do you remember my run?", []),
        ("Can you remember that I run on Sundays?", [("remember", {"fact": "I run on Sundays"})]),
        ("Remember: tea, not coffee.", [("remember", {"fact": "tea, not coffee"})]),
        ("Nothing to report", []),
        ("Please remember that I hate mornings!", [("remember", {"fact": "I hate mornings"})]),
        ("Add a new goal: run 5 km by June.", [("add_goal", {"goal_text": "run 5 km by June"})]),
        (
            "add a goal to read 10 pages a day, and remember that I'm 40",
            [
                ("add_goal", {"goal_text": "read 10 pages a day"}),
                ("remember", {"fact": "I'm 40"}),
            ],
        ),
    ],
)
def test_what_the_user_says_calls_for_tools(
    said: str, expected: list[tuple[str, dict[str, Any]]]
) -> None:
    assert [(i.tool_name, i.arguments) for i in intents(said, CONTEXT)] == expected


def test_the_report_is_built_from_the_users_turns() -> None:
    context = "You are «Sage», meeting «Ana».\n" + CONTEXT
    turns = [
        "I'm stressed",
        "I'm at 30 % on meditating",
        "I'm going to run on Sunday",
        "I'm at 35 % on meditating",
    ]

    report = digest.report(context, turns)

    assert report == {
        "summary": (
            "Ana talked about «I'm stressed», «I'm at 30 % on meditating» and «I'm going to run "
            "on Sunday» (4 turns)."
        ),
        "next_steps": ["run on Sunday"],
        "goal_updates": [{"goal_id": "g1", "progress_percentage": 35}],
        "mood": "negative",
    }
    assert digest.report(context, turns) == report


def test_without_commitments_the_next_step_is_the_first_goal() -> None:
    report = digest.report("Active goals: Run a 5k; Sleep early", ["Hello"])

    assert report["next_steps"] == ["Take one small step towards «Run a 5k»"]
    assert report["summary"] == "The user talked about «Hello» (1 turn)."
    assert report["mood"] == "neutral"
    assert report["goal_updates"] == []


def test_the_profile_keeps_the_latest_facts() -> None:
    profile = digest.profile(
        ["My name is Ana", "my dog's name is Rex", "I like tea. I love long walks", "Call me Annie"]
    )

    assert profile == {"name": "Annie", "dog_name": "Rex", "likes": ["tea", "long walks"]}
