"""Where a durable backend writes each mutation before the store acknowledges it.

The in-memory core (``MemoryStore``) owns the current state and the watch history; a journal
only makes mutations durable. The core calls the journal *before* it changes anything in
memory, so a journal that raises leaves the store exactly as it was and the caller sees the
error: nothing is acknowledged that was not written.

A journal that also has ``write_batch`` (``BatchJournal``, e.g. SQLite) gets group commit: the
writes of one event-loop iteration are applied in memory at once (so later writes see them),
handed to ``write_batch`` together at the end of the iteration — one transaction, one WAL
append — and acknowledged (their ``await`` returns, watchers see their events) only after that
transaction committed. A failed batch is undone in memory and every write in it fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from svcnet.store.interface import KeyValue


class Journal(Protocol):
    def put(self, kv: KeyValue) -> None:
        """Persist ``kv`` (a create or an update at revision ``kv.mod_revision``)."""
        ...

    def delete(self, key: str, revision: int) -> None:
        """Persist the removal of ``key`` by the write at ``revision``."""
        ...

    def compact(self, revision: int) -> None: ...

    def close(self) -> None: ...


class JournalOp(NamedTuple):
    """One mutation of a batch: a put (``kv`` set) or the delete of ``key`` at ``revision``."""

    key: str
    kv: KeyValue | None
    revision: int


class BatchJournal(Journal, Protocol):
    def write_batch(self, ops: Sequence[JournalOp]) -> None:
        """Persist ``ops`` in order, all or none, durably once this returns."""
        ...


class NullJournal:
    """The journal of a store that forgets everything when the process ends."""

    def put(self, kv: KeyValue) -> None:
        pass

    def delete(self, key: str, revision: int) -> None:
        pass

    def compact(self, revision: int) -> None:
        pass

    def close(self) -> None:
        pass
