"""The in-memory revisioned store, and the core every durable backend shares.

Design:

* Current state is a ``SortedDict`` key -> ``KeyValue``: ``get`` is a dict lookup, a prefix
  list is two bisections plus a slice, so a page of ``limit`` items after ``start_after``
  costs O(log n + limit) whatever the size of the store.
* Every write bumps the global revision by one and appends exactly one ``WatchEvent`` to a
  shared, append-only history. The history therefore holds the events of the contiguous
  revisions ``(compact_revision, revision]`` and the event of revision ``r`` sits at index
  ``r - compact_revision - 1``: no search, no per-watcher copy.
* The history is a ring of ``history`` events (plus some slack so trimming is amortised):
  when it overflows, the oldest events are dropped and ``compact_revision`` moves up, just as
  kube-apiserver's watch cache forgets old events. ``compact(rev)`` drops them on demand.
* A watch is a cursor (the last revision it scanned) and a key prefix. It scans the shared
  history from its cursor, keeping the events under its prefix. Fan-out to N watchers thus
  costs one append per write plus N cursor scans, and memory is bounded by the ring whatever
  the number of watchers. A watcher that falls so far behind that the ring dropped events it
  had not scanned yet gets ``WatchClosedError`` (its client re-watches from its last revision
  and gets ``CompactedError``, i.e. 410 Gone, then relists) instead of holding memory.
* Waiting watchers park on one future each; a write resolves them all. Writes that happen in
  the same event-loop iteration wake each watcher once, and a woken watcher takes everything
  new in one batch (``next_batch``), so delivery cost grows with wake-ups, not with events.
  Watchers of one prefix woken together share the filtering: the first filters the new
  events, the others copy its result (the cache lives until the next write).
* All mutations run without awaiting between the check and the change, so on one event loop
  they are atomic without locks. A ``Journal`` (see ``journal.py``) is called before memory
  changes: ``SqliteStore`` is this class plus a journal that commits each write to disk.
* Group commit, with a ``BatchJournal``: a write changes memory at once (so the next write
  sees it) but is *staged*: its event is held back and its caller waits. At the end of the
  event-loop iteration one ``write_batch`` commits every staged write in one transaction;
  then the events are published and the callers acknowledged. A failed batch is undone in
  memory and its writes fail. Reads (get, list, count) that see staged data wait for its
  commit before they return, so nobody ever sees a write that could still be lost.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections import deque
from typing import cast

from sortedcontainers import SortedDict

from svcnet.store.interface import (
    CompactedError,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    RevisionMismatchError,
    StoreError,
    WatchClosedError,
    WatchEvent,
)
from svcnet.store.journal import Journal, JournalOp, NullJournal

# kube-apiserver's watch cache keeps a similar number of events per resource; 50,000 events
# of shared history is a few tens of MB at most since events share the KeyValue objects.
DEFAULT_HISTORY = 50_000
DEFAULT_BATCH = 1000


class StoreClosedError(StoreError):
    """The store was closed; no more reads or writes."""

    def __init__(self) -> None:
        super().__init__("store is closed")


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (None: no bound)."""
    # Strip trailing U+10FFFF: nothing sorts after it, so the bound moves one character left.
    stripped = prefix.rstrip("\U0010ffff")
    if not stripped:
        return None
    return stripped[:-1] + chr(ord(stripped[-1]) + 1)


class MemoryStore:
    """A revisioned key-value store held in memory; see the module docstring."""

    def __init__(self, *, history: int = DEFAULT_HISTORY, journal: Journal | None = None) -> None:
        if history < 1:
            raise ValueError("history must hold at least one event")
        self._data = SortedDict()
        self._revision = 0
        self._compact_revision = 0
        self._log: list[WatchEvent] = []
        self._history = history
        # Trim in chunks so that dropping the head of the list is amortised O(1) per write.
        self._trim_at = history + max(history // 8, 16)
        self._journal: Journal = journal if journal is not None else NullJournal()
        self._waiters: set[asyncio.Future[None]] = set()
        # prefix -> (first revision scanned, last revision scanned, matching events)
        self._scan_cache: dict[str, tuple[int, int, builtins.list[WatchEvent]]] = {}
        self._closed = False
        # Group commit (see the module docstring); None: every write commits on its own.
        self._write_batch = getattr(self._journal, "write_batch", None)
        self._staged_ops: builtins.list[JournalOp] = []
        self._staged_undo: builtins.list[tuple[str, KeyValue | None]] = []
        self._staged_events: builtins.list[WatchEvent] = []
        self._staged_acks: builtins.list[asyncio.Future[None]] = []
        self._staged_keys: set[str] = set()
        # Resolved with True when the staged batch committed, False when it was undone.
        self._staged_done: asyncio.Future[bool] | None = None
        self._staged_base = 0  # the revision before the first staged write
        self._flush_handle: asyncio.Handle | None = None

    # -- loading (used by durable backends before the store serves anything) ----------------

    def _load(self, items: builtins.list[KeyValue], revision: int, compact_revision: int) -> None:
        self._data = SortedDict({kv.key: kv for kv in items})
        self._revision = revision
        # History before a restart is not kept: watches from before it get CompactedError.
        self._compact_revision = max(compact_revision, revision)
        self._log = []

    # -- Store protocol ----------------------------------------------------------------------

    @property
    def revision(self) -> int:
        return self._revision

    @property
    def compact_revision(self) -> int:
        return self._compact_revision

    async def create(self, key: str, value: bytes) -> KeyValue:
        self._check_put(key, value)
        if key in self._data:
            raise KeyExistsError(key)
        revision = self._revision + 1
        kv = KeyValue(key, value, revision, revision)
        if self._write_batch is not None:
            await self._stage(
                JournalOp(key, kv, revision), None, WatchEvent(EventType.PUT, kv, None)
            )
            return kv
        self._journal.put(kv)
        self._data[key] = kv
        self._commit(WatchEvent(EventType.PUT, kv, None))
        return kv

    async def get(self, key: str) -> KeyValue | None:
        while True:
            self._check_open()
            # cast() with a string: a union written out would be built on every call.
            kv = cast("KeyValue | None", self._data.get(key))
            # Only a read of staged data waits for its commit.
            if key not in self._staged_keys or await self._settled():
                return kv

    async def list(self, prefix: str, *, limit: int = 0, start_after: str = "") -> ListResult:
        while True:
            result = self._list(prefix, limit, start_after)
            if not self._staged_under(prefix) or await self._settled():
                return result

    def _list(self, prefix: str, limit: int, start_after: str) -> ListResult:
        self._check_open()
        if limit < 0:
            raise ValueError("limit must be >= 0")
        keys = self._data
        begin = cast(int, keys.bisect_left(prefix))
        if start_after:
            begin = max(begin, cast(int, keys.bisect_right(start_after)))
        bound = prefix_end(prefix)
        end = len(keys) if bound is None else cast(int, keys.bisect_left(bound))
        stop = end if limit == 0 else min(end, begin + limit)
        items = cast("list[KeyValue]", self._data.values()[begin:stop]) if stop > begin else []
        return ListResult(
            items=items,
            revision=self._revision,
            more=stop < end,
            remaining=max(end - stop, 0),
        )

    async def count(self, prefix: str) -> int:
        while True:
            self._check_open()
            keys = self._data
            bound = prefix_end(prefix)
            end = len(keys) if bound is None else cast(int, keys.bisect_left(bound))
            n = max(end - cast(int, keys.bisect_left(prefix)), 0)
            if not self._staged_under(prefix) or await self._settled():
                return n

    async def update(
        self, key: str, value: bytes, expected_mod_revision: int | None = None
    ) -> KeyValue:
        self._check_put(key, value)
        current = self._current(key, expected_mod_revision)
        kv = KeyValue(key, value, current.create_revision, self._revision + 1)
        if self._write_batch is not None:
            event = WatchEvent(EventType.PUT, kv, current)
            await self._stage(JournalOp(key, kv, kv.mod_revision), current, event)
            return kv
        self._journal.put(kv)
        self._data[key] = kv
        self._commit(WatchEvent(EventType.PUT, kv, current))
        return kv

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> KeyValue:
        self._check_writable(key)
        current = self._current(key, expected_mod_revision)
        revision = self._revision + 1
        gone = KeyValue(key, current.value, current.create_revision, revision)
        if self._write_batch is not None:
            event = WatchEvent(EventType.DELETE, gone, current)
            await self._stage(JournalOp(key, None, revision), current, event)
            return gone
        self._journal.delete(key, revision)
        del self._data[key]
        self._commit(WatchEvent(EventType.DELETE, gone, current))
        return gone

    def watch(self, prefix: str, after_revision: int) -> MemoryWatch:
        self._check_open()
        if after_revision < 0:
            raise ValueError("after_revision must be >= 0")
        if after_revision < self._compact_revision:
            raise CompactedError(after_revision, self._compact_revision)
        return MemoryWatch(self, prefix, after_revision)

    async def compact(self, revision: int) -> None:
        # Only committed history can be dropped: the staged events are not in the log yet.
        while self._staged_done is not None:
            await self._settled()
        self._check_open()
        if revision > self._revision:
            raise ValueError(
                f"cannot compact the future revision {revision} (now {self._revision})"
            )
        if revision <= self._compact_revision:
            return
        self._journal.compact(revision)
        self._drop_history(revision - self._compact_revision)

    async def close(self) -> None:
        if self._closed:
            return
        if self._staged_done is not None:
            # Commit what is staged now: its writers are still waiting for the answer.
            if self._flush_handle is not None:
                self._flush_handle.cancel()
            self._flush()
        self._closed = True
        self._wake_all()
        self._journal.close()

    # -- internals ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError()

    def _check_writable(self, key: str) -> None:
        self._check_open()
        if not key:
            raise ValueError("key must not be empty")

    def _check_put(self, key: str, value: bytes) -> None:
        self._check_writable(key)
        if type(value) is not bytes:
            # Values are opaque bytes; a str would round-trip through SQLite as TEXT.
            raise TypeError(f"value must be bytes, not {type(value).__name__}")

    def _current(self, key: str, expected_mod_revision: int | None) -> KeyValue:
        current = cast("KeyValue | None", self._data.get(key))
        if current is None:
            raise KeyNotFoundError(key)
        if expected_mod_revision is not None and current.mod_revision != expected_mod_revision:
            raise RevisionMismatchError(key, current)
        return current

    async def _stage(self, op: JournalOp, previous: KeyValue | None, event: WatchEvent) -> None:
        """Apply ``op`` in memory now; return once the batch holding it committed."""
        loop = asyncio.get_running_loop()
        if self._staged_done is None:
            self._staged_done = loop.create_future()
            self._staged_base = self._revision
            # Runs after the callbacks already queued for this iteration: the writes of
            # concurrent requests that arrived together land in this batch.
            self._flush_handle = loop.call_soon(self._flush)
        if op.kv is None:
            del self._data[op.key]
        else:
            self._data[op.key] = op.kv
        self._revision = op.revision
        self._staged_ops.append(op)
        self._staged_undo.append((op.key, previous))
        self._staged_events.append(event)
        self._staged_keys.add(op.key)
        ack: asyncio.Future[None] = loop.create_future()
        self._staged_acks.append(ack)
        batch = self._staged_done
        try:
            await ack
        except asyncio.CancelledError:
            # The write is in the batch and commits whatever happens to this caller. Returning
            # as if not cancelled keeps the caller's bookkeeping (a ClusterIP it allocated for
            # the object) in line with the store; the cancellation comes at its next await.
            if not await _outcome(batch):
                raise
            task = asyncio.current_task()
            if task is not None:
                task.cancel()

    def _staged_under(self, prefix: str) -> bool:
        if not self._staged_keys:
            return False
        return any(key.startswith(prefix) for key in self._staged_keys)

    async def _settled(self) -> bool:
        """Wait for the staged batch: True if it committed, False if it was undone."""
        done = self._staged_done
        assert done is not None
        # shield: a reader cancelled while waiting must not cancel the batch's future.
        return await asyncio.shield(done)

    def _flush(self) -> None:
        """Commit the staged batch in one journal transaction, then publish and acknowledge."""
        done = self._staged_done
        if done is None:
            return
        ops, self._staged_ops = self._staged_ops, []
        undo, self._staged_undo = self._staged_undo, []
        events, self._staged_events = self._staged_events, []
        acks, self._staged_acks = self._staged_acks, []
        self._staged_keys = set()
        self._staged_done = None
        self._flush_handle = None
        assert self._write_batch is not None
        try:
            self._write_batch(ops)
        except BaseException as exc:
            # Undo newest first, so each key ends as it was before the batch.
            for key, previous in reversed(undo):
                if previous is None:
                    self._data.pop(key, None)
                else:
                    self._data[key] = previous
            self._revision = self._staged_base
            error = exc if isinstance(exc, StoreError) else StoreError(f"writing: {exc!r}")
            for ack in acks:
                if not ack.done():
                    ack.set_exception(error)
            done.set_result(False)
            if not isinstance(exc, Exception):
                raise
            return
        for event in events:
            self._commit(event)
        for ack in acks:
            if not ack.done():
                ack.set_result(None)
        done.set_result(True)

    def _commit(self, event: WatchEvent) -> None:
        self._revision = event.revision
        if self._scan_cache:
            # Entries can only be hit at the revision they were made: drop them all at once,
            # which also bounds the cache to the prefixes scanned since the last write.
            self._scan_cache.clear()
        self._log.append(event)
        if len(self._log) > self._trim_at:
            self._drop_history(len(self._log) - self._history)
        if self._waiters:
            self._wake_all()

    def _drop_history(self, count: int) -> None:
        del self._log[:count]
        self._compact_revision += count

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _scan(self, watch: MemoryWatch, max_events: int) -> builtins.list[WatchEvent]:
        """The next events for ``watch`` after its cursor; moves the cursor past what it read."""
        if self._closed:
            raise WatchClosedError("store is closing")
        first = self._compact_revision + 1  # revision of self._log[0]
        start = watch._scanned + 1 - first
        if start < 0:
            raise WatchClosedError(
                f"watch fell behind: revision {watch._scanned + 1} is no longer in the history "
                f"(oldest is {first})"
            )
        log = self._log
        end = len(log)
        if start >= end:
            return []
        prefix = watch.prefix
        if not prefix:
            stop = min(end, start + max_events)
            watch._scanned = first + stop - 1
            return log[start:stop]
        # Watchers of one prefix usually wake together at the same cursor: the first one
        # filters, the others copy its result (a C-level slice) instead of filtering again.
        from_revision = watch._scanned + 1
        # The last revision in the log: staged writes (group commit) are past it.
        published = first + end - 1
        cached = self._scan_cache.get(prefix)
        if cached is not None and cached[0] == from_revision and cached[1] == published:
            hit = cached[2]
            if len(hit) <= max_events:
                watch._scanned = published
                return hit[:]
        out: builtins.list[WatchEvent] = []
        i = start
        while i < end:
            event = log[i]
            i += 1
            if event.kv.key.startswith(prefix):
                out.append(event)
                if len(out) >= max_events:
                    break
        watch._scanned = first + i - 1
        if i == end:
            self._scan_cache[prefix] = (from_revision, published, out[:])
        return out

    def _park(self) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        return waiter

    def _unpark(self, waiter: asyncio.Future[None]) -> None:
        self._waiters.discard(waiter)
        if not waiter.done():
            waiter.cancel()


async def _outcome(batch: asyncio.Future[bool]) -> bool:
    """Whether ``batch`` committed, waiting for it through any cancellation (it ends within
    the event-loop iteration, or when the store closes)."""
    while not batch.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(batch)
    return batch.result()


class MemoryWatch:
    """A cursor over the shared history of a ``MemoryStore``, filtered by key prefix."""

    def __init__(self, store: MemoryStore, prefix: str, after_revision: int) -> None:
        self._store = store
        self.prefix = prefix
        # Last revision scanned: every matching event up to it was handed out or is pending.
        self._scanned = after_revision
        self._pending: deque[WatchEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def __aiter__(self) -> MemoryWatch:
        return self

    async def __anext__(self) -> WatchEvent:
        if not self._pending:
            batch = await self.next_batch(DEFAULT_BATCH)
            if not batch:
                raise StopAsyncIteration
            if len(batch) == 1:
                return batch[0]
            self._pending.extend(batch)
        return self._pending.popleft()

    async def next_batch(self, max_events: int = DEFAULT_BATCH) -> list[WatchEvent]:
        if max_events < 1:
            raise ValueError("max_events must be >= 1")
        while True:
            if self._closed:
                return []
            if self._pending:
                count = min(max_events, len(self._pending))
                return [self._pending.popleft() for _ in range(count)]
            batch = self._store._scan(self, max_events)
            if batch:
                return batch
            waiter = self._store._park()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None
                self._store._unpark(waiter)

    @property
    def progress_revision(self) -> int:
        if self._pending:
            return self._pending[0].revision - 1
        return self._scanned

    def close(self) -> None:
        self._closed = True
        self._pending.clear()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
