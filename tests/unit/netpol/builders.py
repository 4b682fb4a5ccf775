"""API-shaped objects and a two-node fake cluster for NetworkPolicy tests.

Fixture ranges: pods 10.244.0.0/16, node-1's 10.244.1.0/24, node-2's 10.244.2.0/24; nodes
172.18.0.11 (node-1) and 172.18.0.12 (node-2); the machine 172.18.0.1; Services 10.96.0.0/16.

Upstream's NetworkPolicy e2e layout: namespaces x, y, z (labelled ``ns``), pods a, b, c in each
(labelled ``pod``), each serving TCP and UDP on 80 and 81 with containerPorts named
``serve-<port>-<proto>``. Pods a and b run on node-1, c on node-2, so the matrix crosses both
the bridge of one node and the underlay between nodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from svcnet.dataplane.nft_fake import FakeNft
from svcnet.netpol.changetracker import ChangeTracker
from svcnet.netpol.compiler import Compiled
from svcnet.netpol.rules import FAMILY, TABLE, NetpolConfig, build_full, desired_state
from svcnet.testing.packet_tracer import Origin, Packet, Result, trace

NAMESPACES = ("x", "y", "z")
POD_NAMES = ("a", "b", "c")
NODE_OF = {"a": "node-1", "b": "node-1", "c": "node-2"}
NODE_IPS = {"node-1": "172.18.0.11", "node-2": "172.18.0.12"}
NODE_GW = {"node-1": "10.244.1.1", "node-2": "10.244.2.1"}
MACHINE = "172.18.0.1"
_NS_BYTE = {"x": 1, "y": 2, "z": 3}
_POD_BYTE = {"a": 0, "b": 1, "c": 2}


def pod_ip(ns: str, name: str) -> str:
    node = NODE_OF[name]
    block = node[-1]
    return f"10.244.{block}.{10 * _NS_BYTE[ns] + _POD_BYTE[name]}"


def pod(
    ns: str,
    name: str,
    labels: Mapping[str, str] | None = None,
    node: str | None = None,
    ip: str | None = None,
) -> dict[str, Any]:
    ports = [
        {"name": f"serve-{p}-{proto.lower()}", "containerPort": p, "protocol": proto}
        for p in (80, 81)
        for proto in ("TCP", "UDP")
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels or {"pod": name})},
        "spec": {"nodeName": node or NODE_OF[name], "containers": [{"name": "c", "ports": ports}]},
        "status": {"phase": "Running", "podIP": ip or pod_ip(ns, name)},
    }


def namespace(name: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": dict(labels or {"ns": name})},
    }


def policy(name: str, ns: str = "x", **spec: Any) -> dict[str, Any]:
    spec.setdefault("podSelector", {})
    if "policy_types" in spec:
        spec["policyTypes"] = spec.pop("policy_types")
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def layout() -> list[dict[str, Any]]:
    """The 3 namespaces and 9 pods."""
    return [namespace(ns) for ns in NAMESPACES] + [
        pod(ns, name) for ns in NAMESPACES for name in POD_NAMES
    ]


PODS = [f"{ns}/{name}" for ns in NAMESPACES for name in POD_NAMES]


@dataclass
class Node:
    name: str
    nft: FakeNft
    compiled: Compiled

    @property
    def local_addresses(self) -> tuple[str, ...]:
        return (NODE_IPS[self.name], NODE_GW[self.name], "127.0.0.1")


class FakeCluster:
    """Both nodes' NetworkPolicy tables in fake kernels, fed through the change tracker."""

    def __init__(self, objects: Iterable[Mapping[str, Any]]) -> None:
        self.tracker = ChangeTracker()
        for o in objects:
            self.add(o)
        self.nodes: dict[str, Node] = {}
        self.sync()

    def add(self, obj: Mapping[str, Any]) -> None:
        kind = obj["kind"]
        if kind == "Pod":
            self.tracker.upsert_pod(obj)
        elif kind == "Namespace":
            self.tracker.upsert_namespace(obj)
        else:
            self.tracker.upsert_policy(obj)

    def sync(self) -> None:
        for node in NODE_IPS:
            nft = FakeNft()
            compiled = self.tracker.compile(node)
            nft.apply_sync(build_full(NetpolConfig(node), desired_state(compiled)))
            self.nodes[node] = Node(node, nft, compiled)

    def node_of_ip(self, ip: str) -> str | None:
        for node in NODE_IPS:
            if ip.startswith(NODE_GW[node].rsplit(".", 1)[0] + "."):
                return node
        return None

    def verdict(self, src: str, dst: str, proto: str = "tcp", port: int = 80) -> Result:
        """A new connection between two addresses, through each node it crosses."""
        hops = []
        src_node, dst_node = self.node_of_ip(src), self.node_of_ip(dst)
        if src_node is not None:
            hops.append((src_node, Origin.NETWORK, "cni0"))
        if dst_node is not None and dst_node != src_node:
            hops.append((dst_node, Origin.NETWORK, "eth0"))
        for node_name, origin, iif in hops:
            node = self.nodes[node_name]
            packet = Packet(src, dst, proto, port, origin=origin, iif=iif)
            outcomes = trace(node.nft, FAMILY, TABLE, packet, node.local_addresses)
            assert len(outcomes) == 1, outcomes
            if outcomes[0].result is not Result.ACCEPT:
                return outcomes[0].result
        return Result.ACCEPT

    def matrix(self, proto: str = "tcp", port: int = 80) -> set[tuple[str, str]]:
        """The (from, to) pod pairs whose connection is accepted; a pod always reaches itself."""
        allowed = set()
        for src in PODS:
            for dst in PODS:
                if src == dst:
                    allowed.add((src, dst))
                    continue
                s_ip, d_ip = pod_ip(*src.split("/")), pod_ip(*dst.split("/"))
                if self.verdict(s_ip, d_ip, proto, port) is Result.ACCEPT:
                    allowed.add((src, dst))
        return allowed
