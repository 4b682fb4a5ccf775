"""The polling helpers: the first truthy value, or an AssertionError naming what was awaited."""

from __future__ import annotations

import pytest

from svcnet.testing.polling import eventually, eventually_sync


async def test_eventually_returns_the_first_truthy_value() -> None:
    seen: list[int] = []

    async def third_time() -> list[int] | None:
        seen.append(len(seen))
        return list(seen) if len(seen) == 3 else None

    assert await eventually(third_time, interval=0) == [0, 1, 2]


async def test_eventually_fails_with_what_and_the_last_value() -> None:
    async def never() -> int:
        return 0

    with pytest.raises(AssertionError, match=r"the answer not met within 0.05s; last: 0"):
        await eventually(never, 0.05, what="the answer")


def test_eventually_sync_returns_the_first_truthy_value_and_fails_after_the_timeout() -> None:
    values = iter(["", "", "ok"])
    assert eventually_sync(lambda: next(values), interval=0) == "ok"
    with pytest.raises(AssertionError, match="nothing not met"):
        eventually_sync(lambda: None, 0.05, interval=0.01, what="nothing")
