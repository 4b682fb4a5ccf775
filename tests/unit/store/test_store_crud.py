"""Create, get, update and delete with revisions, on both backends."""

from __future__ import annotations

import pytest

from svcnet.store import (
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    MemoryStore,
    RevisionMismatchError,
    StoreClosedError,
)


async def test_empty_store_is_at_revision_zero(store: MemoryStore) -> None:
    assert (store.revision, store.compact_revision) == (0, 0)
    assert await store.get("/a") is None


async def test_create_returns_the_new_revision_as_create_and_mod_revision(
    store: MemoryStore,
) -> None:
    first = await store.create("/a", b"1")
    second = await store.create("/b", b"2")
    assert first == KeyValue("/a", b"1", 1, 1)
    assert second == KeyValue("/b", b"2", 2, 2)
    assert store.revision == 2


async def test_get_returns_what_was_created(store: MemoryStore) -> None:
    created = await store.create("/a", b"v")
    assert await store.get("/a") == created


async def test_create_of_an_existing_key_raises_key_exists(store: MemoryStore) -> None:
    await store.create("/a", b"1")
    with pytest.raises(KeyExistsError) as info:
        await store.create("/a", b"2")
    assert info.value.key == "/a"
    assert store.revision == 1
    assert (await store.get("/a")) == KeyValue("/a", b"1", 1, 1)


async def test_update_keeps_create_revision_and_bumps_mod_revision(store: MemoryStore) -> None:
    await store.create("/a", b"1")
    await store.create("/other", b"x")
    updated = await store.update("/a", b"2")
    assert updated == KeyValue("/a", b"2", 1, 3)
    assert await store.get("/a") == updated


@pytest.mark.parametrize(
    ("expected", "ok"),
    [(None, True), (1, True), (0, False), (2, False)],
    ids=["unconditional", "matching", "stale-zero", "future"],
)
async def test_update_with_expected_revision(
    store: MemoryStore, expected: int | None, ok: bool
) -> None:
    await store.create("/a", b"1")
    if ok:
        assert (await store.update("/a", b"2", expected)).mod_revision == 2
        return
    with pytest.raises(RevisionMismatchError) as info:
        await store.update("/a", b"2", expected)
    assert info.value.key == "/a"
    assert info.value.current == KeyValue("/a", b"1", 1, 1)
    assert store.revision == 1


async def test_update_of_a_missing_key_raises_not_found(store: MemoryStore) -> None:
    with pytest.raises(KeyNotFoundError):
        await store.update("/missing", b"x")
    assert store.revision == 0


async def test_delete_returns_last_value_at_the_delete_revision(store: MemoryStore) -> None:
    await store.create("/a", b"1")
    await store.update("/a", b"2")
    gone = await store.delete("/a")
    assert gone == KeyValue("/a", b"2", 1, 3)
    assert await store.get("/a") is None
    assert store.revision == 3


@pytest.mark.parametrize(
    ("expected", "ok"),
    [(None, True), (1, True), (7, False)],
    ids=["unconditional", "matching", "mismatch"],
)
async def test_delete_with_expected_revision(
    store: MemoryStore, expected: int | None, ok: bool
) -> None:
    await store.create("/a", b"1")
    if ok:
        await store.delete("/a", expected)
        assert await store.get("/a") is None
        return
    with pytest.raises(RevisionMismatchError) as info:
        await store.delete("/a", expected)
    assert info.value.current.mod_revision == 1
    assert await store.get("/a") is not None


async def test_delete_of_a_missing_key_raises_not_found(store: MemoryStore) -> None:
    with pytest.raises(KeyNotFoundError):
        await store.delete("/missing")


async def test_recreate_after_delete_gets_a_new_create_revision(store: MemoryStore) -> None:
    await store.create("/a", b"1")
    await store.delete("/a")
    again = await store.create("/a", b"new")
    assert again == KeyValue("/a", b"new", 3, 3)


async def test_empty_key_is_refused(store: MemoryStore) -> None:
    with pytest.raises(ValueError):
        await store.create("", b"x")


async def test_operations_after_close_raise_store_closed(store: MemoryStore) -> None:
    await store.create("/a", b"1")
    await store.close()
    with pytest.raises(StoreClosedError):
        await store.get("/a")
    with pytest.raises(StoreClosedError):
        await store.create("/b", b"1")


@pytest.mark.parametrize("value", ["text", bytearray(b"x"), None], ids=["str", "bytearray", "none"])
async def test_values_must_be_bytes(store: MemoryStore, value: object) -> None:
    await store.create("/a", b"1")
    with pytest.raises(TypeError):
        await store.create("/b", value)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await store.update("/a", value)  # type: ignore[arg-type]
    assert store.revision == 1
