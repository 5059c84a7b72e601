"""Which schemas a release serves (`facetoface.db.compatibility.judge`): its head, or a newer
one whose revisions in between are all marked backward-compatible; else one line naming the
revision."""

from __future__ import annotations

from facetoface.db.compatibility import Marker, SchemaState, judge

KNOWN = frozenset({"0001", "0002"})


def test_at_head_serves() -> None:
    verdict = judge("0002", "0002", KNOWN, {})
    assert verdict.serves
    assert verdict.state is SchemaState.current


def test_behind_or_empty_refuses_and_says_migrate() -> None:
    for current, state in (("0001", SchemaState.behind), (None, SchemaState.empty)):
        verdict = judge(current, "0002", KNOWN, {})
        assert not verdict.serves
        assert verdict.state is state
        assert "run `facetoface migrate` first" in verdict.message
        assert "\n" not in verdict.message


def test_ahead_by_compatible_revisions_serves() -> None:
    markers = {"0004": Marker("0003", True), "0003": Marker("0002", True)}
    verdict = judge("0004", "0002", KNOWN, markers)
    assert verdict.serves
    assert verdict.state is SchemaState.ahead
    assert verdict.ahead_by == ("0004", "0003")
    assert verdict.message.endswith("backward-compatible revision(s) 0003, 0004")


def test_ahead_by_an_incompatible_revision_refuses_naming_it() -> None:
    markers = {"0004": Marker("0003", True), "0003": Marker("0002", False)}
    verdict = judge("0004", "0002", KNOWN, markers)
    assert not verdict.serves
    assert verdict.state is SchemaState.incompatible
    assert verdict.message == (
        "database schema is at 0004, ahead of this code's 0002 by 0003, which is not "
        "backward-compatible: deploy code at 0004 or newer"
    )


def test_ahead_without_markers_refuses() -> None:
    """A database migrated by a release older than the markers, or a revision missing."""
    for markers in ({}, {"0004": Marker("0003", True)}):
        verdict = judge("0004", "0002", KNOWN, markers)
        assert not verdict.serves
        assert verdict.state is SchemaState.unknown
        assert "does not describe" in verdict.message


def test_a_chain_that_never_reaches_the_head_refuses() -> None:
    """Another line of migrations (a branch from 0001), or a loop in a hand-edited table."""
    for markers in (
        {"0003b": Marker("0001", True)},
        {"x": Marker("y", True), "y": Marker("x", True)},
    ):
        current = next(iter(markers))
        verdict = judge(current, "0002", KNOWN, markers)
        assert not verdict.serves
        assert "does not descend" in verdict.message
