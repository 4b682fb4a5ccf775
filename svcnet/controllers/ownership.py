"""Mapping a dependent's event to the keys of its owners, from the owners' informer cache.

The workload controllers (ReplicaSet → Pods, Deployment → ReplicaSets, StatefulSet → Pods)
all enqueue the same way (upstream ``resolveControllerRef`` and ``getPodReplicaSets``): the
owner the dependent's controller reference names, if the cache holds it with that uid; or,
for an orphan, every owner whose selector matches it (one of them will adopt it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from svcnet.api.objects import ObjView, labels, meta, uid
from svcnet.client.informer import NAMESPACE_INDEX, Indexer, meta_namespace_key
from svcnet.controllers.replicaset.plan import selector_of


def resolve_controller_ref(
    owners: Indexer, kind: str, dependent: ObjView, ref: Mapping[str, Any] | None
) -> str | None:
    """The key of the ``kind`` owner ``ref`` names, if it is in the cache with that uid."""
    if ref is None or ref.get("kind") != kind:
        return None
    key = f"{meta(dependent).get('namespace')}/{ref.get('name')}"
    owner = owners.get(key)
    if owner is None or uid(owner) != ref.get("uid"):
        return None
    return key


def owners_selecting(
    owners: Indexer,
    dependent: ObjView,
    also: Callable[[ObjView, ObjView], bool] = lambda _owner, _dependent: True,
) -> list[str]:
    """The keys of the owners in the dependent's namespace whose (valid, non-empty) selector
    matches its labels and for which ``also(owner, dependent)`` holds."""
    ns = str(meta(dependent).get("namespace") or "")
    out = []
    for owner in owners.by_index(NAMESPACE_INDEX, ns):
        try:
            sel = selector_of(owner)
        except ValueError:
            continue
        if not sel.empty and sel.matches(labels(dependent)) and also(owner, dependent):
            out.append(meta_namespace_key(owner))
    return out
