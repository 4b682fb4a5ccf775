"""Informers against the fake API server: sync, events in order, reconnect, relist on 410."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from svcnet.api.registry import PODS, SERVICES
from svcnet.client.fake import FakeApiServer
from svcnet.client.informer import (
    NAMESPACE_INDEX,
    NODE_NAME_INDEX,
    SERVICE_NAME_INDEX,
    Backoff,
    DeletedFinalStateUnknown,
    FuncHandler,
    Indexer,
    Informer,
    SharedInformerFactory,
    index_by_label,
    index_by_namespace,
    index_by_node_name,
    meta_namespace_key,
    split_key,
    strip_managed_fields,
)
from svcnet.client.rest import ApiClient

assert PODS is not None and SERVICES is not None


def pod(name: str, ns: str = "default", node: str | None = None) -> dict[str, Any]:
    spec = {"nodeName": node} if node else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.tombstones: list[DeletedFinalStateUnknown] = []

    def handler(self) -> FuncHandler:
        def on_delete(o: Any) -> None:
            if isinstance(o, DeletedFinalStateUnknown):
                self.tombstones.append(o)
                self.events.append(("delete-tombstone", o.key))
            else:
                self.events.append(("delete", meta_namespace_key(o)))

        return FuncHandler(
            on_add=lambda o: self.events.append(("add", meta_namespace_key(o))),
            on_update=lambda _o, n: self.events.append(("update", meta_namespace_key(n))),
            on_delete=on_delete,
        )


async def until(cond: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.005)


@pytest.fixture
async def running(
    client: ApiClient,
) -> AsyncIterator[Callable[[Informer], asyncio.Task[None]]]:
    tasks: list[asyncio.Task[None]] = []

    def start(inf: Informer) -> asyncio.Task[None]:
        t = asyncio.create_task(inf.run())
        tasks.append(t)
        return t

    yield start
    for t in tasks:
        t.cancel()
    for t in tasks:
        with pytest.raises(asyncio.CancelledError):
            await t


def informer(client: ApiClient, **kw: Any) -> tuple[Informer, Recorder]:
    inf = Informer(client, PODS, backoff=Backoff(0.01, 0.05), **kw)
    rec = Recorder()
    inf.add_event_handler(rec.handler())
    return inf, rec


async def test_initial_list_fills_the_cache_and_marks_synced(
    client: ApiClient, fake: FakeApiServer, running: Any
) -> None:
    fake.put(pod("a"))
    fake.put(pod("b", "kube-system"))
    inf, rec = informer(client)
    assert not inf.has_synced()
    running(inf)
    await asyncio.wait_for(inf.wait_for_sync(), 2)
    assert sorted(inf.store.keys()) == ["default/a", "kube-system/b"]
    assert sorted(rec.events) == [("add", "default/a"), ("add", "kube-system/b")]
    assert inf.store.get("default/a")["kind"] == "Pod"  # filled in from the list


async def test_watch_events_reach_handlers_in_order(
    client: ApiClient, fake: FakeApiServer, running: Any
) -> None:
    inf, rec = informer(client)
    running(inf)
    await inf.wait_for_sync()
    await until(lambda: bool(fake.watchers))
    fake.put(pod("a"))
    fake.put({**pod("a"), "spec": {"nodeName": "n1"}})
    fake.remove(PODS, "a", "default")
    await until(lambda: len(rec.events) == 3)
    assert rec.events == [("add", "default/a"), ("update", "default/a"), ("delete", "default/a")]
    assert len(inf.store) == 0


async def test_bookmarks_advance_the_resource_version_without_events(
    client: ApiClient, fake: FakeApiServer, running: Any
) -> None:
    inf, rec = informer(client)
    running(inf)
    await inf.wait_for_sync()
    await until(lambda: bool(fake.watchers))
    fake.rv += 10  # other kinds were written meanwhile: pods saw nothing
    fake.send_bookmarks()
    await until(lambda: inf.last_resource_version == str(fake.rv))
    assert rec.events == []


async def test_a_broken_watch_reconnects_from_the_last_version_without_relisting(
    client: ApiClient, fake: FakeApiServer, running: Any
) -> None:
    inf, rec = informer(client)
    running(inf)
    await inf.wait_for_sync()
    await until(lambda: bool(fake.watchers))
    fake.drop_watches()
    fake.put(pod("while-away"))  # lands in history: the rewatch must replay it
    await until(lambda: ("add", "default/while-away") in rec.events)
    assert inf.lists == 1
    assert inf.watches >= 2


async def test_gone_forces_a_relist_whose_diff_arrives_as_events(
    client: ApiClient, fake: FakeApiServer, running: Any
) -> None:
    fake.put(pod("stays"))
    fake.put(pod("changes"))
    fake.put(pod("vanishes"))
    inf, rec = informer(client)
    running(inf)
    await inf.wait_for_sync()
    await until(lambda: bool(fake.watchers))
    rec.events.clear()
    # While the watch is down, the world moves on and the history is compacted.
    fake.paused = True  # the informer's watch stays open but hears nothing more
    fake.put({**pod("changes"), "spec": {"nodeName": "n2"}})
    fake.remove_silently(PODS, "vanishes", "default")
    fake.put(pod("new"))
    fake.compact()
    fake.drop_watches()
    await until(lambda: inf.lists == 2 and len(rec.events) == 3)
    assert sorted(rec.events) == [
        ("add", "default/new"),
        ("delete-tombstone", "default/vanishes"),
        ("update", "default/changes"),
    ]
    assert rec.tombstones[0].obj["metadata"]["name"] == "vanishes"
    assert sorted(inf.store.keys()) == ["default/changes", "default/new", "default/stays"]


async def test_errors_back_off_and_recover(
    client: ApiClient, fake: FakeApiServer, running: Any
) -> None:
    fake.put(pod("a"))
    fake.fail_next(500, 500)
    inf, _ = informer(client)
    running(inf)
    await asyncio.wait_for(inf.wait_for_sync(), 3)
    assert inf.errors == 2


async def test_a_handler_that_raises_does_not_stop_the_others(
    client: ApiClient, fake: FakeApiServer, running: Any
) -> None:
    fake.put(pod("a"))
    inf = Informer(client, PODS)

    def boom(_: Any) -> None:
        raise RuntimeError("handler bug")

    inf.add_event_handler(FuncHandler(on_add=boom))
    rec = Recorder()
    inf.add_event_handler(rec.handler())
    running(inf)
    await inf.wait_for_sync()
    assert rec.events == [("add", "default/a")]


async def test_a_handler_added_late_gets_the_cache_replayed(
    client: ApiClient, fake: FakeApiServer, running: Any
) -> None:
    fake.put(pod("a"))
    inf, _ = informer(client)
    running(inf)
    await inf.wait_for_sync()
    late = Recorder()
    inf.add_event_handler(late.handler())
    assert late.events == [("add", "default/a")]


async def test_resync_delivers_every_cached_object_as_an_update(
    client: ApiClient, fake: FakeApiServer, running: Any
) -> None:
    from svcnet.util.clock import FakeClock

    clock = FakeClock()
    fake.put(pod("a"))
    inf, rec = informer(client, resync_period=30.0, clock=clock)
    running(inf)
    await inf.wait_for_sync()
    await until(lambda: clock.pending() > 0)
    clock.advance(30)
    await until(lambda: ("update", "default/a") in rec.events)


async def test_the_informer_stops_cleanly_when_cancelled(
    client: ApiClient, fake: FakeApiServer
) -> None:
    inf, _ = informer(client)
    task = asyncio.create_task(inf.run())
    await inf.wait_for_sync()
    await until(lambda: bool(fake.watchers))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: not fake.watchers)


async def test_the_factory_shares_one_informer_per_resource(
    client: ApiClient, fake: FakeApiServer
) -> None:
    factory = SharedInformerFactory(client)
    a = factory.informer_for(PODS)
    b = factory.informer_for(PODS, indexers={NODE_NAME_INDEX: index_by_node_name})
    c = factory.informer_for(SERVICES)
    assert a is b and a is not c
    fake.put(pod("p", node="n1"))
    async with asyncio.TaskGroup() as tg:
        tasks = factory.start(tg)
        assert factory.start(tg) == []  # idempotent
        assert await factory.wait_for_cache_sync(2)
        assert [o["metadata"]["name"] for o in a.store.by_index(NODE_NAME_INDEX, "n1")] == ["p"]
        assert fake.watch_count() <= 2
        for t in tasks:
            t.cancel()


@pytest.mark.parametrize(
    ("index", "fn", "obj", "values"),
    [
        (NAMESPACE_INDEX, index_by_namespace, pod("a", "ns1"), ["ns1"]),
        (NODE_NAME_INDEX, index_by_node_name, pod("a", node="n1"), ["n1"]),
        (NODE_NAME_INDEX, index_by_node_name, pod("a"), []),
        (
            SERVICE_NAME_INDEX,
            index_by_label("kubernetes.io/service-name"),
            {
                "metadata": {
                    "name": "s-1",
                    "namespace": "d",
                    "labels": {"kubernetes.io/service-name": "web"},
                }
            },
            ["web"],
        ),
    ],
)
def test_index_functions(index: str, fn: Any, obj: dict[str, Any], values: list[str]) -> None:
    store = Indexer({index: fn})
    store.upsert(obj)
    assert store.index_values(index) == values


def test_indexes_follow_updates_and_removals() -> None:
    store = Indexer({NODE_NAME_INDEX: index_by_node_name})
    store.upsert(pod("a", node="n1"))
    store.upsert(pod("a", node="n2"))
    assert store.index_keys(NODE_NAME_INDEX, "n1") == []
    assert store.index_keys(NODE_NAME_INDEX, "n2") == ["default/a"]
    store.remove("default/a")
    assert store.index_values(NODE_NAME_INDEX) == []


@pytest.mark.parametrize(
    ("key", "parts"), [("ns/name", ("ns", "name")), ("node-1", (None, "node-1"))]
)
def test_split_key(key: str, parts: tuple[str | None, str]) -> None:
    assert split_key(key) == parts


async def test_a_watch_closed_at_once_backs_off_instead_of_spinning(
    client: ApiClient, fake: FakeApiServer, running: Any
) -> None:
    from svcnet.util.clock import FakeClock

    clock = FakeClock()
    inf, _ = informer(client, clock=clock, watch_timeout=(0, 0))  # the server ends it at once
    running(inf)
    await inf.wait_for_sync()
    await until(lambda: inf.errors == 1)
    await asyncio.sleep(0.05)
    assert fake.watch_count() == 1  # waiting on the (virtual) backoff, not reconnecting
    clock.advance(1.0)
    await until(lambda: fake.watch_count() == 2)


async def test_wait_until_seen_returns_once_the_cache_has_our_write(
    client: ApiClient, fake: FakeApiServer, running: Any
) -> None:
    inf, _ = informer(client)
    running(inf)
    await inf.wait_for_sync()
    await until(lambda: bool(fake.watchers))
    written = await client.create(pod("mine"))
    rv = written["metadata"]["resourceVersion"]
    await asyncio.wait_for(inf.wait_until_seen(rv), 2)
    assert inf.has_seen(rv)
    assert inf.store.get("default/mine") is not None
    assert not inf.has_seen(str(int(rv) + 1))


async def test_a_factory_transform_strips_managed_fields_from_listed_and_watched_objects(
    client: ApiClient, fake: FakeApiServer, running: Any
) -> None:
    fields = [{"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {}}}]
    fake.put({**pod("listed"), "metadata": {**pod("listed")["metadata"], "managedFields": fields}})
    inf = SharedInformerFactory(client, transform=strip_managed_fields).informer_for(PODS)
    seen: list[dict[str, Any]] = []
    inf.add_event_handler(FuncHandler(on_add=seen.append, on_update=lambda _o, n: seen.append(n)))
    running(inf)
    await inf.wait_for_sync()
    await until(lambda: bool(fake.watchers))
    watched = pod("watched")
    watched["metadata"]["managedFields"] = fields
    watched["metadata"]["labels"] = {"kept": "yes"}
    fake.put(watched)
    await until(lambda: len(seen) == 2)
    for obj in [*seen, *inf.store.list()]:
        assert "managedFields" not in obj["metadata"]
    assert inf.store.get("default/watched")["metadata"]["labels"] == {"kept": "yes"}
