"""The Node object and its Lease as the agent registers and renews them (pure).

Fields and wording follow kubelet (``pkg/kubelet/nodestatus/setters.go``): addresses
InternalIP + Hostname; capacity and allocatable cpu/memory/pods (110, kubelet's default
maxPods) and ephemeral-storage; nodeInfo with the versions; the conditions MemoryPressure,
DiskPressure, PIDPressure (reasons KubeletHasSufficient*), Ready (KubeletReady "kubelet is
posting ready status" / KubeletNotReady with the runtime's reason) and NetworkUnavailable
(RouteCreated, which upstream's route controller sets; here the agent has its podCIDR's
routes once the underlay has them). ``lastHeartbeatTime`` changes only when the status is
written; a condition's ``lastTransitionTime`` only when its status flips.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from svcnet.api.wellknown import ARCH_LABEL, HOSTNAME_LABEL, OS_LABEL

KUBELET_VERSION = "v1.32.0-svcnet"
MAX_PODS = 110
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40  # kubelet's nodeLeaseDurationSeconds default
DEFAULT_AGENT_PORT = 10250


@dataclass(frozen=True)
class MachineInfo:
    """What the agent reads from the machine once at start."""

    cpus: int
    memory_bytes: int
    kernel_version: str
    os_image: str
    machine_id: str
    boot_id: str
    architecture: str = "amd64"


@dataclass(frozen=True)
class NodeIdentity:
    name: str
    internal_ip: str
    agent_port: int = DEFAULT_AGENT_PORT
    runtime_version: str = "svcnet://0.1.0"


def _memory_quantity(n: int) -> str:
    return f"{n // 1024}Ki"


def capacity(info: MachineInfo) -> dict[str, str]:
    return {
        "cpu": str(info.cpus),
        "memory": _memory_quantity(info.memory_bytes),
        "pods": str(MAX_PODS),
        "ephemeral-storage": "0",
        "hugepages-2Mi": "0",
    }


def node_info(info: MachineInfo, ident: NodeIdentity) -> dict[str, str]:
    return {
        "machineID": info.machine_id,
        "systemUUID": info.machine_id,
        "bootID": info.boot_id,
        "kernelVersion": info.kernel_version,
        "osImage": info.os_image,
        "containerRuntimeVersion": ident.runtime_version,
        "kubeletVersion": KUBELET_VERSION,
        "kubeProxyVersion": "",
        "operatingSystem": "linux",
        "architecture": info.architecture,
    }


@dataclass(frozen=True)
class ConditionValue:
    type: str
    status: str
    reason: str
    message: str


def desired_conditions(
    ready: bool, not_ready_message: str, network_ready: bool
) -> list[ConditionValue]:
    out = [
        ConditionValue(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        ConditionValue(
            "DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"
        ),
        ConditionValue(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        ConditionValue("Ready", "True", "KubeletReady", "kubelet is posting ready status")
        if ready
        else ConditionValue("Ready", "False", "KubeletNotReady", not_ready_message),
    ]
    if network_ready:
        out.append(
            ConditionValue(
                "NetworkUnavailable", "False", "RouteCreated", "RouteController created a route"
            )
        )
    else:
        out.append(
            ConditionValue(
                "NetworkUnavailable", "True", "NoRouteCreated", "Node created without a route"
            )
        )
    return out


def merge_conditions(
    current: Sequence[Mapping[str, Any]], wanted: Sequence[ConditionValue], now: str
) -> list[dict[str, Any]]:
    """New conditions: heartbeat now; transition time kept unless the status changed."""
    by_type = {str(c.get("type")): c for c in current}
    out: list[dict[str, Any]] = []
    for w in wanted:
        old = by_type.get(w.type)
        transition = now
        if old is not None and old.get("status") == w.status and old.get("lastTransitionTime"):
            transition = str(old["lastTransitionTime"])
        out.append(
            {
                "type": w.type,
                "status": w.status,
                "reason": w.reason,
                "message": w.message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": transition,
            }
        )
    return out


def conditions_changed(
    current: Sequence[Mapping[str, Any]], wanted: Sequence[ConditionValue]
) -> bool:
    have = {
        str(c.get("type")): (c.get("status"), c.get("reason"), c.get("message")) for c in current
    }
    return any(have.get(w.type) != (w.status, w.reason, w.message) for w in wanted)


def node_status(
    info: MachineInfo,
    ident: NodeIdentity,
    conditions: list[dict[str, Any]],
) -> dict[str, Any]:
    cap = capacity(info)
    return {
        "addresses": [
            {"type": "InternalIP", "address": ident.internal_ip},
            {"type": "Hostname", "address": ident.name},
        ],
        "capacity": cap,
        "allocatable": dict(cap),
        "conditions": conditions,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": ident.agent_port}},
        "nodeInfo": node_info(info, ident),
        "images": [],
    }


def node_object(
    ident: NodeIdentity, labels: Mapping[str, str], pod_cidr: str = ""
) -> dict[str, Any]:
    """The Node the agent creates at registration (status follows through /status)."""
    spec: dict[str, Any] = {}
    if pod_cidr:
        spec = {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": ident.name,
            "labels": {
                HOSTNAME_LABEL: ident.name,
                OS_LABEL: "linux",
                ARCH_LABEL: "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                **labels,
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": spec,
    }


def lease_object(node_name: str, node_uid: str, renew_time: str) -> dict[str, Any]:
    """kubelet's node Lease: owned by the Node, so it goes when the Node does."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node_name,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}
            ],
        },
        "spec": {
            "holderIdentity": node_name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": renew_time,
        },
    }


def read_machine_info() -> MachineInfo:
    """The machine's facts (one read at start; the node namespaces share them)."""
    import os
    import platform

    def read(path: str, default: str = "") -> str:
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            return default

    mem = 0
    for line in read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) * 1024
            break
    os_image = "Linux"
    for line in read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            os_image = line.split("=", 1)[1].strip('"')
    machine = platform.machine()
    return MachineInfo(
        cpus=os.cpu_count() or 1,
        memory_bytes=mem,
        kernel_version=platform.release(),
        os_image=os_image,
        machine_id=read("/etc/machine-id"),
        boot_id=read("/proc/sys/kernel/random/boot_id"),
        architecture={"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine),
    )
