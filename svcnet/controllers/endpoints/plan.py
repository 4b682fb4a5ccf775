"""Pure planning of a Service's legacy ``v1/Endpoints`` object (upstream
``pkg/controller/endpoint/endpoints_controller.go`` and ``pkg/api/v1/endpoints``
``RepackSubsets``), built straight from the pods as upstream does, so that
``kubectl get endpoints`` shows what the EndpointSlices show.

Every (pod, Service port) pair becomes a one-address subset — in ``addresses`` when the pod is
Ready (or the Service publishes not-ready addresses), else in ``notReadyAddresses`` — and the
subsets are then repacked: addresses that offer exactly the same ports share one subset.
Terminating pods are left out unless the Service publishes not-ready addresses; more than
1000 addresses are truncated and annotated ``over-capacity``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from svcnet.api import objects
from svcnet.api.objects import ObjView
from svcnet.api.wellknown import HEADLESS_LABEL, OVER_CAPACITY_ANNOTATION, TRIGGER_TIME_ANNOTATION
from svcnet.controllers.endpointslice.plan import (
    IPV4,
    address_types,
    find_port,
    is_pod_ready,
    pod_addresses,
    should_pod_be_in_endpoints,
    should_set_hostname,
)

MAX_CAPACITY = 1000
TRUNCATED = "truncated"

PortTuple = tuple[str, int, str, str | None]  # name, port, protocol, appProtocol
AddrKey = tuple[str, str]  # ip, pod uid


def _address(pod: ObjView, service: ObjView, ip: str) -> dict[str, Any]:
    meta = objects.meta(pod)
    addr: dict[str, Any] = {"ip": ip}
    if should_set_hostname(pod, service):
        addr["hostname"] = objects.spec(pod)["hostname"]
    if objects.spec(pod).get("nodeName"):
        addr["nodeName"] = objects.spec(pod)["nodeName"]
    addr["targetRef"] = {
        "kind": "Pod",
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
    }
    return addr


def _port_dict(p: PortTuple) -> dict[str, Any]:
    d: dict[str, Any] = {"name": p[0], "port": p[1], "protocol": p[2]}
    if p[3] is not None:
        d["appProtocol"] = p[3]
    if not d["name"]:
        del d["name"]
    return d


def endpoint_subsets(service: ObjView, pods: Sequence[ObjView]) -> list[dict[str, Any]]:
    """The repacked subsets for the pods the Service selects."""
    spec = objects.spec(service)
    tolerate_unready = bool(spec.get("publishNotReadyAddresses"))
    family = (
        address_types(service)[0]
        if spec.get("ipFamilies") or (spec.get("clusterIP") not in (None, "", "None"))
        else IPV4
    )
    # address key → (address, ready); address key → ports it offers (None: no ports at all).
    addrs: dict[AddrKey, tuple[dict[str, Any], bool]] = {}
    ports_of: dict[AddrKey, set[PortTuple]] = {}
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, include_terminating=tolerate_unready):
            continue
        ips = pod_addresses(pod, family)
        if not ips:
            continue
        key = (ips[0], str(objects.meta(pod).get("uid", "")))
        ready = tolerate_unready or is_pod_ready(pod)
        service_ports = spec.get("ports") or ()
        offered: set[PortTuple] = set()
        for sp in service_ports:
            number = find_port(pod, sp)
            if number is None:
                continue
            offered.add(
                (
                    str(sp.get("name") or ""),
                    number,
                    str(sp.get("protocol") or "TCP"),
                    sp.get("appProtocol"),
                )
            )
        if service_ports and not offered:
            # Upstream adds a subset per resolved port only: a pod with none appears nowhere.
            continue
        if not service_ports and spec.get("clusterIP") != "None":
            continue
        addrs[key] = (_address(pod, service, ips[0]), ready)
        ports_of[key] = offered
    by_ports: dict[frozenset[PortTuple], list[AddrKey]] = {}
    for key, offered in ports_of.items():
        by_ports.setdefault(frozenset(offered), []).append(key)
    subsets: list[dict[str, Any]] = []
    for port_set, keys in by_ports.items():
        keys.sort()
        ready_addrs = [addrs[k][0] for k in keys if addrs[k][1]]
        not_ready = [addrs[k][0] for k in keys if not addrs[k][1]]
        subset: dict[str, Any] = {}
        if ready_addrs:
            subset["addresses"] = ready_addrs
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        if port_set:
            subset["ports"] = [
                _port_dict(p) for p in sorted(port_set, key=lambda p: (p[0], p[1], p[2]))
            ]
        subsets.append(subset)
    subsets.sort(
        key=lambda s: [a["ip"] for a in (*s.get("addresses", ()), *s.get("notReadyAddresses", ()))]
    )
    return subsets


def truncate(subsets: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    """At most 1000 addresses, ready ones kept first (``truncateEndpoints``)."""
    total = sum(len(s.get("addresses", ())) + len(s.get("notReadyAddresses", ())) for s in subsets)
    if total <= MAX_CAPACITY:
        return subsets, False
    budget = MAX_CAPACITY
    out: list[dict[str, Any]] = []
    for field in ("addresses", "notReadyAddresses"):
        for s in subsets:
            take = s.get(field, [])[:budget]
            budget -= len(take)
            s2 = next((o for o in out if o.get("ports") == s.get("ports")), None)
            if s2 is None:
                s2 = {k: v for k, v in s.items() if k == "ports"}
                out.append(s2)
            if take:
                s2[field] = take
    return [s for s in out if s.get("addresses") or s.get("notReadyAddresses")], True


def endpoints_labels(service: ObjView) -> dict[str, str]:
    labels = {
        k: v for k, v in (objects.meta(service).get("labels") or {}).items() if k != HEADLESS_LABEL
    }
    if objects.spec(service).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    return labels


def desired_endpoints_object(
    service: ObjView, pods: Sequence[ObjView], trigger_time: str | None
) -> dict[str, Any]:
    subsets, truncated = truncate(endpoint_subsets(service, pods))
    m = objects.meta(service)
    annotations: dict[str, str] = {}
    if trigger_time:
        annotations[TRIGGER_TIME_ANNOTATION] = trigger_time
    if truncated:
        annotations[OVER_CAPACITY_ANNOTATION] = TRUNCATED
    meta: dict[str, Any] = {
        "name": m.get("name", ""),
        "namespace": m.get("namespace", ""),
        "labels": endpoints_labels(service),
    }
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta, "subsets": subsets}


def plan_endpoints(
    service: ObjView, pods: Sequence[ObjView], current: ObjView | None, trigger_time: str | None
) -> dict[str, Any] | None:
    """The Endpoints object to write (create when ``current`` is None, else an update carrying
    its resourceVersion), or None when ``current`` already shows it. As upstream, a change of
    the trigger time alone is not worth a write."""
    want = desired_endpoints_object(service, pods, trigger_time)
    if current is None:
        return want
    cur_meta = objects.meta(current)
    cur_ann = dict(cur_meta.get("annotations") or {})
    same = (
        list(current.get("subsets") or []) == want["subsets"]
        and dict(cur_meta.get("labels") or {}) == want["metadata"]["labels"]
        and cur_ann.get(OVER_CAPACITY_ANNOTATION)
        == want["metadata"].get("annotations", {}).get(OVER_CAPACITY_ANNOTATION)
    )
    if same:
        return None
    annotations = {
        k: v
        for k, v in cur_ann.items()
        if k not in (TRIGGER_TIME_ANNOTATION, OVER_CAPACITY_ANNOTATION)
    }
    annotations.update(want["metadata"].get("annotations", {}))
    out = dict(current)
    out["metadata"] = {**cur_meta, "labels": want["metadata"]["labels"], "annotations": annotations}
    out["subsets"] = want["subsets"]
    out.setdefault("apiVersion", "v1")
    out.setdefault("kind", "Endpoints")
    return out
