"""A Tavus-compatible HTTP simulator for development and tests.

It serves the Tavus CVI API over real HTTP — conversations, personas/PALs, replicas/Faces,
memory stores (pinned and learned memory) and tools (the registry and the tools of each PAL)
under ``/v2``, behind Tavus's ``x-api-key`` check — sends Tavus-shaped callbacks, simulates
rooms (``/rooms/{id}``) where a person or a test can join, speak and leave (and a mentor that
remembers earlier conversations with the same participant tag, and calls its PAL's tools,
signed, when the person asks for what they do: actions.py, intents.py), sends post-call
actions after the call, and exposes a test control API (``/_sim``, no auth: a dev tool only)
for fault injection and inspection (``/_sim/tool-calls`` lists every tool call).

- :func:`create_sim_app` builds the ASGI app from a :class:`SimConfig`.
- :func:`run_sim` serves it (blocking), for ``facetoface tavus-sim``.
- :class:`SimServer` runs it on a free local port in a background thread, for tests.
"""

from tavus_sim.app import create_sim_app
from tavus_sim.config import SimConfig
from tavus_sim.server import SimServer, run_sim

__all__ = ["SimConfig", "SimServer", "create_sim_app", "run_sim"]
