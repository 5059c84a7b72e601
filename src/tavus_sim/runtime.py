"""The simulator's live parts, bundled: config, state, catalogue, memory, tools, faults,
callback sender, tool caller, lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from tavus_sim.callbacks import CallbackSender
from tavus_sim.catalog import Catalog
from tavus_sim.config import SimConfig
from tavus_sim.faults import FaultQueue
from tavus_sim.lifecycle import Lifecycle
from tavus_sim.memory import MemoryBank
from tavus_sim.state import SimState
from tavus_sim.tool_calls import ToolCaller
from tavus_sim.tools import ToolRegistry


class SimRuntime:
    """Everything one simulator instance holds; kept on ``app.state.sim``."""

    def __init__(self, config: SimConfig) -> None:
        self.initial_config = config.model_copy(deep=True)
        self.config = config.model_copy(deep=True)
        self.state = SimState()
        self.catalog = Catalog()
        self.memory = MemoryBank()
        self.tools = ToolRegistry()
        self.faults = FaultQueue()
        self.rng = random.Random(config.callback_seed)  # noqa: S311 - test fixtures, not crypto
        self.sender = CallbackSender(self)
        self.caller = ToolCaller(self)
        self.lifecycle = Lifecycle(self)
        self._wake = asyncio.Event()

    async def start(self) -> None:
        """Acquire resources (the callback and tool-call HTTP clients)."""
        await self.sender.start()
        await self.caller.start()

    async def aclose(self) -> None:
        """Stop timers, wake sleeping requests, cancel deliveries, release resources."""
        self.interrupt_sleepers()
        await self.lifecycle.cancel_all()
        await self.caller.aclose()
        await self.sender.aclose()

    async def reset(self) -> None:
        """Forget all conversations, memories, created personas and replicas, tools and tool
        calls, faults and runtime config changes."""
        self.interrupt_sleepers()
        await self.lifecycle.cancel_all()
        await self.caller.cancel_all()
        await self.sender.cancel_all()
        self.state.clear()
        self.catalog.reset()
        self.memory.reset()
        self.tools.reset()
        self.caller.reset()
        self.faults.clear()
        self.config = self.initial_config.model_copy(deep=True)
        self.rng = random.Random(self.config.callback_seed)  # noqa: S311 - as above

    def update_config(self, changes: Mapping[str, Any]) -> SimConfig:
        """Apply a partial config change (validated as a whole); return the new config."""
        updated = SimConfig.model_validate({**self.config.model_dump(), **changes})
        if "callback_seed" in changes:
            self.rng = random.Random(updated.callback_seed)  # noqa: S311 - as above
        self.config = updated
        return updated

    async def sleep(self, seconds: float) -> None:
        """Sleep, but return early when :meth:`interrupt_sleepers` is called.

        Fault delays use this so that a reset or a server stop does not wait for them.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    def interrupt_sleepers(self) -> None:
        """Wake every :meth:`sleep` in progress (later sleeps are unaffected)."""
        self._wake.set()
        self._wake = asyncio.Event()


def get_runtime(request: Request) -> SimRuntime:
    """Return the runtime of the simulator app serving ``request``."""
    runtime = request.app.state.sim
    if not isinstance(runtime, SimRuntime):  # pragma: no cover - wiring error
        raise TypeError("app.state.sim is not a SimRuntime; build the app with create_sim_app()")
    return runtime
