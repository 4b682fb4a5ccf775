"""Namespace lifecycle admission: no new content in a namespace that is missing or going away.

Upstream runs this as the ``NamespaceLifecycle`` admission plugin on every create of a
namespaced object (``plugin/pkg/admission/namespace/lifecycle``), whatever its kind.
"""

from __future__ import annotations

from svcnet.api import objects as o
from svcnet.api.errors import Forbidden, NotFound
from svcnet.api.objects import Obj
from svcnet.api.registry import NAMESPACES, ResourceType
from svcnet.apiserver.storage import ObjectStore, decode

# Entries of the terminating cache before it starts over (namespaces are few; this only
# bounds a pathological client creating into ever new names).
_CACHE_LIMIT = 10_000


class NamespaceLifecycle:
    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects
        # namespace -> (mod revision of its stored object, whether it is terminating): every
        # create into a namespace checks it, and decoding the namespace each time costs more
        # than the rest of the check. Keyed by revision, so never stale.
        self._terminating: dict[str, tuple[int, bool]] = {}

    async def admit_create(self, rt: ResourceType, obj: Obj) -> None:
        """Raise NotFound or Forbidden when ``obj`` may not be created in its namespace."""
        if not rt.namespaced:
            return
        meta = obj["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        kv = await self.objects.get_kv(NAMESPACES, None, namespace)
        if kv is None:
            raise NotFound.for_object(NAMESPACES.plural, namespace)
        known = self._terminating.get(namespace)
        if known is not None and known[0] == kv.mod_revision:
            terminating = known[1]
        else:
            ns = decode(kv)
            terminating = bool(
                o.meta(ns).get("deletionTimestamp") or o.status(ns).get("phase") == "Terminating"
            )
            if len(self._terminating) >= _CACHE_LIMIT:
                self._terminating.clear()
            self._terminating[namespace] = (kv.mod_revision, terminating)
        if terminating:
            raise Forbidden(
                f'{rt.qualified_resource} "{name}" is forbidden: unable to create new content in '
                f"namespace {namespace} because it is being terminated",
                {"name": name, "group": rt.group, "kind": rt.plural}
                if rt.group
                else {"name": name, "kind": rt.plural},
            )
