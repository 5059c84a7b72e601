"""JSON as the simulator writes it: ASCII, every other character as a ``\\u`` escape.

A user can type anything into a room, including what UTF-8 cannot encode (a lone UTF-16
surrogate) and what PostgreSQL cannot store (U+0000). Tavus passes such text on in its JSON —
in callbacks and in the verbose conversation fetch — as escapes (``"\\ud800"``,
``"\\u0000"``), which is what this encoding does; Starlette's default (UTF-8, escapes only
where JSON requires them) would fail on the surrogate. Every JSON body the simulator sends —
answers, callbacks — goes through here, so hostile text reaches the service as Tavus would
send it.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse as _StarletteJSON


def dumps(content: Any) -> bytes:
    """`content` as compact ASCII JSON."""
    return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


class JSONResponse(_StarletteJSON):
    """A JSON answer in the simulator's encoding (`dumps`)."""

    def render(self, content: Any) -> bytes:
        return dumps(content)
