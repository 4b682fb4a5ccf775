"""Pending changes of the objects NetworkPolicy reads, per object, drained by one sync.

Informer handlers only call :meth:`ChangeTracker.upsert_pod` & co., which convert the object at
the door (:mod:`svcnet.netpol.model`) and record, per object, its projection at the last drain.
A change the compiler cannot see (a pod's readiness, a policy's annotations) or one undone
before the next sync (a label flapping) cancels out and costs no nft transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from svcnet.api import objects
from svcnet.api.objects import ObjView
from svcnet.netpol.compiler import Compiled, compile_policies
from svcnet.netpol.model import (
    NamespaceInfo,
    PodInfo,
    PodKey,
    PolicyInfo,
    PolicyKey,
    namespace_info,
    pod_info,
    pod_key,
    policy_info,
    policy_key,
)

# ("pod", PodKey) / ("namespace", name) / ("policy", PolicyKey)
ObjectKey = tuple[str, PodKey | PolicyKey | str]
Projection = PodInfo | NamespaceInfo | PolicyInfo | None


@dataclass(frozen=True, slots=True)
class Change:
    previous: Projection
    current: Projection


class ChangeTracker:
    def __init__(self) -> None:
        self._pods: dict[PodKey, PodInfo] = {}
        self._namespaces: dict[str, NamespaceInfo] = {}
        self._policies: dict[PolicyKey, PolicyInfo] = {}
        self._pending: dict[ObjectKey, Projection] = {}  # key -> projection at last drain

    # --- recording (called by informer handlers) ----------------------------------------------

    def upsert_pod(self, obj: ObjView) -> None:
        key = pod_key(obj)
        info = pod_info(obj)
        self._record(("pod", key), self._pods, key, info)

    def delete_pod(self, obj: ObjView) -> None:
        key = pod_key(obj)
        self._record(("pod", key), self._pods, key, None)

    def upsert_namespace(self, obj: ObjView) -> None:
        info = namespace_info(obj)
        self._record(("namespace", info.name), self._namespaces, info.name, info)

    def delete_namespace(self, obj: ObjView) -> None:
        name = objects.name(obj)
        self._record(("namespace", name), self._namespaces, name, None)

    def upsert_policy(self, obj: ObjView) -> None:
        key = policy_key(obj)
        self._record(("policy", key), self._policies, key, policy_info(obj))

    def delete_policy(self, obj: ObjView) -> None:
        key = policy_key(obj)
        self._record(("policy", key), self._policies, key, None)

    def _record(self, okey: ObjectKey, table: dict[Any, Any], key: Any, value: Projection) -> None:
        before = table.get(key)
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
        if okey not in self._pending:
            self._pending[okey] = before
        if self._pending[okey] == value:
            del self._pending[okey]  # the change undid itself

    # --- reading (called by the sync loop) ----------------------------------------------------

    def pending(self) -> int:
        return len(self._pending)

    def drain(self) -> dict[ObjectKey, Change]:
        """Every object changed since the last drain, as (previous, current); then forget."""
        current: dict[str, Callable[[Any], Projection]] = {
            "pod": self._pods.get,
            "namespace": self._namespaces.get,
            "policy": self._policies.get,
        }
        out = {k: Change(prev, current[k[0]](k[1])) for k, prev in self._pending.items()}
        self._pending.clear()
        return out

    def compile(self, node: str) -> Compiled:
        return compile_policies(
            node, self._policies.values(), self._pods.values(), self._namespaces.values()
        )
