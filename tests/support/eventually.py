"""`eventually`: the one way tests wait for something asynchronous to become true.

It polls a check until it gives a truthy value (which it returns) and fails the test with
what it waited for, and the last value seen, once `within` seconds have passed — never a
fixed sleep that is too short on a busy machine and too long on a quiet one.
`eventually_blocking` is the same for synchronous tests (the simulator's threads).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

#: How long a wait may take before the test fails: generous, since a passing test returns as
#: soon as the check holds.
DEFAULT_WITHIN_S = 10.0
_EVERY_S = 0.01


@overload
async def eventually(
    check: Callable[[], Awaitable[T]], *, within: float = ..., what: str = ...
) -> T: ...


@overload
async def eventually(check: Callable[[], T], *, within: float = ..., what: str = ...) -> T: ...


async def eventually(
    check: Callable[[], Awaitable[T] | T], *, within: float = DEFAULT_WITHIN_S, what: str = ""
) -> T:
    """Await `check()` (a coroutine function or a plain one) until its result is truthy."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            _give_up(check, within, what, result)
        await asyncio.sleep(_EVERY_S)


def eventually_blocking(
    check: Callable[[], T], *, within: float = DEFAULT_WITHIN_S, what: str = ""
) -> T:
    """`eventually` for synchronous code: `check()` until its result is truthy."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            _give_up(check, within, what, result)
        time.sleep(_EVERY_S)


def _give_up(check: Callable[..., Any], within: float, what: str, last: Any) -> None:
    name = what or getattr(check, "__name__", repr(check))
    raise AssertionError(f"not true after {within} s: {name} (last seen: {last!r})")
