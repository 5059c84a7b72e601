"""JSON Patch (RFC 6902) on plain JSON data, for Tavus's ``PATCH`` routes.

All six operations (``add``, ``remove``, ``replace``, ``move``, ``copy``, ``test``) with JSON
Pointer paths (RFC 6901, ``~0``/``~1`` escapes, ``-`` to append to an array). The document
is copied first, so a failing patch changes nothing. Small enough not to earn a dependency.
"""

from __future__ import annotations

import copy
from typing import Any


class PatchError(ValueError):
    """The patch is malformed or does not apply to the document."""


def _tokens(pointer: Any) -> list[str]:
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise PatchError(f"invalid JSON pointer: {pointer!r}")
    if pointer == "":
        return []
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _index(container: list[Any], token: str, *, for_insert: bool) -> int:
    if for_insert and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"invalid array index: {token!r}")
    index = int(token)
    if index > len(container) or (index == len(container) and not for_insert):
        raise PatchError(f"array index out of range: {index}")
    return index


def _parent(document: Any, tokens: list[str]) -> Any:
    node = document
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, for_insert=False)]
        else:
            raise PatchError(f"path not found: /{'/'.join(tokens)}")
    return node


def _get(document: Any, tokens: list[str]) -> Any:
    if not tokens:
        return document
    parent = _parent(document, tokens)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, for_insert=False)]
    raise PatchError(f"path not found: /{'/'.join(tokens)}")


def _remove(document: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(document, tokens)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, for_insert=False))
    raise PatchError(f"path not found: /{'/'.join(tokens)}")


def _add(document: Any, tokens: list[str], value: Any, *, replace: bool) -> Any:
    if not tokens:
        return value
    parent = _parent(document, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"path not found: /{'/'.join(tokens)}")
        parent[last] = value
    elif isinstance(parent, list):
        if replace:
            parent[_index(parent, last, for_insert=False)] = value
        else:
            parent.insert(_index(parent, last, for_insert=True), value)
    else:
        raise PatchError(f"path not found: /{'/'.join(tokens)}")
    return document


def apply(document: Any, patch: Any) -> Any:
    """``document`` with ``patch`` applied (the original is left as it was)."""
    if not isinstance(patch, list):
        raise PatchError("a JSON Patch is an array of operations")
    result = copy.deepcopy(document)
    for operation in patch:
        if not isinstance(operation, dict):
            raise PatchError("each operation is an object")
        op = operation.get("op")
        path = _tokens(operation.get("path"))
        if op in ("add", "replace", "test") and "value" not in operation:
            raise PatchError(f"operation {op} needs a value")
        if op == "add":
            result = _add(result, path, copy.deepcopy(operation["value"]), replace=False)
        elif op == "replace":
            result = _add(result, path, copy.deepcopy(operation["value"]), replace=True)
        elif op == "remove":
            _remove(result, path)
        elif op in ("move", "copy"):
            source = _tokens(operation.get("from"))
            if op == "move" and path[: len(source)] == source and path != source:
                raise PatchError("cannot move a value into itself")
            value = _remove(result, source) if op == "move" else copy.deepcopy(_get(result, source))
            result = _add(result, path, value, replace=False)
        elif op == "test":
            if _get(result, path) != operation["value"]:
                raise PatchError(f"test failed at {operation.get('path')}")
        else:
            raise PatchError(f"unknown operation: {op!r}")
    return result
