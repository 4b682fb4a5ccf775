"""Pure pod-CIDR allocation for nodes (upstream ``pkg/controller/nodeipam/ipam``:
``cidrset.CidrSet`` and the ``RangeAllocator``).

The cluster CIDR (10.244.0.0/16) is cut into blocks of ``node_mask_size`` (/24); a bitmap
records which are taken. Allocation scans from the block after the last one handed out
(upstream's ``nextCandidate``), so a block released by a deleted node is not reused at once.
State is rebuilt on start from the podCIDRs the nodes already carry, so it survives restarts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from svcnet.api.ranges import DEFAULT_CLUSTER_CIDR

DEFAULT_NODE_MASK = 24


class CidrSetError(Exception):
    pass


class CidrExhausted(CidrSetError):
    """``cidrset.ErrCIDRRangeNoCIDRsRemaining``."""

    def __init__(self) -> None:
        super().__init__(
            "CIDR allocation failed; there are no remaining CIDRs left to allocate "
            "in the accepted range"
        )


class CidrOutOfRange(CidrSetError):
    pass


class CidrSet:
    def __init__(
        self, cluster_cidr: str = DEFAULT_CLUSTER_CIDR, node_mask_size: int = DEFAULT_NODE_MASK
    ) -> None:
        self.cluster = ipaddress.ip_network(cluster_cidr, strict=True)
        if node_mask_size < self.cluster.prefixlen or node_mask_size > self.cluster.max_prefixlen:
            raise CidrSetError(
                f"node mask /{node_mask_size} does not fit cluster CIDR {self.cluster}"
            )
        self.node_mask = node_mask_size
        self.max_cidrs = 1 << (node_mask_size - self.cluster.prefixlen)
        self._used: set[int] = set()
        self._next = 0
        self._block = 1 << (self.cluster.max_prefixlen - node_mask_size)

    @property
    def allocated(self) -> int:
        return len(self._used)

    def _cidr(self, index: int) -> str:
        base = int(self.cluster.network_address) + index * self._block
        return f"{ipaddress.ip_address(base)}/{self.node_mask}"

    def _index(self, cidr: str) -> int:
        net = ipaddress.ip_network(cidr, strict=False)
        if net.version != self.cluster.version or not net.subnet_of(self.cluster):  # type: ignore[arg-type]
            raise CidrOutOfRange(f"CIDR {cidr} is out of the cluster CIDR {self.cluster}")
        if net.prefixlen != self.node_mask:
            raise CidrOutOfRange(f"CIDR {cidr} is not a /{self.node_mask}")
        return (int(net.network_address) - int(self.cluster.network_address)) // self._block

    def allocate_next(self) -> str:
        for i in range(self.max_cidrs):
            index = (self._next + i) % self.max_cidrs
            if index not in self._used:
                self._used.add(index)
                self._next = (index + 1) % self.max_cidrs
                return self._cidr(index)
        raise CidrExhausted()

    def occupy(self, cidr: str) -> None:
        self._used.add(self._index(cidr))

    def release(self, cidr: str) -> None:
        self._used.discard(self._index(cidr))

    def is_used(self, cidr: str) -> bool:
        return self._index(cidr) in self._used


def node_pod_cidrs(node: Mapping[str, Any]) -> list[str]:
    spec = node.get("spec") or {}
    cidrs = [str(c) for c in spec.get("podCIDRs") or ()]
    if not cidrs and spec.get("podCIDR"):
        cidrs = [str(spec["podCIDR"])]
    return cidrs


def pod_cidr_patch(cidr: str) -> dict[str, Any]:
    return {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}


def cidr_not_available_message(node_name: str) -> str:
    """``nodeutil.RecordNodeStatusChange(…, "CIDRNotAvailable")``."""
    return f"Node {node_name} status is now: CIDRNotAvailable"
