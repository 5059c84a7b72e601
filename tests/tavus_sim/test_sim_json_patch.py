"""JSON Patch (RFC 6902) as the simulator's PATCH routes apply it."""

from __future__ import annotations

from typing import Any

import pytest

from tavus_sim.json_patch import PatchError, apply

DOC: dict[str, Any] = {"a": {"b": 1, "c/d": 2, "e~f": 3}, "list": [1, 2, 3]}


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ([{"op": "add", "path": "/a/x", "value": 9}], {**DOC, "a": {**DOC["a"], "x": 9}}),
        ([{"op": "add", "path": "/list/-", "value": 4}], {**DOC, "list": [1, 2, 3, 4]}),
        ([{"op": "add", "path": "/list/0", "value": 0}], {**DOC, "list": [0, 1, 2, 3]}),
        ([{"op": "remove", "path": "/a/c~1d"}], {**DOC, "a": {"b": 1, "e~f": 3}}),
        ([{"op": "replace", "path": "/a/e~0f", "value": 4}], {**DOC, "a": {**DOC["a"], "e~f": 4}}),
        (
            [{"op": "move", "from": "/a/b", "path": "/b"}],
            {"a": {"c/d": 2, "e~f": 3}, "list": [1, 2, 3], "b": 1},
        ),
        ([{"op": "copy", "from": "/list/1", "path": "/two"}], {**DOC, "two": 2}),
        ([{"op": "test", "path": "/a/b", "value": 1}], DOC),
        ([{"op": "replace", "path": "", "value": [1]}], [1]),
    ],
)
def test_operations(patch: list[dict[str, Any]], expected: Any) -> None:
    assert apply(DOC, patch) == expected


@pytest.mark.parametrize(
    "patch",
    [
        {"op": "add", "path": "/x", "value": 1},
        [{"op": "replace", "path": "/nope", "value": 1}],
        [{"op": "remove", "path": "/list/3"}],
        [{"op": "add", "path": "/list/01", "value": 1}],
        [{"op": "add", "path": "a", "value": 1}],
        [{"op": "add", "path": "/x"}],
        [{"op": "test", "path": "/a/b", "value": 2}],
        [{"op": "move", "from": "/a", "path": "/a/b/c"}],
        [{"op": "remove", "path": ""}],
        [{"op": "frobnicate", "path": "/a"}],
        ["add"],
    ],
)
def test_a_bad_patch_raises_and_leaves_the_document_alone(patch: Any) -> None:
    before = repr(DOC)
    with pytest.raises(PatchError):
        apply(
            DOC,
            [{"op": "add", "path": "/first", "value": 1}, *patch]
            if isinstance(patch, list)
            else patch,
        )
    assert repr(DOC) == before
