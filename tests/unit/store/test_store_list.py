"""Prefix lists with limit / start_after / more / remaining, and counts."""

from __future__ import annotations

import pytest

from svcnet.store import MemoryStore
from svcnet.store.memory import prefix_end

KEYS = [
    "/registry/pods/default/a",
    "/registry/pods/default/b",
    "/registry/pods/default/c",
    "/registry/pods/kube-system/a",
    "/registry/services/default/a",
    "/registry/services/default/b",
    "/registryx/other",
]


async def fill(store: MemoryStore) -> None:
    # Created out of order: lists must come back in key order regardless.
    for key in reversed(KEYS):
        await store.create(key, key.encode())


@pytest.mark.parametrize(
    ("prefix", "limit", "start_after", "keys", "more", "remaining"),
    [
        ("/registry/pods/", 0, "", KEYS[0:4], False, 0),
        ("/registry/pods/default/", 0, "", KEYS[0:3], False, 0),
        ("/registry/pods/", 2, "", KEYS[0:2], True, 2),
        ("/registry/pods/", 2, KEYS[1], KEYS[2:4], False, 0),
        ("/registry/pods/", 1, KEYS[2], KEYS[3:4], False, 0),
        ("/registry/pods/", 0, KEYS[3], [], False, 0),
        ("/registry/pods/", 3, "/registry/pods/default/bb", KEYS[2:4], False, 0),
        ("/registry/pods/", 0, "/a", KEYS[0:4], False, 0),
        ("/registry/", 0, "", KEYS[0:6], False, 0),
        ("/registry", 0, "", KEYS, False, 0),
        ("", 3, "", KEYS[0:3], True, 4),
        ("/nothing/", 5, "", [], False, 0),
        ("/registry/services/default/a", 0, "", KEYS[4:5], False, 0),
    ],
    ids=[
        "whole-prefix",
        "namespace-prefix",
        "first-page",
        "second-page",
        "page-after-middle",
        "after-last",
        "start-after-a-missing-key",
        "start-after-before-prefix",
        "prefix-excludes-sibling-with-longer-name",
        "prefix-without-slash-includes-sibling",
        "empty-prefix-is-everything",
        "no-match",
        "exact-key-as-prefix",
    ],
)
async def test_list(
    store: MemoryStore,
    prefix: str,
    limit: int,
    start_after: str,
    keys: list[str],
    more: bool,
    remaining: int,
) -> None:
    await fill(store)
    result = await store.list(prefix, limit=limit, start_after=start_after)
    assert [kv.key for kv in result.items] == keys
    assert [kv.value for kv in result.items] == [k.encode() for k in keys]
    assert (result.more, result.remaining) == (more, remaining)
    assert result.revision == len(KEYS)


async def test_paging_through_everything_sees_each_key_once(store: MemoryStore) -> None:
    await fill(store)
    seen: list[str] = []
    start_after = ""
    while True:
        page = await store.list("/registry/", limit=2, start_after=start_after)
        seen += [kv.key for kv in page.items]
        if not page.more:
            break
        start_after = page.items[-1].key
    assert seen == KEYS[0:6]


async def test_list_revision_is_the_store_revision_at_read_time(store: MemoryStore) -> None:
    await fill(store)
    await store.delete(KEYS[0])
    result = await store.list("/registry/pods/")
    assert result.revision == len(KEYS) + 1
    assert KEYS[0] not in [kv.key for kv in result.items]


@pytest.mark.parametrize(
    ("prefix", "count"),
    [("/registry/pods/", 4), ("/registry/pods/default/", 3), ("", 7), ("/zzz", 0)],
)
async def test_count(store: MemoryStore, prefix: str, count: int) -> None:
    await fill(store)
    assert await store.count(prefix) == count


async def test_negative_limit_is_refused(store: MemoryStore) -> None:
    with pytest.raises(ValueError):
        await store.list("/", limit=-1)


@pytest.mark.parametrize(
    ("prefix", "end"),
    [("/a/", "/a0"), ("a", "b"), ("", None), ("\U0010ffff", None), ("a\U0010ffff", "b")],
)
def test_prefix_end(prefix: str, end: str | None) -> None:
    assert prefix_end(prefix) == end
