"""Text PostgreSQL can store: what Tavus or a user sends is normalised, never refused whole.

PostgreSQL's `text` and `jsonb` cannot hold U+0000, and UTF-8 cannot encode a lone UTF-16
surrogate (JSON's `"\\ud800"` decodes to one in Python). A transcript in which someone typed
such a character must still be stored — so at every boundary where outside data enters
(callbacks, Tavus's verbose fetch, request bodies) strings are normalised: each offending code
point becomes U+FFFD (the replacement character), everything else is kept. The caller keeps
the raw bytes in a safe form (base64) when anything was replaced.
"""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

#: Deeper JSON is refused before anything recurses (Tavus's payloads nest a few levels).
MAX_DEPTH = 32


class TooDeep(ValueError):
    """The JSON value nests deeper than `MAX_DEPTH` levels."""


def storable_text(value: str) -> str:
    """`value` with U+0000 and lone surrogates replaced by U+FFFD."""
    if value.isascii() and "\x00" not in value:
        return value
    return _UNSTORABLE.sub(REPLACEMENT, value)


def storable_json(value: Any) -> tuple[Any, bool]:
    """(`value` with every string — keys too — made storable, whether anything changed).

    Containers are normalised in place (pass freshly parsed JSON). Raises `TooDeep` for
    pathological nesting; iterative, so no input can exhaust the stack.
    """
    changed = False

    def clean(item: Any) -> Any:
        nonlocal changed
        if isinstance(item, str):
            fixed = storable_text(item)
            changed = changed or fixed is not item
            return fixed
        return item

    root: list[Any] = [value]
    stack: list[tuple[Any, Any, int]] = [(root, 0, 1)]
    while stack:
        parent, key, depth = stack.pop()
        item = parent[key]
        if depth > MAX_DEPTH:
            raise TooDeep(f"nests deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            if any(isinstance(k, str) and storable_text(k) is not k for k in item):
                item = {clean(k): v for k, v in item.items()}
                parent[key] = item
            for k in item:
                stack.append((item, k, depth + 1))
        elif isinstance(item, list):
            for index in range(len(item)):
                stack.append((item, index, depth + 1))
        else:
            parent[key] = clean(item)
    return root[0], changed
