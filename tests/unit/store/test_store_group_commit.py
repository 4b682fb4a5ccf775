"""Group commit: writes of one event-loop iteration share a journal transaction, and nothing is
visible or acknowledged before that transaction committed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from svcnet.store import KeyValue, MemoryStore, SqliteStore, StoreError
from svcnet.store.journal import JournalOp


class BatchRecorder:
    """A ``BatchJournal`` that records each transaction and can fail one, like SQLITE_FULL."""

    def __init__(self) -> None:
        self.batches: list[list[JournalOp]] = []
        self.fail = False

    def write_batch(self, ops: Sequence[JournalOp]) -> None:
        if self.fail:
            raise StoreError("database or disk is full")
        self.batches.append(list(ops))

    def put(self, kv: KeyValue) -> None:
        raise AssertionError("a batch journal gets every write through write_batch")

    def delete(self, key: str, revision: int) -> None:
        raise AssertionError("a batch journal gets every write through write_batch")

    def compact(self, revision: int) -> None:
        pass

    def close(self) -> None:
        pass


async def test_concurrent_writes_share_one_transaction() -> None:
    journal = BatchRecorder()
    store = MemoryStore(journal=journal)
    await asyncio.gather(*(store.create(f"/k{i}", b"v") for i in range(20)))
    assert [len(b) for b in journal.batches] == [20]
    assert [op.revision for op in journal.batches[0]] == list(range(1, 21))


async def test_batch_keeps_the_order_of_a_put_and_delete_of_one_key() -> None:
    journal = BatchRecorder()
    store = MemoryStore(journal=journal)
    await store.create("/a", b"1")
    await asyncio.gather(store.update("/a", b"2"), store.delete("/a"))
    assert [(op.key, op.kv is None, op.revision) for op in journal.batches[1]] == [
        ("/a", False, 2),
        ("/a", True, 3),
    ]


async def test_a_write_is_acknowledged_only_after_its_batch_committed() -> None:
    journal = BatchRecorder()
    store = MemoryStore(journal=journal)
    task = asyncio.create_task(store.create("/a", b"v"))
    await asyncio.sleep(0)  # the create ran up to its wait; the flush is queued behind it
    assert not task.done()
    assert not journal.batches
    await task
    assert len(journal.batches) == 1


async def test_failed_batch_fails_every_write_and_changes_nothing() -> None:
    journal = BatchRecorder()
    store = MemoryStore(journal=journal)
    await store.create("/a", b"1")
    journal.fail = True
    results = await asyncio.gather(
        store.create("/b", b"x"),
        store.update("/a", b"2"),
        store.delete("/a"),
        return_exceptions=True,
    )
    assert all(isinstance(r, StoreError) for r in results)
    journal.fail = False
    assert store.revision == 1
    assert (await store.get("/a")) == KeyValue("/a", b"1", 1, 1)
    assert (await store.get("/b")) is None
    assert (await store.create("/b", b"y")).mod_revision == 2


async def test_watchers_see_an_event_only_after_its_commit() -> None:
    journal = BatchRecorder()
    store = MemoryStore(journal=journal)
    watch = store.watch("/", 0)
    seen: list[int] = []

    async def watcher() -> None:
        for _event in await watch.next_batch():
            seen.append(len(journal.batches))

    task = asyncio.create_task(watcher())
    await asyncio.sleep(0)
    await store.create("/a", b"v")
    await task
    assert seen == [1]  # the batch was written when the watcher got the event
    watch.close()


async def test_a_read_of_staged_data_waits_for_its_commit() -> None:
    journal = BatchRecorder()
    store = MemoryStore(journal=journal)
    create = asyncio.create_task(store.create("/a", b"v"))
    await asyncio.sleep(0)
    assert not journal.batches
    got = await store.get("/a")
    assert got is not None and journal.batches  # returned only once committed
    await create


async def test_a_read_of_staged_data_retries_when_its_batch_failed() -> None:
    journal = BatchRecorder()
    store = MemoryStore(journal=journal)
    journal.fail = True
    create = asyncio.create_task(store.create("/a", b"v"))
    await asyncio.sleep(0)
    assert (await store.get("/a")) is None
    with pytest.raises(StoreError):
        await create


async def test_close_commits_what_is_staged(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db")
    create = asyncio.create_task(store.create("/a", b"v"))
    await asyncio.sleep(0)
    await store.close()
    await create
    reopened = SqliteStore(tmp_path / "db")
    try:
        assert (await reopened.get("/a")) == KeyValue("/a", b"v", 1, 1)
    finally:
        await reopened.close()


async def test_a_cancelled_writer_still_gets_its_staged_write_committed() -> None:
    journal = BatchRecorder()
    store = MemoryStore(journal=journal)
    after: list[str] = []

    async def writer() -> None:
        await store.create("/a", b"v")
        after.append("returned")  # the create finished: the caller's bookkeeping runs
        await asyncio.sleep(0)  # and the cancellation arrives here
        after.append("not reached")

    task = asyncio.create_task(writer())
    await asyncio.sleep(0)  # staged, waiting for the flush
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert after == ["returned"]
    assert (await store.get("/a")) == KeyValue("/a", b"v", 1, 1)
    assert len(journal.batches) == 1
