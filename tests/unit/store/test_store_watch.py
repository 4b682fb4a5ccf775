"""Watches: order, prev values, prefix filtering, compaction, slow and concurrent watchers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from svcnet.store import (
    CompactedError,
    EventType,
    KeyValue,
    MemoryStore,
    Watch,
    WatchClosedError,
    WatchEvent,
)

StoreFactory = Callable[..., MemoryStore]


async def take(watch: Watch, n: int, timeout: float = 2.0) -> list[WatchEvent]:
    """The next ``n`` events of a watch, failing the test if they do not come."""
    events: list[WatchEvent] = []

    async def collect() -> None:
        async for event in watch:
            events.append(event)
            if len(events) == n:
                return

    await asyncio.wait_for(collect(), timeout)
    return events


async def test_watch_sees_later_events_in_order_with_prev_values(store: MemoryStore) -> None:
    await store.create("/a", b"0")  # rev 1, before the watch point
    watch = store.watch("/", store.revision)
    await store.create("/b", b"1")  # 2
    await store.update("/a", b"2")  # 3
    await store.delete("/b")  # 4
    events = await take(watch, 3)
    assert events == [
        WatchEvent(EventType.PUT, KeyValue("/b", b"1", 2, 2), None),
        WatchEvent(EventType.PUT, KeyValue("/a", b"2", 1, 3), KeyValue("/a", b"0", 1, 1)),
        WatchEvent(EventType.DELETE, KeyValue("/b", b"1", 2, 4), KeyValue("/b", b"1", 2, 2)),
    ]
    assert [e.revision for e in events] == [2, 3, 4]


async def test_watch_from_an_old_revision_replays_history(store: MemoryStore) -> None:
    for i in range(5):
        await store.create(f"/k{i}", b"v")
    watch = store.watch("/", 2)
    events = await take(watch, 3)
    assert [e.kv.key for e in events] == ["/k2", "/k3", "/k4"]


async def test_watch_filters_by_prefix(store: MemoryStore) -> None:
    watch = store.watch("/registry/services/", 0)
    await store.create("/registry/pods/default/p", b"p")
    await store.create("/registry/services/default/s", b"s")
    await store.create("/registry/servicesx/t", b"t")
    await store.update("/registry/services/default/s", b"s2")
    events = await take(watch, 2)
    assert [(e.kv.key, e.revision) for e in events] == [
        ("/registry/services/default/s", 2),
        ("/registry/services/default/s", 4),
    ]


async def test_watch_from_a_future_revision_starts_after_it(store: MemoryStore) -> None:
    watch = store.watch("/", 2)
    for i in range(4):
        await store.create(f"/k{i}", b"v")
    assert [e.revision for e in await take(watch, 2)] == [3, 4]


async def test_watch_waits_for_a_write(store: MemoryStore) -> None:
    watch = store.watch("/", 0)
    pending = asyncio.ensure_future(watch.__anext__())
    await asyncio.sleep(0.01)
    assert not pending.done()
    await store.create("/a", b"1")
    event = await asyncio.wait_for(pending, 1)
    assert event.kv.key == "/a"


async def test_next_batch_returns_everything_ready_up_to_max_events(store: MemoryStore) -> None:
    watch = store.watch("/", 0)
    for i in range(5):
        await store.create(f"/k{i}", b"v")
    first = await watch.next_batch(3)
    second = await watch.next_batch(3)
    assert [e.revision for e in first] == [1, 2, 3]
    assert [e.revision for e in second] == [4, 5]


async def test_next_batch_is_cancel_safe(store: MemoryStore) -> None:
    watch = store.watch("/", 0)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(watch.next_batch(), 0.01)
    await store.create("/a", b"1")
    assert [e.kv.key for e in await asyncio.wait_for(watch.next_batch(), 1)] == ["/a"]


async def test_progress_revision_covers_non_matching_writes(store: MemoryStore) -> None:
    watch = store.watch("/services/", 0)
    await store.create("/pods/a", b"1")
    await store.create("/services/a", b"1")
    await store.create("/pods/b", b"1")
    assert watch.progress_revision == 0
    events = await watch.next_batch()
    assert [e.revision for e in events] == [2]
    assert watch.progress_revision == 3


async def test_progress_revision_stops_before_undelivered_events(store: MemoryStore) -> None:
    watch = store.watch("/", 0)
    for i in range(3):
        await store.create(f"/k{i}", b"v")
    first = await watch.__anext__()
    assert first.revision == 1
    assert watch.progress_revision == 1


@pytest.mark.parametrize(
    ("compact_to", "watch_after", "compacted"),
    [(3, 2, True), (3, 0, True), (3, 3, False), (3, 4, False)],
    ids=["just-before", "from-zero", "at-compaction-point", "after"],
)
async def test_watch_after_compaction(
    store: MemoryStore, compact_to: int, watch_after: int, compacted: bool
) -> None:
    for i in range(5):
        await store.create(f"/k{i}", b"v")
    await store.compact(compact_to)
    assert store.compact_revision == compact_to
    if compacted:
        with pytest.raises(CompactedError) as info:
            store.watch("/", watch_after)
        assert (info.value.requested, info.value.compact_revision) == (watch_after, compact_to)
        return
    events = await take(store.watch("/", watch_after), 5 - watch_after)
    assert [e.revision for e in events] == list(range(watch_after + 1, 6))


async def test_compacting_an_older_revision_changes_nothing(store: MemoryStore) -> None:
    for i in range(5):
        await store.create(f"/k{i}", b"v")
    await store.compact(4)
    await store.compact(2)
    assert store.compact_revision == 4


async def test_compacting_the_future_is_refused(store: MemoryStore) -> None:
    await store.create("/a", b"1")
    with pytest.raises(ValueError):
        await store.compact(2)


async def test_compaction_keeps_current_state(store: MemoryStore) -> None:
    for i in range(5):
        await store.create(f"/k{i}", b"v")
    await store.compact(5)
    assert len((await store.list("/")).items) == 5


async def test_history_ring_drops_old_events_and_moves_compact_revision(
    make_store: StoreFactory,
) -> None:
    store = make_store(history=10)
    for i in range(100):
        await store.create(f"/k{i:03d}", b"v")
    assert 80 <= store.compact_revision <= 90
    with pytest.raises(CompactedError):
        store.watch("/", 50)
    tail = await take(store.watch("/", store.compact_revision), 100 - store.compact_revision)
    assert tail[-1].revision == 100


async def test_slow_watcher_is_closed_instead_of_buffering(make_store: StoreFactory) -> None:
    store = make_store(history=10)
    slow = store.watch("/", 0)
    fast = store.watch("/", 0)
    for i in range(100):
        await store.create(f"/k{i:03d}", b"v")
        await fast.next_batch()
    with pytest.raises(WatchClosedError):
        await slow.next_batch()


async def test_watch_behind_a_compaction_is_closed(store: MemoryStore) -> None:
    watch = store.watch("/", 0)
    for i in range(5):
        await store.create(f"/k{i}", b"v")
    await store.compact(3)
    with pytest.raises(WatchClosedError):
        await watch.next_batch()


async def test_close_ends_iteration_even_while_waiting(store: MemoryStore) -> None:
    watch = store.watch("/", 0)
    pending = asyncio.ensure_future(watch.__anext__())
    await asyncio.sleep(0.01)
    watch.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, 1)
    assert await watch.next_batch() == []


async def test_closing_the_store_closes_waiting_watches(store: MemoryStore) -> None:
    watch = store.watch("/", 0)
    pending = asyncio.ensure_future(watch.next_batch())
    await asyncio.sleep(0.01)
    await store.close()
    with pytest.raises(WatchClosedError):
        await asyncio.wait_for(pending, 1)


async def test_concurrent_watchers_each_see_every_event_in_order(store: MemoryStore) -> None:
    n_events, n_watchers = 300, 20
    watches = [store.watch("/" if w % 2 == 0 else "/even/", 0) for w in range(n_watchers)]

    async def write() -> None:
        for i in range(n_events):
            await store.create(f"/{'even' if i % 2 == 0 else 'odd'}/{i:04d}", b"v")
            if i % 7 == 0:
                await asyncio.sleep(0)

    takers = [
        asyncio.ensure_future(take(w, n_events if w.prefix == "/" else n_events // 2, 5))
        for w in watches
    ]
    await write()
    results = await asyncio.gather(*takers)
    for watch, events in zip(watches, results, strict=True):
        expected = [r for r in range(1, n_events + 1) if watch.prefix == "/" or r % 2 == 1]
        assert [e.revision for e in events] == expected


@pytest.mark.parametrize("max_events", [1, 2, 3, 1000])
async def test_watchers_of_one_prefix_at_different_cursors_each_see_their_own_events(
    store: MemoryStore, max_events: int
) -> None:
    # Watchers of the same prefix share filtering work; cursors and batch sizes must not leak.
    early = store.watch("/s/", 0)
    for i in range(3):
        await store.create(f"/s/{i}", b"v")
        await store.create(f"/p/{i}", b"v")
    late = store.watch("/s/", 4)
    twin = store.watch("/s/", 0)
    for i in range(3, 6):
        await store.create(f"/s/{i}", b"v")
        await store.create(f"/p/{i}", b"v")

    async def drain(watch: Watch, n: int) -> list[int]:
        revs: list[int] = []
        while len(revs) < n:
            batch = await asyncio.wait_for(watch.next_batch(max_events), 1)
            assert 1 <= len(batch) <= max_events
            revs += [e.revision for e in batch]
        return revs

    assert await drain(early, 6) == [1, 3, 5, 7, 9, 11]
    assert await drain(late, 4) == [5, 7, 9, 11]
    assert await drain(twin, 6) == [1, 3, 5, 7, 9, 11]


def test_watch_from_a_negative_revision_is_refused(store: MemoryStore) -> None:
    with pytest.raises(ValueError):
        store.watch("/", -1)
