"""The generic write path keeps a Service's ClusterIP/NodePort allocation in step with the store.

Every write runs the kind's begin hook and ends its transaction once: committed when the
object was written, rolled back otherwise. The invariant checked after every scenario: the
allocators hold exactly what the stored Services hold — no leak after a failed, dry-run,
conflicting or retried write, no early release of what a failed update gives up.

Store errors come from the real in-memory store over a journal that fails when told (what
SQLite does on a full disk: ``StoreError`` and nothing changed), both with one commit per
write and with group commit (the server's SQLite path); a racing writer comes through the
store Protocol.

Fixture ranges: service CIDR 10.96.0.0/16, NodePorts 30000-32767.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from svcnet.api.errors import AlreadyExists, Conflict, InternalError
from svcnet.api.registry import NAMESPACES, REGISTRY, SERVICES
from svcnet.apiserver import deletion
from svcnet.apiserver import request as req
from svcnet.apiserver.admission import ServiceAllocator
from svcnet.apiserver.handlers import ResourceHandlers
from svcnet.apiserver.hooks import HookTable
from svcnet.apiserver.lifecycle import NamespaceLifecycle
from svcnet.apiserver.storage import ObjectStore, decode
from svcnet.store.interface import KeyValue, ListResult, StoreError, Watch
from svcnet.store.journal import JournalOp
from svcnet.store.memory import MemoryStore

SERVICE_CIDR = "10.96.0.0/16"
NODE_PORTS = (30000, 32767)
OPTS = req.WriteOptions(field_manager="test")


class Disk:
    """A journal whose writes fail while ``failing`` is set, changing nothing (like SQLite's
    journal on a full disk). With ``batched`` it commits groups of writes, as SQLite does."""

    def __init__(self, batched: bool) -> None:
        self.failing = False
        if batched:
            self.write_batch = self._write_batch

    def _check(self, what: str) -> None:
        if self.failing:
            raise StoreError(f"writing {what}: database or disk is full")

    def _write_batch(self, ops: Sequence[JournalOp]) -> None:
        self._check(f"{len(ops)} changes")

    def put(self, kv: KeyValue) -> None:
        self._check(kv.key)

    def delete(self, key: str, revision: int) -> None:
        self._check(key)

    def compact(self, revision: int) -> None:
        pass

    def close(self) -> None:
        pass


class RacingStore:
    """The store Protocol over a real store, where another writer changes a key just before
    the next update of it (once per :meth:`race_next_update`)."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self._race: set[str] = set()

    def race_next_update(self, key: str) -> None:
        self._race.add(key)

    @property
    def revision(self) -> int:
        return self.inner.revision

    @property
    def compact_revision(self) -> int:
        return self.inner.compact_revision

    async def create(self, key: str, value: bytes) -> KeyValue:
        return await self.inner.create(key, value)

    async def get(self, key: str) -> KeyValue | None:
        return await self.inner.get(key)

    async def list(self, prefix: str, *, limit: int = 0, start_after: str = "") -> ListResult:
        return await self.inner.list(prefix, limit=limit, start_after=start_after)

    async def count(self, prefix: str) -> int:
        return await self.inner.count(prefix)

    async def update(
        self, key: str, value: bytes, expected_mod_revision: int | None = None
    ) -> KeyValue:
        if key in self._race:
            self._race.discard(key)
            current = await self.inner.get(key)
            assert current is not None
            other = orjson.loads(current.value)
            other["metadata"].setdefault("labels", {})["touched-by"] = "another-writer"
            await self.inner.update(key, orjson.dumps(other))
        return await self.inner.update(key, value, expected_mod_revision)

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> KeyValue:
        return await self.inner.delete(key, expected_mod_revision)

    def watch(self, prefix: str, after_revision: int) -> Watch:
        return self.inner.watch(prefix, after_revision)

    async def compact(self, revision: int) -> None:
        await self.inner.compact(revision)

    async def close(self) -> None:
        await self.inner.close()


class Server:
    """The resource handlers over one store, with the allocator they share."""

    def __init__(self, batched: bool = False) -> None:
        self.disk = Disk(batched)
        self.store = RacingStore(MemoryStore(journal=self.disk))
        self.objects = ObjectStore(self.store)
        self.services = ServiceAllocator(SERVICE_CIDR, NODE_PORTS)
        self.handlers = ResourceHandlers(
            REGISTRY,
            self.objects,
            HookTable(REGISTRY, self.objects, self.services),
            NamespaceLifecycle(self.objects),
        )

    async def start(self) -> Server:
        await self.handlers.create_object(NAMESPACES, {"metadata": {"name": "default"}}, OPTS)
        return self

    async def create(self, svc: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        opts = req.WriteOptions(field_manager="test", dry_run=dry_run)
        return await self.handlers.create_object(SERVICES, copy.deepcopy(svc), opts)

    async def update(
        self, name: str, spec: dict[str, Any], user_rv: str = "", dry_run: bool = False
    ) -> dict[str, Any]:
        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            current["spec"].update(copy.deepcopy(spec))
            # None removes a field, as a merge patch does.
            current["spec"] = {k: v for k, v in current["spec"].items() if v is not None}
            return current

        info = req.RequestInfo("", "v1", "services", "default", name, "", req.Verb.UPDATE)
        opts = req.WriteOptions(field_manager="test", dry_run=dry_run)
        obj, _ = await self.handlers.update_object(SERVICES, info, mutate, opts, user_rv)
        return obj

    async def stored(self) -> tuple[list[str], list[int]]:
        """The ClusterIPs and NodePorts the stored Services hold, sorted."""
        page = await self.objects.list(SERVICES, None)
        ips: set[str] = set()
        ports: set[int] = set()
        for kv in page.items:
            spec = decode(kv)["spec"]
            ips.update(ip for ip in spec.get("clusterIPs") or [] if ip != "None")
            ports.update(p["nodePort"] for p in spec.get("ports") or [] if p.get("nodePort"))
            if spec.get("healthCheckNodePort"):
                ports.add(spec["healthCheckNodePort"])
        return sorted(ips, key=_ip_order), sorted(ports)

    async def check(self) -> tuple[list[str], list[int]]:
        """Assert the allocators hold exactly what is stored; return it."""
        held = (self.services.ip.allocated(), self.services.ports.allocated())
        stored = await self.stored()
        assert held == stored
        return stored


def _ip_order(ip: str) -> tuple[int, ...]:
    return tuple(int(part) for part in ip.split("."))


def _svc(name: str = "web", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}], **spec},
    }


NODE_PORT = {"type": "NodePort"}
LOCAL_LB = {"type": "LoadBalancer", "externalTrafficPolicy": "Local"}


# -- create ----------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [{}, NODE_PORT, LOCAL_LB], ids=["ClusterIP", "NodePort", "LB"])
async def test_create_keeps_what_it_allocated(spec: dict[str, Any]) -> None:
    s = await Server().start()
    await s.create(_svc(**spec))
    ips, ports = await s.check()
    assert len(ips) == 1
    assert len(ports) == {"NodePort": 1, "LoadBalancer": 2}.get(spec.get("type", ""), 0)


@pytest.mark.parametrize("batched", [False, True], ids=["commit-per-write", "group-commit"])
@pytest.mark.parametrize("spec", [{}, NODE_PORT, LOCAL_LB], ids=["ClusterIP", "NodePort", "LB"])
async def test_create_that_the_store_fails_gives_everything_back(
    batched: bool, spec: dict[str, Any]
) -> None:
    s = await Server(batched).start()
    s.disk.failing = True
    with pytest.raises(InternalError, match="disk is full"):
        await s.create(_svc(**spec))
    assert await s.check() == ([], [])
    # What the failed create had taken is free for the next one.
    s.disk.failing = False
    await s.create(_svc(**spec, clusterIP="10.96.7.7"))
    assert (await s.check())[0] == ["10.96.7.7"]


async def test_create_of_an_existing_name_gives_its_allocation_back() -> None:
    s = await Server().start()
    await s.create(_svc(**NODE_PORT))
    before = await s.check()
    with pytest.raises(AlreadyExists):
        await s.create(_svc(**NODE_PORT, clusterIP="10.96.8.8"))
    assert await s.check() == before


async def test_dry_run_create_gives_everything_back() -> None:
    s = await Server().start()
    dry = await s.create(_svc(**LOCAL_LB), dry_run=True)
    assert dry["spec"]["clusterIP"] and dry["spec"]["healthCheckNodePort"]
    assert await s.check() == ([], [])


# -- update ----------------------------------------------------------------------------------


EXTERNAL_NAME = {"type": "ExternalName", "externalName": "example.com"}
# The Service, an update of it, and how many ClusterIPs and NodePorts it holds once updated.
UPDATES = {
    "new-node-ports": (
        NODE_PORT,
        {**LOCAL_LB, "ports": [{"name": "http", "port": 80}, {"name": "dns", "port": 53}]},
        (1, 3),
    ),
    "new-cluster-ip": (EXTERNAL_NAME, {"type": "ClusterIP", "externalName": None}, (1, 0)),
    "new-ip-and-ports": (EXTERNAL_NAME, {**LOCAL_LB, "externalName": None}, (1, 2)),
    "gives-up-ip-and-ports": (LOCAL_LB, EXTERNAL_NAME, (0, 0)),
}


@pytest.mark.parametrize("batched", [False, True], ids=["commit-per-write", "group-commit"])
@pytest.mark.parametrize("case", UPDATES)
async def test_update_the_store_fails_changes_no_allocation(batched: bool, case: str) -> None:
    """A failed update frees what it allocated and keeps what it would have given up."""
    created, change, held = UPDATES[case]
    s = await Server(batched).start()
    await s.create(_svc(**created))
    before = await s.check()
    s.disk.failing = True
    with pytest.raises(InternalError):
        await s.update("web", change)
    assert await s.check() == before
    s.disk.failing = False
    await s.update("web", change)
    ips, ports = await s.check()
    assert (len(ips), len(ports)) == held


async def test_update_retried_after_a_conflict_keeps_one_allocation() -> None:
    s = await Server().start()
    await s.create(_svc())
    s.store.race_next_update(SERVICES.store_key("default", "web"))
    updated = await s.update("web", {"type": "NodePort"})
    assert updated["metadata"]["labels"] == {"touched-by": "another-writer"}
    _, ports = await s.check()
    assert ports == [updated["spec"]["ports"][0]["nodePort"]]


async def test_update_with_a_stale_resource_version_gives_its_allocation_back() -> None:
    s = await Server().start()
    created = await s.create(_svc())
    rv = created["metadata"]["resourceVersion"]
    s.store.race_next_update(SERVICES.store_key("default", "web"))
    with pytest.raises(Conflict):
        await s.update("web", {"type": "NodePort"}, user_rv=rv)
    assert (await s.check())[1] == []


async def test_dry_run_update_gives_everything_back() -> None:
    s = await Server().start()
    await s.create(_svc())
    before = await s.check()
    dry = await s.update("web", dict(LOCAL_LB), dry_run=True)
    assert dry["spec"]["healthCheckNodePort"]
    assert await s.check() == before


async def test_update_that_removes_the_last_finalizer_releases_everything() -> None:
    s = await Server().start()
    await s.create({**_svc(**NODE_PORT), "metadata": {**_svc()["metadata"], "finalizers": ["x/y"]}})
    rt = SERVICES
    _, removed = await s.handlers.delete_object(rt, "default", "web", deletion.DeleteOptions())
    assert not removed  # marked, kept for its finalizer

    def drop_finalizers(current: dict[str, Any]) -> dict[str, Any]:
        current["metadata"]["finalizers"] = []
        # A type change in the same write would allocate: given back as the object goes.
        current["spec"].update(LOCAL_LB)
        return current

    info = req.RequestInfo("", "v1", "services", "default", "web", "", req.Verb.UPDATE)
    _, removed = await s.handlers.update_object(rt, info, drop_finalizers, OPTS)
    assert removed
    assert await s.check() == ([], [])


# -- delete ----------------------------------------------------------------------------------


async def test_delete_releases_and_a_failed_delete_keeps() -> None:
    s = await Server().start()
    await s.create(_svc(**LOCAL_LB))
    before = await s.check()
    rt = SERVICES
    s.disk.failing = True
    with pytest.raises(InternalError):
        await s.handlers.delete_object(rt, "default", "web", deletion.DeleteOptions())
    assert await s.check() == before
    s.disk.failing = False
    await s.handlers.delete_object(rt, "default", "web", deletion.DeleteOptions())
    assert await s.check() == ([], [])
