"""The cluster's flows as ``svcnet flows`` shows them: merged across nodes, named, filtered (pure).

Each node's agent records the flows of its own pods (:mod:`svcnet.netpol.flowlog`), so a
connection between pods of two nodes is in both logs: the sender's node saw it leave (and, for
a Service, its address before DNAT), the receiver's node let it in or dropped it. They are
merged by the connection's 5-tuple after DNAT, the same on both nodes: a drop on either makes
the flow dropped, with the side and the policies of the node that dropped it.

Addresses are named from the API's objects, converted once (:class:`Names`): a pod's IP is the
pod, a ClusterIP (or LoadBalancer address) the Service, a node's address the node, and another
address a Service's EndpointSlices hold (the API server behind ``default/kubernetes``) says so. A dropped
packet sent to a Service on a kernel whose NFLOG carries no conntrack entry only says it was
DNATed: the Service is then the one whose EndpointSlices hold that pod and port.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from svcnet.netpol.flowlog import Flow, State, Verdict


@dataclass(frozen=True, slots=True)
class Endpoint:
    ip: str
    port: int
    kind: str = ""  # "pod", "service", "node", "endpoint" (of a Service), or "" when unknown
    namespace: str = ""
    name: str = ""

    def label(self) -> str:
        if self.kind == "pod" or self.kind == "service":
            return f"{self.namespace}/{self.name}"
        if self.kind == "node":
            return f"node/{self.name}"
        if self.kind == "endpoint":
            return f"{self.ip} ({self.namespace}/{self.name})"
        return self.ip

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ip": self.ip, "port": self.port}
        if self.kind:
            out[self.kind] = self.name
            if self.namespace:
                out["namespace"] = self.namespace
        return out


@dataclass(frozen=True, slots=True)
class Names:
    """Address -> (kind, namespace, name); (pod ip, port) -> Services that DNAT to it."""

    by_ip: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)
    backends: Mapping[tuple[str, int], tuple[tuple[str, str], ...]] = field(default_factory=dict)

    def endpoint(self, ip: str, port: int) -> Endpoint:
        kind, ns, name = self.by_ip.get(ip, ("", "", ""))
        return Endpoint(ip, port, kind, ns, name)


def names_from(
    pods: Iterable[Mapping[str, Any]],
    services: Iterable[Mapping[str, Any]],
    nodes: Iterable[Mapping[str, Any]],
    slices: Iterable[Mapping[str, Any]],
) -> Names:
    """:class:`Names` from API lists. A host-network pod shares its node's address, which
    stays the node's; a finished pod's address may belong to a new one, which wins."""
    by_ip: dict[str, tuple[str, str, str]] = {}
    for n in nodes:
        for a in (n.get("status") or {}).get("addresses") or []:
            if a.get("type") == "InternalIP":
                by_ip[str(a.get("address"))] = ("node", "", str(n["metadata"]["name"]))
    for s in services:
        meta, spec = s["metadata"], s.get("spec") or {}
        ips = [*(spec.get("clusterIPs") or [spec.get("clusterIP")])]
        ips += [
            i.get("ip")
            for i in ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        ]
        for ip in ips:
            if ip and ip != "None":
                by_ip[str(ip)] = ("service", str(meta.get("namespace")), str(meta["name"]))
    finished = ("Succeeded", "Failed")
    for p in sorted(pods, key=lambda p: (p.get("status") or {}).get("phase") not in finished):
        meta, status = p["metadata"], p.get("status") or {}
        ip = status.get("podIP")
        if ip and not (p.get("spec") or {}).get("hostNetwork"):
            by_ip[str(ip)] = ("pod", str(meta.get("namespace")), str(meta["name"]))
    backends: dict[tuple[str, int], set[tuple[str, str]]] = {}
    for sl in slices:
        labels = sl["metadata"].get("labels") or {}
        svc = labels.get("kubernetes.io/service-name")
        if not svc:
            continue
        owner = (str(sl["metadata"].get("namespace")), str(svc))
        ports = [int(p["port"]) for p in sl.get("ports") or [] if p.get("port") is not None]
        for ep in sl.get("endpoints") or []:
            for addr in ep.get("addresses") or []:
                by_ip.setdefault(str(addr), ("endpoint", *owner))
                for port in ports:
                    backends.setdefault((str(addr), port), set()).add(owner)
    return Names(by_ip, {k: tuple(sorted(v)) for k, v in backends.items()})


@dataclass(frozen=True, slots=True)
class FlowView:
    """One connection, merged from every node that reported it."""

    time: float
    verdict: Verdict
    state: State
    proto: str
    src: Endpoint
    dst: Endpoint
    service: Endpoint | None
    nodes: tuple[str, ...]
    direction: str
    policies: tuple[str, ...]
    reason: str
    count: int  # events merged (dropped packets logged, connection start and end)

    def to_json(self) -> dict[str, Any]:
        return {
            "time": datetime.fromtimestamp(self.time, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "verdict": self.verdict.value,
            "state": self.state.value,
            "protocol": self.proto.upper(),
            "from": self.src.to_json(),
            "to": self.dst.to_json(),
            "service": self.service.to_json() if self.service is not None else None,
            "nodes": list(self.nodes),
            "droppedBy": (
                {
                    "direction": self.direction,
                    "policies": list(self.policies),
                    "reason": self.reason,
                }
                if self.verdict is Verdict.DROPPED
                else None
            ),
            "events": self.count,
        }


def _service(names: Names, flows: Sequence[Flow]) -> Endpoint | None:
    for f in flows:
        if f.orig_dst and (f.orig_dst, f.orig_dport) != (f.dst, f.dport):
            ep = names.endpoint(f.orig_dst, f.orig_dport)
            if ep.kind == "service":
                return ep
    if any(f.dnat for f in flows):
        f = flows[0]
        owners = names.backends.get((f.dst, f.dport), ())
        if len(owners) == 1:
            ns, name = owners[0]
            return Endpoint("", 0, "service", ns, name)
    return None


def view(flows: Sequence[Flow], names: Names) -> FlowView:
    """One connection from its events (same :attr:`Flow.key`), oldest first."""
    first = flows[0]
    drops = [f for f in flows if f.verdict is Verdict.DROPPED]
    if drops:
        verdict, state, why = Verdict.DROPPED, State.DROPPED, drops[-1]
    else:
        closed = any(f.state is State.CLOSED for f in flows)
        verdict, state, why = Verdict.ALLOWED, State.CLOSED if closed else State.NEW, first
    return FlowView(
        first.time,
        verdict,
        state,
        first.proto,
        names.endpoint(first.src, first.sport),
        names.endpoint(first.dst, first.dport),
        _service(names, flows),
        tuple(sorted({f.node for f in flows})),
        why.direction,
        why.policies,
        why.reason,
        len(flows),
    )


def merge(flows: Iterable[Flow], names: Names) -> list[FlowView]:
    """Every node's events grouped into connections, oldest first."""
    groups: dict[tuple[str, str, int, str, int], list[Flow]] = {}
    for f in sorted(flows, key=lambda f: f.time):
        groups.setdefault(f.key, []).append(f)
    return sorted((view(g, names) for g in groups.values()), key=lambda v: v.time)


@dataclass(frozen=True, slots=True)
class Filter:
    namespace: str = ""
    pod: str = ""
    verdict: Verdict | None = None

    def __call__(self, v: FlowView) -> bool:
        if self.verdict is not None and v.verdict is not self.verdict:
            return False
        ends = [v.src, v.dst] + ([v.service] if v.service is not None else [])
        if self.namespace and not any(e.namespace == self.namespace for e in ends):
            return False
        if self.pod:
            pods = [e for e in (v.src, v.dst) if e.kind == "pod" and e.name == self.pod]
            if not any(not self.namespace or e.namespace == self.namespace for e in pods):
                return False
        return True


def row(v: FlowView) -> tuple[str, ...]:
    """The table's cells: FROM, TO, SERVICE, PROTO/PORT, VERDICT, POLICY (or why), NODES."""
    if v.verdict is Verdict.DROPPED:
        why = ", ".join(v.policies) if v.policies else v.reason
        policy = f"{v.direction}: {why}"
    else:
        policy = ""
    service = ""
    if v.service is not None:
        service = v.service.label() + (f":{v.service.port}" if v.service.port else "")
    return (
        f"{v.src.label()}:{v.src.port}" if v.src.port else v.src.label(),
        v.dst.label(),
        service,
        f"{v.dst.port}/{v.proto.upper()}" if v.dst.port else v.proto.upper(),
        v.verdict.value if v.verdict is Verdict.DROPPED else f"{v.verdict.value} ({v.state.value})",
        policy,
        ",".join(v.nodes),
    )
