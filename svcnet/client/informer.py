"""Informers: list + watch into a local cache, with event handlers (client-go's shared informer).

``Informer.run()`` is a long-lived task the owner puts in its TaskGroup: it lists (paging),
replaces the cache, then watches from the list's resourceVersion. A watch that ends is
restarted from the last resourceVersion seen (events or bookmarks); a connection failure is
retried with exponential backoff; ``410 Gone`` (history compacted) forces a fresh list whose
difference from the cache is delivered as events — objects that vanished meanwhile arrive at
``on_delete`` as :class:`DeletedFinalStateUnknown` tombstones, as client-go does.

Handlers run synchronously, in registration order, on the informer's task. **Handlers must
only enqueue keys** (into a :class:`svcnet.client.workqueue.WorkQueue`): they must not block,
await or write to the API; reconcilers re-read the cache. A handler that raises is logged and
the others still run.

The cache (:class:`Indexer`) is a dict keyed by ``namespace/name`` (``name`` for
cluster-scoped kinds) with secondary indexes computed by index functions. Objects in the cache
are shared: treat them as read-only.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, overload

from svcnet.api import objects
from svcnet.api.errors import ApiError, Gone
from svcnet.api.objects import Obj
from svcnet.api.registry import ResourceType
from svcnet.api.wellknown import SERVICE_NAME_LABEL
from svcnet.client.rest import ApiClient, ConnectionFailed
from svcnet.util.clock import REAL_CLOCK, Clock

log = logging.getLogger(__name__)

IndexFunc = Callable[[Obj], Iterable[str]]

NAMESPACE_INDEX = "namespace"
NODE_NAME_INDEX = "spec.nodeName"
SERVICE_NAME_INDEX = SERVICE_NAME_LABEL
OWNER_UID_INDEX = "ownerUID"


def meta_namespace_key(obj: Mapping[str, Any]) -> str:
    """``namespace/name``, or ``name`` for cluster-scoped objects (client-go's key)."""
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace"), meta.get("name", "")
    return f"{ns}/{name}" if ns else str(name)


def split_key(key: str) -> tuple[str | None, str]:
    """``(namespace, name)`` of a key made by :func:`meta_namespace_key`."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, key)


def index_by_namespace(obj: Obj) -> list[str]:
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


def index_by_node_name(obj: Obj) -> list[str]:
    node = (obj.get("spec") or {}).get("nodeName")
    return [node] if node else []


def index_by_label(label: str) -> IndexFunc:
    def index(obj: Obj) -> list[str]:
        value = ((obj.get("metadata") or {}).get("labels") or {}).get(label)
        return [value] if value is not None else []

    return index


def index_by_namespaced_label(label: str) -> IndexFunc:
    """``namespace/value`` of a label: e.g. EndpointSlices by ``namespace/service-name``."""

    def index(obj: Obj) -> list[str]:
        meta = obj.get("metadata") or {}
        value = (meta.get("labels") or {}).get(label)
        return [f"{meta.get('namespace', '')}/{value}"] if value is not None else []

    return index


def index_by_owner_uid(obj: Obj) -> list[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [str(r["uid"]) for r in refs if r.get("uid")]


class ShortWatch(Exception):
    """A watch ended at once without delivering anything."""


@dataclass(frozen=True)
class DeletedFinalStateUnknown:
    """A deletion the informer missed (it happened while the watch was down): the last state
    the cache had. ``on_delete`` receives this instead of the object."""

    key: str
    obj: Obj


class Indexer:
    """A thread-free cache keyed by :func:`meta_namespace_key` with secondary indexes."""

    def __init__(self, indexers: Mapping[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = dict(indexers or {})
        self._indices: dict[str, dict[str, set[str]]] = {n: {} for n in self._indexers}

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        for name, fn in indexers.items():
            if name in self._indexers:
                continue
            self._indexers[name] = fn
            self._indices[name] = {}
            for key, obj in self._items.items():
                self._index_one(name, key, obj)

    def _index_one(self, name: str, key: str, obj: Obj) -> None:
        index = self._indices[name]
        for value in self._indexers[name](obj):
            index.setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for value in fn(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]

    def upsert(self, obj: Obj) -> Obj | None:
        """Store ``obj``; the previous object under its key, if any."""
        key = meta_namespace_key(obj)
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        for name in self._indexers:
            self._index_one(name, key, obj)
        return old

    def remove(self, key: str) -> Obj | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    def get_by_name(self, name: str, namespace: str | None = None) -> Obj | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def list(self) -> builtins.list[Obj]:
        return list(self._items.values())

    def keys(self) -> builtins.list[str]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def by_index(self, index_name: str, value: str) -> builtins.list[Obj]:
        keys = self._indices[index_name].get(value, ())
        return [self._items[k] for k in sorted(keys)]

    def index_keys(self, index_name: str, value: str) -> builtins.list[str]:
        return sorted(self._indices[index_name].get(value, ()))

    def index_values(self, index_name: str) -> builtins.list[str]:
        return sorted(self._indices[index_name])


class EventHandler(Protocol):
    def on_add(self, obj: Obj) -> None: ...

    def on_update(self, old: Obj, new: Obj) -> None: ...

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None: ...


class FuncHandler:
    """An :class:`EventHandler` from plain functions (any may be omitted)."""

    def __init__(
        self,
        on_add: Callable[[Obj], None] | None = None,
        on_update: Callable[[Obj, Obj], None] | None = None,
        on_delete: Callable[[Obj | DeletedFinalStateUnknown], None] | None = None,
    ) -> None:
        self._add, self._update, self._delete = on_add, on_update, on_delete

    def on_add(self, obj: Obj) -> None:
        if self._add:
            self._add(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        if self._update:
            self._update(old, new)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        if self._delete:
            self._delete(obj)


@overload
def unwrap(obj: Obj | DeletedFinalStateUnknown) -> Obj: ...
@overload
def unwrap(obj: Mapping[str, Any] | DeletedFinalStateUnknown) -> Mapping[str, Any]: ...
def unwrap(obj: Mapping[str, Any] | DeletedFinalStateUnknown) -> Mapping[str, Any]:
    """The last known state of a deleted object."""
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


def deleted_key(obj: Mapping[str, Any] | DeletedFinalStateUnknown) -> str:
    """The ``namespace/name`` key of a deleted object."""
    return obj.key if isinstance(obj, DeletedFinalStateUnknown) else meta_namespace_key(obj)


def enqueue_handler(enqueue: Callable[[str], None]) -> FuncHandler:
    """The usual handler: every add, update and delete enqueues the object's key (for a
    controller whose queue holds the keys of the very objects it watches)."""
    return FuncHandler(
        on_add=lambda o: enqueue(meta_namespace_key(o)),
        on_update=lambda _o, n: enqueue(meta_namespace_key(n)),
        on_delete=lambda o: enqueue(deleted_key(o)),
    )


class Backoff:
    """Exponential backoff with jitter, reset after a period of health (client-go's
    ``wait.Backoff`` as the reflector uses it: 800 ms doubling to 30 s)."""

    def __init__(self, initial: float = 0.8, maximum: float = 30.0, jitter: float = 0.2) -> None:
        self.initial, self.maximum, self.jitter = initial, maximum, jitter
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay * (1 + random.uniform(0, self.jitter))

    def reset(self) -> None:
        self._next = self.initial


Transform = Callable[[Obj], Obj]


def strip_managed_fields(obj: Obj) -> Obj:
    """client-go's TransformStripManagedFields: a cache that never reads managedFields need
    not hold them (a third or more of a small object's JSON, per object, per process)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        del meta["managedFields"]
    return obj


class Informer:
    def __init__(
        self,
        client: ApiClient,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resync_period: float | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
        clock: Clock = REAL_CLOCK,
        page_size: int = 500,
        watch_timeout: tuple[int, int] = (300, 600),
        backoff: Backoff | None = None,
        transform: Transform | None = None,
    ) -> None:
        self.client = client
        self.rt = rt
        # Applied to every object as it arrives, before the cache or a handler sees it
        # (client-go's SetTransform): a process keeps only what it reads.
        self.transform = transform
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.clock = clock
        self.page_size = page_size
        # Upstream picks a random watch timeout in [5, 10) minutes so that watches of many
        # clients do not all end at once.
        self.watch_timeout = watch_timeout
        self.backoff = backoff or Backoff()
        self.store = Indexer(indexers)
        self.last_resource_version = ""
        self._handlers: list[EventHandler] = []
        self._synced = asyncio.Event()
        self._rv_waiters: list[tuple[str, asyncio.Future[None]]] = []
        # Counters for tests and metrics.
        self.lists = 0
        self.watches = 0
        self.errors = 0

    # -- consumers ---------------------------------------------------------------------------

    def add_event_handler(self, handler: EventHandler) -> None:
        """Register ``handler``; objects already cached are replayed to it as adds."""
        self._handlers.append(handler)
        for obj in self.store.list():
            self._call(handler.on_add, obj)

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        self.store.add_indexers(indexers)

    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_for_sync(self) -> None:
        await self._synced.wait()

    def _set_resource_version(self, rv: str) -> None:
        self.last_resource_version = rv
        if self._rv_waiters:
            still: list[tuple[str, asyncio.Future[None]]] = []
            for want, fut in self._rv_waiters:
                if fut.done():
                    continue
                if self.has_seen(want):
                    fut.set_result(None)
                else:
                    still.append((want, fut))
            self._rv_waiters = still

    def has_seen(self, resource_version: str) -> bool:
        """Whether the cache reflects every write up to ``resource_version``.

        resourceVersions are opaque to clients upstream; svcnet's are the store's global
        revision (an integer), so a controller can compare them to know its cache is not
        older than its own last write."""
        try:
            return int(self.last_resource_version or 0) >= int(resource_version)
        except ValueError:
            return False

    async def wait_until_seen(self, resource_version: str) -> None:
        """Wait until the cache has caught up with ``resource_version`` (e.g. our own write)."""
        if self.has_seen(resource_version):
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._rv_waiters.append((resource_version, fut))
        await fut

    # -- dispatch ----------------------------------------------------------------------------

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("%s informer: event handler failed", self.rt.plural)

    def _dispatch_add(self, obj: Obj) -> None:
        for h in self._handlers:
            self._call(h.on_add, obj)

    def _dispatch_update(self, old: Obj, new: Obj) -> None:
        for h in self._handlers:
            self._call(h.on_update, old, new)

    def _dispatch_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        for h in self._handlers:
            self._call(h.on_delete, obj)

    # -- cache updates -----------------------------------------------------------------------

    def _replace(self, items: list[Obj], resource_version: str) -> None:
        """Make the cache equal to a fresh list, delivering the difference as events."""
        fresh = {meta_namespace_key(o): o for o in items}
        for key in [k for k in self.store.keys() if k not in fresh]:  # noqa: SIM118 (a copy: we remove)
            old = self.store.remove(key)
            if old is not None:
                self._dispatch_delete(DeletedFinalStateUnknown(key, old))
        for obj in fresh.values():
            old = self.store.upsert(obj)
            if old is None:
                self._dispatch_add(obj)
            elif objects.resource_version(old) != objects.resource_version(obj):
                # Unchanged objects get no event: a relist is not a resync (see resync_period).
                self._dispatch_update(old, obj)
        self._set_resource_version(resource_version)
        self._synced.set()

    def _apply(self, etype: str, obj: Obj) -> None:
        if etype in ("ADDED", "MODIFIED"):
            old = self.store.upsert(obj)
            if old is None:
                self._dispatch_add(obj)
            else:
                self._dispatch_update(old, obj)
        elif etype == "DELETED":
            old = self.store.remove(meta_namespace_key(obj))
            # As client-go's DeltaFIFO: a delete of an object never seen is dropped. The
            # watch's final state is newer than the cache's, so that is what handlers get.
            if old is not None:
                self._dispatch_delete(obj)
        else:
            log.warning("%s informer: unknown watch event type %r", self.rt.plural, etype)
            return

    def resync(self) -> None:
        """Deliver every cached object to ``on_update(obj, obj)``: the periodic level check."""
        for obj in self.store.list():
            self._dispatch_update(obj, obj)

    # -- the loop ----------------------------------------------------------------------------

    async def _list(self) -> None:
        self.lists += 1
        result = await self.client.list_all(
            self.rt,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            page_size=self.page_size,
        )
        items = list(result.get("items") or [])
        # Lists carry apiVersion/kind only on the list; objects in the cache should be whole.
        for item in items:
            item.setdefault("apiVersion", self.rt.group_version)
            item.setdefault("kind", self.rt.kind)
        if self.transform is not None:
            items = [self.transform(item) for item in items]
        self._replace(items, str((result.get("metadata") or {}).get("resourceVersion", "")))

    async def _watch(self) -> None:
        self.watches += 1
        timeout = random.randint(*self.watch_timeout)
        started = self.clock.monotonic()
        events = 0
        async for event in self.client.watch(
            self.rt,
            self.namespace,
            resource_version=self.last_resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=timeout,
            allow_bookmarks=True,
        ):
            # Any event is proof of health: the next failure starts from a short backoff.
            self.backoff.reset()
            if event.type != "BOOKMARK":
                obj = event.object
                self._apply(event.type, obj if self.transform is None else self.transform(obj))
            events += 1
            rv = event.resource_version
            if rv:
                self._set_resource_version(rv)
        if events == 0 and self.clock.monotonic() - started < 1.0:
            # client-go's "very short watch": a server closing watches at once must not be
            # hammered with reconnects.
            raise ShortWatch(f"{self.rt.plural}: watch closed at once with no events")

    async def _resync_loop(self) -> None:
        assert self.resync_period
        await self._synced.wait()
        while True:
            await self.clock.sleep(self.resync_period)
            self.resync()

    async def run(self) -> None:
        """List and watch until cancelled. Put this in the owner's TaskGroup."""
        async with asyncio.TaskGroup() as tg:
            if self.resync_period:
                tg.create_task(self._resync_loop())
            await self._list_and_watch_forever()

    async def _list_and_watch_forever(self) -> None:
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                await self._watch()
            except Gone as e:
                # History compacted past our resourceVersion: only a fresh list can recover.
                log.info("%s informer: %s; relisting", self.rt.plural, e)
                need_list = True
                self.last_resource_version = ""
            except (ConnectionFailed, ApiError, ShortWatch) as e:
                self.errors += 1
                delay = self.backoff.next()
                log.warning("%s informer: %s; retrying in %.1fs", self.rt.plural, e, delay)
                await self.clock.sleep(delay)
            except Exception:
                # A bug must not take down every component sharing this informer: log, back
                # off, relist (the cache may be inconsistent after an unexpected failure).
                self.errors += 1
                need_list = True
                delay = self.backoff.next()
                log.exception("%s informer failed; relisting in %.1fs", self.rt.plural, delay)
                await self.clock.sleep(delay)


class SharedInformerFactory:
    """One informer per (resource, namespace, selectors), shared by every component of a
    process. ``start(tg)`` starts the informers not yet running; call it again after asking
    for more."""

    def __init__(
        self,
        client: ApiClient,
        *,
        default_resync: float | None = None,
        namespace: str | None = None,
        clock: Clock = REAL_CLOCK,
        transform: Transform | None = None,
    ) -> None:
        self.client = client
        self.transform = transform  # given to every informer made here
        self.default_resync = default_resync
        self.namespace = namespace
        self.clock = clock
        self._informers: dict[
            tuple[str, str, str, str | None, str | None, str | None], Informer
        ] = {}
        self._started: set[int] = set()

    def informer_for(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
        resync_period: float | None = None,
    ) -> Informer:
        ns = namespace if namespace is not None else self.namespace
        key = (rt.group, rt.version, rt.plural, ns, label_selector, field_selector)
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(
                self.client,
                rt,
                ns,
                label_selector=label_selector,
                field_selector=field_selector,
                resync_period=resync_period if resync_period is not None else self.default_resync,
                clock=self.clock,
                transform=self.transform,
            )
            self._informers[key] = informer
        if indexers:
            informer.add_indexers(indexers)
        return informer

    @property
    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    def start(self, tg: asyncio.TaskGroup | None = None) -> list[asyncio.Task[None]]:
        """Start the informers not yet running, in ``tg`` (or as bare tasks the caller must
        cancel); the new tasks are returned."""
        started: list[asyncio.Task[None]] = []
        for informer in self._informers.values():
            if id(informer) not in self._started:
                self._started.add(id(informer))
                name = f"informer-{informer.rt.plural}"
                coro = informer.run()
                task = (
                    tg.create_task(coro, name=name) if tg else asyncio.create_task(coro, name=name)
                )
                started.append(task)
        return started

    def has_synced(self) -> bool:
        return all(i.has_synced() for i in self._informers.values())

    async def wait_for_cache_sync(self, timeout: float | None = None) -> bool:
        """True once every informer has synced; False if ``timeout`` passes first."""
        waits = [i.wait_for_sync() for i in self._informers.values()]
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*waits)
        except TimeoutError:
            return False
        return True
