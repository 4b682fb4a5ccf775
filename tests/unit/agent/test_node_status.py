"""The Node the agent registers and the status it posts (kubelet's setters)."""

from __future__ import annotations

import pytest

from svcnet.agent.node_status import (
    MachineInfo,
    NodeIdentity,
    conditions_changed,
    desired_conditions,
    lease_object,
    merge_conditions,
    node_object,
    node_status,
)

MACHINE = MachineInfo(
    cpus=2,
    memory_bytes=8 * 1024**3,
    kernel_version="6.1.0",
    os_image="Debian GNU/Linux 12 (bookworm)",
    machine_id="m",
    boot_id="b",
)
IDENT = NodeIdentity("node-1", "172.18.0.11")


def test_status_has_addresses_capacity_and_agent_port() -> None:
    st = node_status(MACHINE, IDENT, [])
    assert st["addresses"] == [
        {"type": "InternalIP", "address": "172.18.0.11"},
        {"type": "Hostname", "address": "node-1"},
    ]
    assert st["capacity"]["cpu"] == "2"
    assert st["capacity"]["memory"] == "8388608Ki"
    assert st["capacity"]["pods"] == "110"
    assert st["allocatable"] == st["capacity"]
    assert st["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    assert st["nodeInfo"]["kubeletVersion"].startswith("v1.32.")
    assert st["nodeInfo"]["containerRuntimeVersion"].startswith("svcnet://")


@pytest.mark.parametrize(
    ("ready", "status", "reason", "message"),
    [
        (True, "True", "KubeletReady", "kubelet is posting ready status"),
        (False, "False", "KubeletNotReady", "network not ready"),
    ],
)
def test_ready_condition_uses_kubelet_reasons(
    ready: bool, status: str, reason: str, message: str
) -> None:
    conds = {c.type: c for c in desired_conditions(ready, "network not ready", ready)}
    assert (conds["Ready"].status, conds["Ready"].reason, conds["Ready"].message) == (
        status,
        reason,
        message,
    )
    assert conds["MemoryPressure"].reason == "KubeletHasSufficientMemory"
    assert conds["DiskPressure"].reason == "KubeletHasNoDiskPressure"
    assert conds["PIDPressure"].reason == "KubeletHasSufficientPID"
    assert conds["NetworkUnavailable"].status == ("False" if ready else "True")


def test_transition_time_kept_while_status_unchanged_heartbeat_moves() -> None:
    first = merge_conditions([], desired_conditions(True, "", True), "T1")
    second = merge_conditions(first, desired_conditions(True, "", True), "T2")
    ready = next(c for c in second if c["type"] == "Ready")
    assert (ready["lastTransitionTime"], ready["lastHeartbeatTime"]) == ("T1", "T2")
    assert not conditions_changed(first, desired_conditions(True, "", True))


def test_transition_time_moves_when_status_flips() -> None:
    first = merge_conditions([], desired_conditions(False, "x", False), "T1")
    second = merge_conditions(first, desired_conditions(True, "", True), "T2")
    assert next(c for c in second if c["type"] == "Ready")["lastTransitionTime"] == "T2"
    assert conditions_changed(first, desired_conditions(True, "", True))


@pytest.mark.parametrize(
    ("pod_cidr", "spec"),
    [
        ("", {}),
        ("10.244.1.0/24", {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]}),
    ],
)
def test_node_object_carries_hostname_label_and_optional_pod_cidr(
    pod_cidr: str, spec: dict[str, object]
) -> None:
    node = node_object(IDENT, {"zone": "a"}, pod_cidr)
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "node-1"
    assert node["metadata"]["labels"]["zone"] == "a"
    assert node["spec"] == spec


def test_lease_is_owned_by_the_node_in_kube_node_lease() -> None:
    lease = lease_object("node-1", "uid-1", "2026-01-01T00:00:00.000001Z")
    assert lease["metadata"]["namespace"] == "kube-node-lease"
    assert lease["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert lease["spec"]["holderIdentity"] == "node-1"
    assert lease["spec"]["renewTime"] == "2026-01-01T00:00:00.000001Z"
