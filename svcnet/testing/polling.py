"""Waiting for a condition in tests: poll until it holds, fail with what was last seen.

A test that sleeps a fixed time and then asserts is either slow (the sleep is long enough for
a loaded machine) or flaky (it is not). Polling a condition waits exactly as long as needed,
and the timeout is only the point where the test gives up, never a performance claim: those
live in bench/.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0


async def eventually(
    check: Callable[[], Awaitable[T | None]],
    timeout: float = DEFAULT_TIMEOUT,
    *,
    interval: float = 0.01,
    what: str = "condition",
) -> T:
    """The first truthy value ``check`` returns; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not met within {timeout}s; last: {last!r}")
        await asyncio.sleep(interval)


def eventually_sync(
    check: Callable[[], T | None],
    timeout: float = DEFAULT_TIMEOUT,
    *,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """:func:`eventually` for tests that are not coroutines (kubectl, subprocesses)."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not met within {timeout}s; last: {last!r}")
        time.sleep(interval)
