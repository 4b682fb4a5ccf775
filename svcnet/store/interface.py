"""The revisioned store interface, modelled on etcd's.

One global revision counts every write; each key remembers the revision that created it and
the one that last modified it (``mod_revision`` is what the API server shows as
``metadata.resourceVersion``). Watches start after a revision and see every later change in
revision order; history older than the compaction point is gone (``CompactedError``, which the
API server turns into ``410 Gone``). Values are opaque bytes: the store knows nothing of
Kubernetes objects, so an etcd backend can slot in behind the same interface.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


class EventType(enum.Enum):
    PUT = "PUT"
    DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change. For PUT, ``kv`` is the new value and ``prev`` the old one (None on create).

    For DELETE, ``kv`` carries the last value with ``mod_revision`` set to the revision of the
    delete, and ``prev`` is that same last value as it was stored.
    """

    type: EventType
    kv: KeyValue
    prev: KeyValue | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KeyValue]
    # The store's revision when the list was read: a watch from it misses nothing.
    revision: int
    # True when a limit cut the list short; continue with start_after=items[-1].key.
    more: bool
    # How many keys under the prefix remain after this page (Kubernetes' remainingItemCount).
    remaining: int = 0


class StoreError(Exception):
    """Base of every error a store raises."""


class KeyExistsError(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFoundError(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class RevisionMismatchError(StoreError):
    """An update or delete expected another ``mod_revision`` than the key has."""

    def __init__(self, key: str, current: KeyValue) -> None:
        super().__init__(f"revision mismatch on {key}: now {current.mod_revision}")
        self.key = key
        self.current = current


class CompactedError(StoreError):
    """A watch asked for history that compaction removed."""

    def __init__(self, requested: int, compact_revision: int) -> None:
        super().__init__(
            f"revision {requested} is compacted (oldest available is {compact_revision})"
        )
        self.requested = requested
        self.compact_revision = compact_revision


class WatchClosedError(StoreError):
    """The store ended a watch: it fell too far behind, or the store is closing."""


class Watch(Protocol):
    """An ordered stream of events after a revision, until closed.

    Iteration ends (``StopAsyncIteration``) after the owner calls ``close()``; it raises
    ``WatchClosedError`` when the store ends the watch.
    """

    def __aiter__(self) -> AsyncIterator[WatchEvent]: ...

    async def __anext__(self) -> WatchEvent: ...

    async def next_batch(self, max_events: int = 1000) -> list[WatchEvent]:
        """Wait for at least one event, then return every event ready (at most ``max_events``)
        in revision order; ``[]`` once the owner closed the watch.

        Cancel-safe: cancelling it (say ``asyncio.wait_for`` to send a bookmark) loses nothing.
        One batch per wake-up lets a server write many events with one socket write.
        """
        ...

    @property
    def progress_revision(self) -> int:
        """Every matching event up to this revision has been handed out: a safe bookmark."""
        ...

    def close(self) -> None: ...


class Store(Protocol):
    @property
    def revision(self) -> int:
        """The revision of the newest write (0 for an empty store)."""
        ...

    @property
    def compact_revision(self) -> int:
        """Watches must start at or after this revision."""
        ...

    async def create(self, key: str, value: bytes) -> KeyValue:
        """Write a new key; ``KeyExistsError`` if it exists."""
        ...

    async def get(self, key: str) -> KeyValue | None: ...

    async def list(self, prefix: str, *, limit: int = 0, start_after: str = "") -> ListResult:
        """Keys under ``prefix`` in key order, after ``start_after``, at most ``limit`` (0: all)."""
        ...

    async def count(self, prefix: str) -> int: ...

    async def update(
        self, key: str, value: bytes, expected_mod_revision: int | None = None
    ) -> KeyValue:
        """Replace a key's value; ``KeyNotFoundError`` if absent, ``RevisionMismatchError`` if
        ``expected_mod_revision`` is given and differs."""
        ...

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> KeyValue:
        """Remove a key; returns the removed value with ``mod_revision`` = the delete's revision."""
        ...

    def watch(self, prefix: str, after_revision: int) -> Watch:
        """Events under ``prefix`` with revision > ``after_revision``.

        Raises ``CompactedError`` at once when ``after_revision`` is older than the history kept.
        """
        ...

    async def compact(self, revision: int) -> None:
        """Forget history up to and including ``revision``."""
        ...

    async def close(self) -> None: ...
