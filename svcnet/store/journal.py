"""Where a durable backend writes each mutation before the store acknowledges it.

The in-memory core (``MemoryStore``) owns the current state and the watch history; a journal
only makes mutations durable. The core calls the journal *before* it changes anything in
memory, so a journal that raises leaves the store exactly as it was and the caller sees the
error: nothing is acknowledged that was not written.
"""

from __future__ import annotations

from typing import Protocol

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
