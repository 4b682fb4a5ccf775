"""The work queue's client-go semantics, on virtual time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from svcnet.client.workqueue import (
    BucketRateLimiter,
    ItemExponentialRateLimiter,
    ShutDown,
    WorkQueue,
)
from svcnet.util.clock import FakeClock


def make(maxsize: int = 100) -> tuple[WorkQueue[str], FakeClock]:
    clock = FakeClock()
    return WorkQueue("t", ItemExponentialRateLimiter[str](0.005, 1000.0), clock, maxsize), clock


async def drain(q: WorkQueue[str]) -> list[str]:
    out = []
    while len(q):
        item = await q.get()
        out.append(item)
        q.done(item)
    return out


async def test_items_come_out_in_the_order_added() -> None:
    q, _ = make()
    for k in ("a", "b", "c"):
        q.add(k)
    assert await drain(q) == ["a", "b", "c"]


async def test_adding_a_queued_key_again_is_a_no_op() -> None:
    q, _ = make()
    for k in ("a", "b", "a", "a"):
        q.add(k)
    assert len(q) == 2
    assert await drain(q) == ["a", "b"]


async def test_a_key_added_while_processing_is_not_handed_out_twice() -> None:
    q, _ = make()
    q.add("a")
    item = await q.get()
    q.add("a")
    assert len(q) == 0  # held back: a second worker must not get it meanwhile
    q.done(item)
    assert len(q) == 1
    assert await q.get() == "a"


async def test_a_key_not_readded_while_processing_is_gone_after_done() -> None:
    q, _ = make()
    q.add("a")
    q.done(await q.get())
    assert len(q) == 0


async def test_get_waits_until_an_item_is_added() -> None:
    q, _ = make()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.add("x")
    assert await asyncio.wait_for(getter, 1) == "x"


@pytest.mark.parametrize(
    ("delays", "ready_after"),
    [
        ([5.0], 5.0),
        ([5.0, 2.0], 2.0),  # the earlier of two pending delays wins
        ([2.0, 5.0], 2.0),  # a later one does not postpone
    ],
)
async def test_add_after_holds_the_item_until_its_delay(
    delays: list[float], ready_after: float
) -> None:
    q, clock = make()
    for d in delays:
        q.add_after("a", d)
    clock.advance(ready_after - 0.001)
    assert len(q) == 0
    clock.advance(0.001)
    assert len(q) == 1
    clock.advance(10)
    assert len(q) == 1  # no second copy from the cancelled timer


async def test_add_after_zero_adds_at_once() -> None:
    q, _ = make()
    q.add_after("a", 0)
    assert len(q) == 1


async def test_rate_limited_adds_back_off_exponentially_until_forgotten() -> None:
    limiter = ItemExponentialRateLimiter[str](0.005, 1000.0)
    assert [limiter.when("a") for _ in range(4)] == [0.005, 0.01, 0.02, 0.04]
    assert limiter.num_requeues("a") == 4
    assert limiter.when("b") == 0.005  # per item
    limiter.forget("a")
    assert limiter.when("a") == 0.005


async def test_rate_limited_backoff_is_capped() -> None:
    limiter = ItemExponentialRateLimiter[str](1.0, 60.0)
    assert [limiter.when("a") for _ in range(8)][-1] == 60.0


async def test_bucket_allows_a_burst_then_spaces_items() -> None:
    clock = FakeClock()
    bucket = BucketRateLimiter[str](qps=10.0, burst=2, clock=clock)
    assert [bucket.when("x") for _ in range(4)] == [
        0.0,
        0.0,
        pytest.approx(0.1),
        pytest.approx(0.2),
    ]
    clock.advance(10)
    assert bucket.when("x") == 0.0


async def test_add_rate_limited_uses_the_limiter_delay() -> None:
    q, clock = make()
    q.add_rate_limited("a")
    assert len(q) == 0 and q.depth == 1
    clock.advance(0.005)
    assert len(q) == 1
    assert q.num_requeues("a") == 1
    q.forget("a")
    assert q.num_requeues("a") == 0


async def test_shutdown_wakes_waiting_getters() -> None:
    q, _ = make()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.shutdown()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(getter, 1)


async def test_adds_after_shutdown_are_ignored() -> None:
    q, clock = make()
    q.add_after("late", 1)
    q.shutdown()
    q.add("a")
    clock.advance(2)
    assert len(q) == 0


async def test_the_queue_drops_keys_beyond_its_bound() -> None:
    q, _ = make(maxsize=2)
    for k in ("a", "b", "c"):
        q.add(k)
    assert len(q) == 2 and q.dropped == 1
    q.add("a")  # a duplicate is not a drop
    assert q.dropped == 1


async def test_shutdown_with_drain_waits_for_items_in_processing() -> None:
    q, _ = make()
    q.add("a")
    item = await q.get()
    drainer = asyncio.create_task(q.shutdown_with_drain())
    await asyncio.sleep(0.01)
    assert not drainer.done()
    q.done(item)
    await asyncio.wait_for(drainer, 1)


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from("abcd")),
        st.tuples(st.just("get"), st.just("")),
        st.tuples(st.just("done"), st.integers(0, 3)),
    ),
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(OPS)
def test_the_queue_matches_a_model_of_client_go_semantics(ops: list[tuple[str, Any]]) -> None:
    async def run() -> None:
        q, _ = make()
        model_queue: list[str] = []
        dirty: set[str] = set()
        processing: list[str] = []
        for op, arg in ops:
            if op == "add":
                q.add(arg)
                if arg not in dirty:
                    dirty.add(arg)
                    if arg not in processing:
                        model_queue.append(arg)
            elif op == "get" and model_queue:
                item = await q.get()
                assert item == model_queue.pop(0)
                assert item not in processing  # never two workers on one key
                processing.append(item)
                dirty.discard(item)
            elif op == "done" and processing:
                item = processing.pop(arg % len(processing))
                q.done(item)
                if item in dirty:
                    model_queue.append(item)
            assert len(q) == len(model_queue)
        # Whatever was added is eventually handed out.
        for item in processing:
            q.done(item)
        assert set(await drain(q)) == dirty

    asyncio.run(run())
