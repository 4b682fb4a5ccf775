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
from svcnet.netpol.compiler import Compiled, IncrementalCompiler
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
        # Pods the agent wired on this node, by key: (uid, address), until the API shows them.
        self._admitted: dict[PodKey, tuple[str, str]] = {}
        # The highest resourceVersion of a NetworkPolicy event recorded, and as of the last drain.
        self.policy_revision = 0
        self.drained_policy_revision = 0
        # One per node compiled (the agent compiles its own; tests compile several).
        self._compilers: dict[str, IncrementalCompiler] = {}

    # --- recording (called by informer handlers) ----------------------------------------------

    def upsert_pod(self, obj: ObjView) -> None:
        key = pod_key(obj)
        info = pod_info(obj)
        admitted = self._admitted.get(key)
        if admitted is not None:
            uid, ip = admitted
            if objects.uid(obj) != uid:
                del self._admitted[key]  # a new pod of the same name
            elif info is not None:
                if info.ip == ip:
                    del self._admitted[key]  # the API has caught up with the agent
            elif _running(obj):
                # A status written before the sandbox (no address yet) must not forget a pod
                # that is already wired: the address stays known until the API shows it.
                info = pod_info(_with_ip(obj, ip))
        self._record(("pod", key), self._pods, key, info)

    def admit_pod(self, obj: ObjView, ip: str) -> None:
        """A pod of this node about to run with ``ip``, before its status says so."""
        key = pod_key(obj)
        self._admitted[key] = (objects.uid(obj), ip)
        self._record(("pod", key), self._pods, key, pod_info(_with_ip(obj, ip)))

    def delete_pod(self, obj: ObjView) -> None:
        key = pod_key(obj)
        self._admitted.pop(key, None)
        self._record(("pod", key), self._pods, key, None)

    def upsert_namespace(self, obj: ObjView) -> None:
        info = namespace_info(obj)
        self._record(("namespace", info.name), self._namespaces, info.name, info)

    def delete_namespace(self, obj: ObjView) -> None:
        name = objects.name(obj)
        self._record(("namespace", name), self._namespaces, name, None)

    def upsert_policy(self, obj: ObjView) -> PolicyInfo:
        key = policy_key(obj)
        self._seen_policy(obj)
        info = policy_info(obj)
        self._record(("policy", key), self._policies, key, info)
        return info

    def delete_policy(self, obj: ObjView) -> None:
        key = policy_key(obj)
        self._seen_policy(obj)
        self._record(("policy", key), self._policies, key, None)

    def _seen_policy(self, obj: ObjView) -> None:
        rv = str(objects.meta(obj).get("resourceVersion") or "")
        if rv.isdigit():
            self.policy_revision = max(self.policy_revision, int(rv))

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
        if before != value:
            for c in self._compilers.values():
                _touch(c, okey)

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
        self.drained_policy_revision = self.policy_revision
        return out

    def compile(self, node: str) -> Compiled:
        """What ``node`` enforces now; only the policies changed since its last compile, or
        whose peers or targets changed, are compiled again (see :class:`IncrementalCompiler`)."""
        compiler = self._compilers.get(node)
        if compiler is None:
            compiler = self._compilers[node] = IncrementalCompiler(node)
        return compiler.compile(self._policies, self._pods.values(), self._namespaces)


def _touch(compiler: IncrementalCompiler, okey: ObjectKey) -> None:
    kind, key = okey
    if kind == "policy":
        assert isinstance(key, PolicyKey)
        compiler.touch_policy(key)
    elif kind == "pod":
        assert isinstance(key, PodKey)
        compiler.touch_pod(key.namespace)
    else:
        compiler.touch_namespace()


def _running(obj: ObjView) -> bool:
    return objects.status(obj).get("phase") not in ("Succeeded", "Failed")


def _with_ip(obj: ObjView, ip: str) -> dict[str, Any]:
    out = dict(obj)
    out["status"] = {**objects.status(obj), "podIP": ip, "podIPs": [{"ip": ip}]}
    return out
