"""The core writes through its journal before changing memory: a failed write changes nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from svcnet.store import KeyValue, MemoryStore, StoreError


class FailingJournal:
    """A journal whose disk is full once ``fail`` is set, like SQLite answering SQLITE_FULL."""

    def __init__(self) -> None:
        self.fail = False
        self.written: list[tuple[str, str, int]] = []

    def _write(self, op: str, key: str, revision: int) -> None:
        if self.fail:
            raise StoreError("database or disk is full")
        self.written.append((op, key, revision))

    def put(self, kv: KeyValue) -> None:
        self._write("put", kv.key, kv.mod_revision)

    def delete(self, key: str, revision: int) -> None:
        self._write("delete", key, revision)

    def compact(self, revision: int) -> None:
        self._write("compact", "", revision)

    def close(self) -> None:
        pass


Op = Callable[[MemoryStore], Awaitable[object]]


@pytest.mark.parametrize(
    "op",
    [
        lambda s: s.create("/new", b"x"),
        lambda s: s.update("/a", b"x"),
        lambda s: s.delete("/a"),
        lambda s: s.compact(1),
    ],
    ids=["create", "update", "delete", "compact"],
)
async def test_failed_journal_write_changes_nothing(op: Op) -> None:
    journal = FailingJournal()
    store = MemoryStore(journal=journal)
    await store.create("/a", b"1")
    watch = store.watch("", 0)
    journal.fail = True
    with pytest.raises(StoreError):
        await op(store)
    assert (store.revision, store.compact_revision) == (1, 0)
    assert [kv.key for kv in (await store.list("")).items] == ["/a"]
    assert await store.get("/a") == KeyValue("/a", b"1", 1, 1)
    assert [e.revision for e in await watch.next_batch()] == [1]
    journal.fail = False
    assert (await store.create("/b", b"2")).mod_revision == 2


async def test_journal_sees_every_write_with_its_revision() -> None:
    journal = FailingJournal()
    store = MemoryStore(journal=journal)
    await store.create("/a", b"1")
    await store.update("/a", b"2")
    await store.delete("/a")
    await store.compact(2)
    assert journal.written == [
        ("put", "/a", 1),
        ("put", "/a", 2),
        ("delete", "/a", 3),
        ("compact", "", 2),
    ]
