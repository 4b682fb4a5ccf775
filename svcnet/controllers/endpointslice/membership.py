"""Which pods a Service selects and which Services select a pod, from indexes (upstream's
``GetPodServiceMemberships`` without walking every Service for every pod event).

* Services are indexed by each ``namespace/key=value`` pair of their selector, so a pod's
  candidate Services are those sharing one of its labels; the full selector then decides.
* Pods are indexed by ``namespace/value`` of one label key per selector (the first key, in
  order), added the first time a selector uses that key; a Service's pods are the pods with
  that label value, filtered by the full selector.

Services without a selector (nil or empty) select nothing here: their endpoints are written
by their users.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from svcnet.api import objects
from svcnet.api.objects import Obj
from svcnet.api.selectors import LabelSelector, selector_from_set
from svcnet.client.informer import Informer, index_by_namespaced_label, meta_namespace_key

SELECTOR_PAIR_INDEX = "svcnet.io/service-selector-pair"
POD_LABEL_INDEX_PREFIX = "svcnet.io/pod-label:"


def _selector_map(svc: Mapping[str, Any]) -> Mapping[str, str]:
    raw = (svc.get("spec") or {}).get("selector")
    return raw if isinstance(raw, Mapping) else {}


def index_by_selector_pairs(svc: Obj) -> list[str]:
    ns = objects.meta(svc).get("namespace", "")
    return [f"{ns}/{k}={v}" for k, v in _selector_map(svc).items()]


class Membership:
    def __init__(self, services: Informer, pods: Informer) -> None:
        self.services = services
        self.pods = pods
        services.add_indexers({SELECTOR_PAIR_INDEX: index_by_selector_pairs})
        self._cache: dict[str, tuple[str, LabelSelector | None]] = {}

    def selector(self, svc: Mapping[str, Any]) -> LabelSelector | None:
        """None for a Service without a selector."""
        key = meta_namespace_key(svc)
        rv = str(objects.meta(svc).get("resourceVersion", ""))
        hit = self._cache.get(key)
        if hit is not None and hit[0] == rv:
            return hit[1]
        raw = _selector_map(svc)
        sel = selector_from_set(raw) if raw else None
        self._cache[key] = (rv, sel)
        return sel

    def forget(self, key: str) -> None:
        self._cache.pop(key, None)

    def services_for_pod(self, pod: Mapping[str, Any]) -> list[str]:
        ns = objects.meta(pod).get("namespace", "")
        labels = objects.meta(pod).get("labels") or {}
        keys: set[str] = set()
        for k, v in labels.items():
            for svc in self.services.store.by_index(SELECTOR_PAIR_INDEX, f"{ns}/{k}={v}"):
                sel = self.selector(svc)
                if sel is not None and sel.matches(labels):
                    keys.add(meta_namespace_key(svc))
        return sorted(keys)

    def pods_for_service(self, svc: Mapping[str, Any]) -> list[Obj]:
        sel = self.selector(svc)
        raw = _selector_map(svc)
        if sel is None or not raw:
            return []
        key = sorted(raw)[0]
        index = POD_LABEL_INDEX_PREFIX + key
        self.pods.add_indexers({index: index_by_namespaced_label(key)})
        ns = objects.meta(svc).get("namespace", "")
        return [
            p
            for p in self.pods.store.by_index(index, f"{ns}/{raw[key]}")
            if sel.matches(objects.meta(p).get("labels") or {})
        ]
