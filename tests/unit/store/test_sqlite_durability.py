"""SQLite: what was acknowledged survives close/reopen and a SIGKILL of the writing process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from svcnet.store import (
    CompactedError,
    KeyValue,
    MemoryStore,
    SqliteStore,
    StoreError,
    open_store,
)

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("fsync", [False, True], ids=["synchronous-normal", "synchronous-full"])
async def test_state_and_revision_survive_reopen(tmp_path: Path, fsync: bool) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path, fsync=fsync)
    await store.create("/a", b"1")
    await store.create("/b", b"2")
    await store.update("/a", b"3")
    await store.close()

    store = SqliteStore(path)
    try:
        assert store.revision == 3
        assert await store.get("/a") == KeyValue("/a", b"3", 1, 3)
        assert await store.get("/b") == KeyValue("/b", b"2", 2, 2)
        assert (await store.create("/c", b"4")).mod_revision == 4
    finally:
        await store.close()


async def test_revision_of_a_final_delete_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    await store.create("/a", b"1")
    await store.create("/b", b"1")
    await store.delete("/b")
    await store.close()

    store = SqliteStore(path)
    try:
        assert store.revision == 3
        assert await store.get("/b") is None
        assert (await store.create("/c", b"1")).create_revision == 4
    finally:
        await store.close()


async def test_watch_history_does_not_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    for i in range(3):
        await store.create(f"/k{i}", b"v")
    await store.close()

    store = SqliteStore(path)
    try:
        # Chosen design: history is memory only, so clients relist after a restart (410 Gone).
        assert store.compact_revision == store.revision == 3
        with pytest.raises(CompactedError):
            store.watch("/", 2)
        watch = store.watch("/", 3)
        await store.create("/new", b"v")
        assert [e.revision for e in await watch.next_batch()] == [4]
    finally:
        await store.close()


async def test_a_second_open_of_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    try:
        with pytest.raises(StoreError, match="in use"):
            SqliteStore(path)
    finally:
        await store.close()


async def test_parent_directories_are_created(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "data" / "deep" / "s.db")
    await store.close()
    assert (tmp_path / "data" / "deep" / "s.db").exists()


@pytest.mark.parametrize(
    ("url", "backend", "relative_file"),
    [
        ("memory:", MemoryStore, None),
        ("sqlite://{tmp}/a.db", SqliteStore, "a.db"),
        ("{tmp}/b.db", SqliteStore, "b.db"),
    ],
    ids=["memory", "sqlite-url", "plain-path"],
)
async def test_open_store(
    tmp_path: Path, url: str, backend: type, relative_file: str | None
) -> None:
    store = open_store(url.format(tmp=tmp_path))
    try:
        assert type(store) is backend
        if relative_file is not None:
            assert (tmp_path / relative_file).exists()
    finally:
        await store.close()


@pytest.mark.parametrize("url", ["etcd://localhost:2379", "sqlite://"])
def test_open_store_refuses_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        open_store(url)


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from svcnet.store import SqliteStore

    async def main(path: str) -> None:
        store = SqliteStore(path)
        i = 0
        while True:
            key = f"/k/{i:06d}"
            kv = await store.create(key, key.encode() * 20)
            if i % 3 == 0:
                await store.update(key, b"updated", kv.mod_revision)
            if i % 5 == 4:
                await store.delete(f"/k/{i - 1:06d}")
            # The ack: printed only after the store call returned.
            sys.stdout.write(f"{i}\\n")
            sys.stdout.flush()
            i += 1

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        text=True,
    )
    acked = -1
    try:
        assert child.stdout is not None
        for line in child.stdout:
            acked = int(line)
            if acked >= 1500:
                break
        # Killed in the middle of its stream of writes, with no chance to close anything.
        child.send_signal(signal.SIGKILL)
        for line in child.stdout:  # acks already in the pipe when it died
            acked = int(line)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert acked >= 1500

    store = SqliteStore(path)
    try:
        for i in range(acked + 1):
            key = f"/k/{i:06d}"
            kv = await store.get(key)
            deleted = i % 5 == 3 and i + 1 <= acked
            if deleted:
                assert kv is None, key
                continue
            assert kv is not None, key
            assert kv.value == (b"updated" if i % 3 == 0 else key.encode() * 20)
        assert store.revision >= acked
    finally:
        await store.close()
