"""Model-based test: random operation sequences against a plain dict model.

The model is the obvious specification: a dict key -> (value, create_rev, mod_rev), a revision
counter bumped by every successful write, and the list of events. After every step the store
must agree with it, and a watch opened at the start must have seen exactly the model's events.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from svcnet.store import (
    CompactedError,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    MemoryStore,
    RevisionMismatchError,
    SqliteStore,
    Watch,
    WatchEvent,
)

KEYS = st.sampled_from(["/a/1", "/a/2", "/a/10", "/b/1", "/b/2", "/c"])
VALUES = st.binary(max_size=8)
PREFIXES = st.sampled_from(["", "/", "/a/", "/a/1", "/b/", "/z"])


async def poll(watch: Watch) -> list[WatchEvent]:
    """What a reader parked in ``next_batch`` gets now: one loop iteration, then give up."""
    reader = asyncio.ensure_future(watch.next_batch(2))
    await asyncio.sleep(0)
    if reader.done():
        return reader.result()
    reader.cancel()
    return []


class StoreModel(RuleBasedStateMachine):
    backend = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = Path(tempfile.mkdtemp(prefix="svcnet-store-model-"))
        self.model: dict[str, KeyValue] = {}
        self.revision = 0
        self.events: list[WatchEvent] = []
        self.compacted = 0
        self.store = self.open()
        self.watch = self.store.watch("", 0)
        self.seen: list[WatchEvent] = []
        self.watch_a = self.store.watch("/a/", 0)
        self.seen_a: list[WatchEvent] = []

    def open(self) -> MemoryStore:
        if self.backend == "memory":
            return MemoryStore()
        return SqliteStore(self.tmp / "model.db")

    def run(self, coro: object) -> object:
        return self.loop.run_until_complete(coro)  # type: ignore[arg-type]

    def teardown(self) -> None:
        self.run(self.store.close())
        self.loop.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @initialize()
    def start(self) -> None:
        pass

    @rule(key=KEYS, value=VALUES)
    def create(self, key: str, value: bytes) -> None:
        try:
            got = self.run(self.store.create(key, value))
        except KeyExistsError:
            assert key in self.model
            return
        assert key not in self.model
        self.revision += 1
        kv = KeyValue(key, value, self.revision, self.revision)
        assert got == kv
        self.model[key] = kv
        self.events.append(WatchEvent(EventType.PUT, kv, None))

    @rule(key=KEYS, value=VALUES, use_expected=st.booleans(), skew=st.integers(-1, 1))
    def update(self, key: str, value: bytes, use_expected: bool, skew: int) -> None:
        current = self.model.get(key)
        expected = None
        if use_expected:
            expected = (current.mod_revision if current else 1) + skew
        try:
            got = self.run(self.store.update(key, value, expected))
        except KeyNotFoundError:
            assert current is None
            return
        except RevisionMismatchError as e:
            assert current is not None and expected != current.mod_revision
            assert e.current == current
            return
        assert current is not None and expected in (None, current.mod_revision)
        self.revision += 1
        kv = KeyValue(key, value, current.create_revision, self.revision)
        assert got == kv
        self.model[key] = kv
        self.events.append(WatchEvent(EventType.PUT, kv, current))

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        current = self.model.get(key)
        try:
            got = self.run(self.store.delete(key))
        except KeyNotFoundError:
            assert current is None
            return
        assert current is not None
        self.revision += 1
        gone = KeyValue(key, current.value, current.create_revision, self.revision)
        assert got == gone
        del self.model[key]
        self.events.append(WatchEvent(EventType.DELETE, gone, current))

    @rule(prefix=PREFIXES, limit=st.integers(0, 3), start_after=st.one_of(st.just(""), KEYS))
    def list(self, prefix: str, limit: int, start_after: str) -> None:
        result = self.run(self.store.list(prefix, limit=limit, start_after=start_after))
        matching = sorted(k for k in self.model if k.startswith(prefix) and k > start_after)
        page = matching[:limit] if limit else matching
        assert [kv.key for kv in result.items] == page  # type: ignore[attr-defined]
        assert [kv for kv in result.items] == [self.model[k] for k in page]  # type: ignore[attr-defined]
        assert result.more == (len(page) < len(matching))  # type: ignore[attr-defined]
        assert result.remaining == len(matching) - len(page)  # type: ignore[attr-defined]

    @rule(back=st.integers(0, 5))
    def compact(self, back: int) -> None:
        target = max(self.revision - back, 0)
        self.run(self.store.compact(target))
        self.compacted = max(self.compacted, target)
        assert self.store.compact_revision == self.compacted
        if self.compacted > 0:
            with pytest.raises(CompactedError):
                self.store.watch("", self.compacted - 1)

    @precondition(lambda self: self.backend == "sqlite")
    @rule()
    def reopen(self) -> None:
        self.run(self.store.close())
        self.store = self.open()
        assert self.store.compact_revision == self.revision
        self.compacted = self.revision
        self.watch = self.store.watch("", self.revision)
        self.seen = list(self.events)
        self.watch_a = self.store.watch("/a/", self.revision)
        self.seen_a = [e for e in self.events if e.kv.key.startswith("/a/")]

    @invariant()
    def agrees_with_model(self) -> None:
        assert self.store.revision == self.revision
        for key in ["/a/1", "/a/2", "/a/10", "/b/1", "/b/2", "/c"]:
            assert self.run(self.store.get(key)) == self.model.get(key)

    @invariant()
    def watch_saw_every_event(self) -> None:
        while len(self.seen) < len(self.events):
            batch = self.run(asyncio.wait_for(self.watch.next_batch(), 1))
            self.seen.extend(batch)  # type: ignore[arg-type]
        assert self.seen == self.events
        # A watch whose consumer waits (as a server's does) stays caught up with writes outside
        # its prefix too, so compaction never closes it: poll it the way a parked reader would.
        expected_a = [e for e in self.events if e.kv.key.startswith("/a/")]
        for _ in range(len(self.events) + 2):
            batch = self.run(poll(self.watch_a))
            self.seen_a.extend(batch)  # type: ignore[arg-type]
            if not batch:
                break
        assert self.seen_a == expected_a
        assert self.watch_a.progress_revision == self.revision


class SqliteStoreModel(StoreModel):
    backend = "sqlite"


TestMemoryStoreModel = StoreModel.TestCase
TestMemoryStoreModel.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestSqliteStoreModel = SqliteStoreModel.TestCase
TestSqliteStoreModel.settings = settings(max_examples=30, stateful_step_count=30, deadline=None)
