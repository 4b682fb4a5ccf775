"""Every store test runs against both backends: the in-memory store and SQLite on disk."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from svcnet.store import MemoryStore, SqliteStore

StoreFactory = Callable[..., MemoryStore]


@pytest.fixture(params=["memory", "sqlite"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Builds stores of the parametrized backend (keyword arguments go to the constructor)."""
    made: list[MemoryStore] = []

    def make(**kwargs: Any) -> MemoryStore:
        if request.param == "memory":
            store = MemoryStore(**kwargs)
        else:
            store = SqliteStore(tmp_path / f"store-{len(made)}.db", **kwargs)
        made.append(store)
        return store

    try:
        yield make
    finally:
        for store in made:
            await store.close()


@pytest.fixture
async def store(make_store: StoreFactory) -> MemoryStore:
    return make_store()
