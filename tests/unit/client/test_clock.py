"""The fake clock that every virtual-time test relies on."""

from __future__ import annotations

import asyncio

from svcnet.util.clock import FakeClock, RealClock, rfc3339


def test_advance_fires_due_timers_in_deadline_order() -> None:
    clock = FakeClock()
    fired: list[str] = []
    clock.call_later(3, lambda: fired.append("c"))
    clock.call_later(1, lambda: fired.append("a"))
    clock.call_later(2, lambda: fired.append("b"))
    clock.advance(2)
    assert fired == ["a", "b"] and clock.monotonic() == 2
    clock.advance(1)
    assert fired == ["a", "b", "c"]


def test_a_cancelled_timer_never_fires() -> None:
    clock = FakeClock()
    fired: list[int] = []
    clock.call_later(1, lambda: fired.append(1)).cancel()
    clock.advance(5)
    assert fired == [] and clock.pending() == 0


def test_wall_time_moves_with_monotonic_time() -> None:
    clock = FakeClock(start=1_700_000_000)
    clock.advance(60)
    assert clock.time() == 1_700_000_060
    assert rfc3339(clock.now()) == "2023-11-14T22:14:20Z"


async def test_step_plays_out_chains_of_sleeps() -> None:
    clock = FakeClock()
    woke: list[float] = []

    async def sleeper() -> None:
        for _ in range(3):
            await clock.sleep(10)
            woke.append(clock.monotonic())

    task = asyncio.create_task(sleeper())
    await clock.step(30)
    await task
    assert woke == [10, 20, 30]


async def test_a_cancelled_sleep_leaves_no_timer() -> None:
    clock = FakeClock()
    task = asyncio.create_task(clock.sleep(5))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert clock.pending() == 0


async def test_the_real_clock_sleeps_and_schedules() -> None:
    clock = RealClock()
    fired = asyncio.Event()
    clock.call_later(0.01, fired.set)
    await clock.sleep(0.02)
    assert fired.is_set()
