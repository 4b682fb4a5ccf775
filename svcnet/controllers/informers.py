"""What every controller needs around its informers: the resource types it watches, the
object or key a delete event stands for (a ``DeletedFinalStateUnknown`` tombstone when the
informer missed the delete and only noticed on relist), and the handler of a controller whose
queue holds the keys of the very objects it watches."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, overload

from svcnet.api.registry import REGISTRY, ResourceType
from svcnet.client.informer import DeletedFinalStateUnknown, FuncHandler, Obj, meta_namespace_key


def resource_type(api_version: str, kind: str) -> ResourceType:
    """The registry's entry for a kind every controller expects to exist."""
    rt = REGISTRY.by_kind(api_version, kind)
    assert rt is not None, kind
    return rt


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


def enqueue_own_key(enqueue: Callable[[str], None]) -> FuncHandler:
    """A handler enqueueing the key of every object added, updated or deleted."""
    return FuncHandler(
        on_add=lambda o: enqueue(meta_namespace_key(o)),
        on_update=lambda _o, n: enqueue(meta_namespace_key(n)),
        on_delete=lambda o: enqueue(deleted_key(o)),
    )
