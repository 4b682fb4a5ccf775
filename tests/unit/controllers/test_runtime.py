"""The controller runtime: outcome → retry policy, sync gate, workers; on virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from svcnet.client.workqueue import ItemExponentialRateLimiter, WorkQueue
from svcnet.controllers.runtime import (
    Controller,
    PermanentError,
    Result,
    TemporaryError,
)
from svcnet.util.clock import FakeClock


class Gate:
    def __init__(self) -> None:
        self.event = asyncio.Event()

    def has_synced(self) -> bool:
        return self.event.is_set()

    async def wait_for_sync(self) -> None:
        await self.event.wait()


class Events:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, str, str]] = []

    def event(self, obj: Any, event_type: str, reason: str, message: str) -> None:
        self.recorded.append((event_type, reason, message))


def make(
    reconcile: Callable[[str], Awaitable[Result | None]], **kw: Any
) -> tuple[Controller, FakeClock]:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue("t", ItemExponentialRateLimiter[str](1.0, 100.0), clock)
    return Controller("test", reconcile, queue=queue, clock=clock, **kw), clock


def outcome(kind: str) -> Callable[[str], Awaitable[Result | None]]:
    async def reconcile(key: str) -> Result | None:
        if kind == "ok":
            return None
        if kind == "requeue_after":
            return Result(requeue_after=30.0)
        if kind == "requeue":
            return Result(requeue=True)
        if kind == "permanent":
            raise PermanentError(
                "bad spec",
                reason="InvalidSpec",
                involved={"kind": "Service", "metadata": {"name": key}},
            )
        if kind == "temporary":
            raise TemporaryError("try later")
        if kind == "temporary_delay":
            raise TemporaryError("try later", delay=7.0)
        raise RuntimeError("bug")

    return reconcile


@pytest.mark.parametrize(
    ("kind", "ready_after", "errors", "requeues"),
    [
        ("ok", None, 0, 0),
        ("requeue_after", 30.0, 0, 0),
        ("requeue", 1.0, 0, 1),
        ("permanent", None, 1, 0),
        ("temporary", 1.0, 1, 1),
        ("temporary_delay", 7.0, 1, 1),
        ("other_exception", 1.0, 1, 1),
    ],
)
async def test_each_outcome_decides_when_the_key_comes_back(
    kind: str, ready_after: float | None, errors: int, requeues: int
) -> None:
    c, clock = make(outcome(kind))
    await c.process("k")
    assert (c.reconciles, c.errors, c.requeues) == (1, errors, requeues)
    if ready_after is None:
        clock.advance(1000)
        assert c.queue_depth == 0
        return
    clock.advance(ready_after - 0.01)
    assert len(c.queue) == 0
    clock.advance(0.01)
    assert len(c.queue) == 1


async def test_retries_back_off_exponentially_and_success_forgets() -> None:
    fail = True

    async def reconcile(key: str) -> None:
        if fail:
            raise TemporaryError("x")

    c, _ = make(reconcile)
    for _ in range(3):
        await c.process("k")
    assert c.queue.num_requeues("k") == 3
    fail = False
    await c.process("k")
    assert c.queue.num_requeues("k") == 0


async def test_a_permanent_error_records_a_warning_event() -> None:
    events = Events()
    c, _ = make(outcome("permanent"), recorder=events)
    await c.process("web")
    assert events.recorded == [("Warning", "InvalidSpec", "bad spec")]


async def test_no_reconcile_before_the_informers_have_synced() -> None:
    seen: list[str] = []

    async def reconcile(key: str) -> None:
        seen.append(key)

    gate = Gate()
    c, _ = make(reconcile, informers=[gate])
    c.enqueue("a")
    task = asyncio.create_task(c.run())
    for _ in range(10):
        await asyncio.sleep(0)
    assert seen == [] and not c.synced
    gate.event.set()
    async with asyncio.timeout(1):
        while not seen:
            await asyncio.sleep(0)
    assert seen == ["a"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert c.queue.shutting_down


async def test_workers_run_keys_in_parallel_but_never_one_key_twice() -> None:
    running: set[str] = set()
    overlap: list[str] = []
    peak = 0
    release = asyncio.Event()

    async def reconcile(key: str) -> None:
        nonlocal peak
        if key in running:
            overlap.append(key)
        running.add(key)
        peak = max(peak, len(running))
        await release.wait()
        running.discard(key)

    c, _ = make(reconcile, workers=3)
    task = asyncio.create_task(c.run())
    for k in ("a", "b", "c"):
        c.enqueue(k)
    await asyncio.sleep(0.01)
    c.enqueue("a")  # while "a" is being reconciled
    await asyncio.sleep(0.01)
    assert peak == 3 and overlap == []
    release.set()
    async with asyncio.timeout(1):
        while c.reconciles < 4:
            await asyncio.sleep(0.001)
    assert overlap == []
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_queue_depth_is_exposed() -> None:
    c, _ = make(outcome("ok"))
    c.enqueue("a")
    c.queue.add_after("b", 5)
    assert c.queue_depth == 2
