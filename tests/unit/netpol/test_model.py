"""The slim projections NetworkPolicy converts API objects to, at the door."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.netpol.model import (
    IPBlock,
    PortSpec,
    Protocol,
    namespace_info,
    pod_info,
    policy_info,
)

from .builders import pod, policy


@pytest.mark.parametrize(
    ("spec", "isolates_ingress", "isolates_egress"),
    [
        ({}, True, False),  # upstream's default: Ingress
        ({"egress": [{}]}, True, True),  # egress rules add Egress
        ({"egress": []}, True, False),  # an empty list is no rule
        ({"policyTypes": ["Egress"], "ingress": [{}]}, False, True),  # ingress rules ignored
        ({"policyTypes": ["Ingress", "Egress"]}, True, True),
    ],
)
def test_policy_types_are_defaulted_as_upstream(
    spec: dict[str, Any], isolates_ingress: bool, isolates_egress: bool
) -> None:
    info = policy_info(policy("p", **spec))
    assert (info.ingress is not None, info.egress is not None) == (
        isolates_ingress,
        isolates_egress,
    )


@pytest.mark.parametrize(
    ("port", "want"),
    [
        ({}, PortSpec(Protocol.TCP)),
        ({"protocol": "UDP"}, PortSpec(Protocol.UDP)),
        ({"port": 80}, PortSpec(Protocol.TCP, port=80)),
        ({"port": "80"}, PortSpec(Protocol.TCP, port=80)),
        ({"port": 80, "endPort": 90, "protocol": "SCTP"}, PortSpec(Protocol.SCTP, 80, None, 90)),
        ({"port": "http"}, PortSpec(Protocol.TCP, name="http")),
    ],
)
def test_ports(port: dict[str, Any], want: PortSpec) -> None:
    info = policy_info(policy("p", ingress=[{"ports": [port]}]))
    assert info.ingress is not None
    assert info.ingress[0].ports == (want,)


def test_an_ipv6_block_is_valid_and_matches_no_ipv4_address() -> None:
    info = policy_info(
        policy(
            "v6",
            podSelector={"matchLabels": {"pod": "a"}},
            ingress=[{"from": [{"ipBlock": {"cidr": "fd00::/8"}}]}],
        )
    )
    assert info.ingress is not None and info.ingress[0].peers[0].ip_block is not None
    assert info.ingress[0].peers[0].ip_block.networks() == ()
    assert not info.pod_selector.empty


def test_ip_block_is_its_cidr_minus_its_excepts() -> None:
    block = IPBlock("10.0.0.0/8", ("10.1.0.0/16", "10.1.2.0/24", "10.200.0.0/16"))
    nets = [str(n) for n in block.networks()]
    assert "10.0.0.0/16" in nets and "10.2.0.0/15" in nets
    assert not any(n.startswith(("10.1.", "10.200.")) for n in nets)
    total = sum(2 ** (32 - int(n.split("/")[1])) for n in nets)
    assert total == 2**24 - 2 * 2**16


@pytest.mark.parametrize(
    ("change", "counted"),
    [
        ({}, True),
        ({"status": {"phase": "Pending"}}, False),  # no address yet
        ({"status": {"phase": "Succeeded", "podIP": "10.244.1.9"}}, False),
        ({"status": {"phase": "Failed", "podIP": "10.244.1.9"}}, False),
        ({"spec": {"hostNetwork": True, "nodeName": "node-1"}}, False),
    ],
)
def test_pods_without_a_usable_address_are_left_out(change: dict[str, Any], counted: bool) -> None:
    assert (pod_info({**pod("x", "a"), **change}) is not None) is counted


def test_named_ports_and_labels_of_a_pod() -> None:
    info = pod_info(pod("x", "a", labels={"app": "web"}))
    assert info is not None
    assert info.label_map == {"app": "web"}
    assert info.resolve("serve-81-udp", Protocol.UDP) == 81
    assert info.resolve("serve-81-udp", Protocol.TCP) is None


def test_a_namespace_is_selectable_by_its_name() -> None:
    info = namespace_info({"metadata": {"name": "prod", "labels": {"team": "a"}}})
    assert dict(info.labels) == {"team": "a", "kubernetes.io/metadata.name": "prod"}


@pytest.mark.parametrize(
    "ingress",
    [
        [{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}],
        [{"from": [{"podSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}]}],
        [{"ports": [{"port": 80, "endPort": "ninety"}]}],
    ],
)
def test_a_policy_the_compiler_cannot_read_closes_its_namespace(ingress: Any) -> None:
    info = policy_info(policy("bad", podSelector={"matchLabels": {"pod": "a"}}, ingress=ingress))
    assert info.pod_selector.empty
    assert info.ingress == ()
    assert info.error
