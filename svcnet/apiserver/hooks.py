"""What a resource's storage does around a write, beyond its strategy.

Upstream's generic registry store (``k8s.io/apiserver/pkg/registry/generic/registry``) runs
the same create, update and delete for every kind; a kind's storage fills in the few hooks
where it differs, and this module is where svcnet keeps them:

* ``begin_create`` / ``begin_update`` (upstream ``BeginCreate`` / ``BeginUpdate``): called on
  the prepared object just before the write; they may reserve something (a Service's
  ClusterIP and NodePorts) and return a :data:`Finish` that the generic path calls exactly
  once, with ``True`` when the object was written and ``False`` otherwise (a failed write, a
  dry run, a no-op update, a conflict to retry). They run for writes of the main resource
  only: upstream's subresources (status, binding, finalize) are stores of their own without
  these hooks.
* ``should_delete_during_update`` (upstream ``ShouldDeleteDuringUpdate``): an update that
  removes the last finalizer removes the object.
* ``plan_delete``: what a DELETE does (upstream's graceful-delete strategy needs to know
  whether a Pod's node exists).
* ``after_delete`` (upstream ``AfterDelete``): give back what a removed object held.
* ``returns_deleted_object`` (upstream ``ReturnDeletedObject``): DELETE answers the object,
  not a ``Status``.

:class:`HookTable` gives every resource its hooks, the default ones for most kinds.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import ClassVar, Protocol

from svcnet.api import objects as o
from svcnet.api.objects import Obj
from svcnet.api.registry import NAMESPACES, NODES, PODS, SERVICES, Registry, ResourceType
from svcnet.apiserver import deletion
from svcnet.apiserver.admission import ServiceAllocator
from svcnet.apiserver.storage import ObjectStore

# Called once when a write ends: True when the object was written.
Finish = Callable[[bool], None]


class CreateAdmission(Protocol):
    """What checks every create before its kind's hooks (upstream's validating admission,
    e.g. NamespaceLifecycle in :mod:`svcnet.apiserver.lifecycle`)."""

    async def admit_create(self, rt: ResourceType, obj: Obj) -> None: ...


class AdmissionChain:
    """Admission plugins run one after the other, in upstream's order (NamespaceLifecycle
    before ServiceAccount); the first to refuse ends the create."""

    def __init__(self, *plugins: CreateAdmission) -> None:
        self.plugins = plugins

    async def admit_create(self, rt: ResourceType, obj: Obj) -> None:
        for plugin in self.plugins:
            await plugin.admit_create(rt, obj)


def finish_nothing(success: bool) -> None:
    """The :data:`Finish` of a write that reserved nothing."""
    del success


class ResourceHooks:
    """The default: nothing reserved, released or looked up around a write."""

    returns_deleted_object: ClassVar[bool] = False

    def __init__(self, resource: ResourceType) -> None:
        self.resource = resource

    def begin_create(self, obj: Obj) -> Finish:
        del obj
        return finish_nothing

    def begin_update(self, new: Obj, old: Obj) -> Finish:
        del new, old
        return finish_nothing

    def should_delete_during_update(self, new: Obj, subresource: str) -> bool:
        del subresource
        return deletion.finalizers_done(new)

    async def plan_delete(
        self, obj: Obj, opts: deletion.DeleteOptions, now: datetime.datetime
    ) -> deletion.DeletePlan:
        return deletion.plan_delete(self.resource, obj, opts, now, node_exists=False)

    def after_delete(self, obj: Obj) -> None:
        del obj


class ServiceHooks(ResourceHooks):
    """ClusterIP and NodePort allocation: one transaction per write (upstream's service REST
    ``beginCreate``/``beginUpdate`` over ``alloc.go``), released when the Service goes."""

    returns_deleted_object = True

    def __init__(self, resource: ResourceType, allocator: ServiceAllocator) -> None:
        super().__init__(resource)
        self.allocator = allocator

    def begin_create(self, obj: Obj) -> Finish:
        return self.allocator.admit_create(obj).finish

    def begin_update(self, new: Obj, old: Obj) -> Finish:
        return self.allocator.admit_update(new, old).finish

    def after_delete(self, obj: Obj) -> None:
        self.allocator.release(obj)


class PodHooks(ResourceHooks):
    """A Pod bound to a node that exists is deleted gracefully: the node's agent ends it."""

    returns_deleted_object = True

    def __init__(self, resource: ResourceType, objects: ObjectStore, nodes: ResourceType) -> None:
        super().__init__(resource)
        self.objects = objects
        self.nodes = nodes

    async def plan_delete(
        self, obj: Obj, opts: deletion.DeleteOptions, now: datetime.datetime
    ) -> deletion.DeletePlan:
        node = str(o.spec(obj).get("nodeName") or "")
        node_exists = bool(node) and await self.objects.get_kv(self.nodes, None, node) is not None
        return deletion.plan_delete(self.resource, obj, opts, now, node_exists)


class NamespaceHooks(ResourceHooks):
    """A Terminating namespace goes once ``namespaces/finalize`` removed its last finalizer."""

    returns_deleted_object = True

    def should_delete_during_update(self, new: Obj, subresource: str) -> bool:
        meta = o.meta(new)
        return super().should_delete_during_update(new, subresource) or bool(
            subresource == "finalize"
            and meta.get("deletionTimestamp")
            and not o.spec(new).get("finalizers")
            and not meta.get("finalizers")
        )


class WakeOnWrite(ResourceHooks):
    """Wakes a loop of the API server (a controller of its own) after every write of the
    resource: once a create or update was written, and on a delete."""

    def __init__(self, resource: ResourceType, wake: Callable[[], None]) -> None:
        super().__init__(resource)
        self.wake = wake

    def _finish(self, written: bool) -> None:
        if written:
            self.wake()

    def begin_create(self, obj: Obj) -> Finish:
        return self._finish

    def begin_update(self, new: Obj, old: Obj) -> Finish:
        return self._finish

    async def plan_delete(
        self, obj: Obj, opts: deletion.DeleteOptions, now: datetime.datetime
    ) -> deletion.DeletePlan:
        self.wake()  # the woken pass settles before it reads, after this delete's write
        return await super().plan_delete(obj, opts, now)

    def after_delete(self, obj: Obj) -> None:
        self.wake()


class HookTable:
    """The hooks of every resource of ``registry`` (one instance per resource)."""

    def __init__(
        self,
        registry: Registry,
        objects: ObjectStore,
        services: ServiceAllocator,
        extra: Mapping[ResourceType, Callable[[ResourceType], ResourceHooks]] | None = None,
    ) -> None:
        special: dict[ResourceType, Callable[[ResourceType], ResourceHooks]] = {
            SERVICES: lambda rt: ServiceHooks(rt, services),
            PODS: lambda rt: PodHooks(rt, objects, NODES),
            NAMESPACES: NamespaceHooks,
            # Hooks of other packages (RBAC's escalation checks), which import this module.
            **(extra or {}),
        }
        # By (group, plural), whose strings hash once: hashing a ResourceType hashes each of
        # its fields, on every write.
        self._by_name = {
            (rt.group, rt.plural): special.get(rt, ResourceHooks)(rt) for rt in registry.resources
        }

    def for_resource(self, rt: ResourceType) -> ResourceHooks:
        hooks = self._by_name.get((rt.group, rt.plural))
        if hooks is None:
            # A custom resource: the generic store's behaviour, nothing kind-specific.
            hooks = self._by_name[rt.group, rt.plural] = ResourceHooks(rt)
        return hooks

    def add(self, rt: ResourceType, hooks: ResourceHooks) -> None:
        """Give ``rt`` hooks of its own (the CRD controller's, on CRD writes)."""
        self._by_name[rt.group, rt.plural] = hooks
