"""The revisioned store: an etcd-like interface with SQLite (default) and memory backends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from svcnet.store.interface import (
    CompactedError,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    RevisionMismatchError,
    Store,
    StoreError,
    Watch,
    WatchClosedError,
    WatchEvent,
)
from svcnet.store.memory import DEFAULT_HISTORY, MemoryStore, StoreClosedError
from svcnet.store.sqlite import SqliteStore

__all__ = [
    "DEFAULT_HISTORY",
    "CompactedError",
    "EventType",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeyValue",
    "ListResult",
    "MemoryStore",
    "RevisionMismatchError",
    "SqliteStore",
    "Store",
    "StoreClosedError",
    "StoreError",
    "Watch",
    "WatchClosedError",
    "WatchEvent",
    "open_store",
]

if TYPE_CHECKING:
    # mypy proves here that both backends implement the Store protocol exactly.
    _memory: type[Store] = MemoryStore
    _sqlite: type[Store] = SqliteStore

MEMORY_URL = "memory:"
SQLITE_SCHEME = "sqlite://"


def open_store(url_or_path: str, *, history: int = DEFAULT_HISTORY) -> Store:
    """Open a store: ``"memory:"``, ``"sqlite:///abs/path.db"``, ``"sqlite://rel.db"`` or a path."""
    if url_or_path == MEMORY_URL:
        return MemoryStore(history=history)
    path = url_or_path
    if path.startswith(SQLITE_SCHEME):
        path = path[len(SQLITE_SCHEME) :]
    elif "://" in path:
        raise ValueError(f"unknown store URL {url_or_path!r} (want memory:, sqlite:// or a path)")
    if not path:
        raise ValueError(f"store URL {url_or_path!r} has no path")
    return SqliteStore(path, history=history)
