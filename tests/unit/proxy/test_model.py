"""API objects converted at the door: what each Service field means to the proxy."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.proxy.model import (
    DEFAULT_AFFINITY_TIMEOUT,
    Endpoint,
    Protocol,
    service_ports,
    slice_info,
    usable_endpoints,
)

from .builders import endpoint, endpoint_slice, service

NP = [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]


@pytest.mark.parametrize(
    ("svc", "field", "expected"),
    [
        (service(), "protocol", Protocol.TCP),
        (service(ports=[{"port": 53, "protocol": "UDP"}]), "protocol", Protocol.UDP),
        (service(ports=[{"port": 53}]), "port_name", ""),
        (service(ports=NP), "node_port", 0),  # a ClusterIP Service ignores a stray nodePort
        (service(type="NodePort", ports=NP), "node_port", 30080),
        (service(sessionAffinity="ClientIP"), "affinity_timeout", DEFAULT_AFFINITY_TIMEOUT),
        (
            service(
                sessionAffinity="ClientIP",
                sessionAffinityConfig={"clientIP": {"timeoutSeconds": 5}},
            ),
            "affinity_timeout",
            5,
        ),
        (service(), "affinity_timeout", None),
        (service(externalTrafficPolicy="Local"), "external_policy_local", False),  # not external
        (
            service(type="NodePort", ports=NP, externalTrafficPolicy="Local"),
            "external_policy_local",
            True,
        ),
        (
            service(
                type="LoadBalancer",
                ports=NP,
                externalTrafficPolicy="Local",
                healthCheckNodePort=32000,
            ),
            "health_check_node_port",
            32000,
        ),
        (service(internalTrafficPolicy="Local"), "internal_policy_local", True),
        (service(externalIPs=["198.51.100.9"]), "external_ips", ("198.51.100.9",)),
        (
            service(
                type="LoadBalancer",
                ports=NP,
                status={"loadBalancer": {"ingress": [{"ip": "172.18.255.3"}, {"hostname": "x"}]}},
            ),
            "load_balancer_ips",
            ("172.18.255.3",),
        ),
        (
            service(status={"loadBalancer": {"ingress": [{"ip": "172.18.255.3"}]}}),
            "load_balancer_ips",
            (),
        ),
        (
            service(
                type="LoadBalancer",
                ports=NP,
                # host bits cleared, IPv6 and garbage left out, duplicates merged
                loadBalancerSourceRanges=["10.1.2.3/8", "2001:db8::/32", "nope", "10.0.0.0/8"],
                status={"loadBalancer": {"ingress": [{"ip": "172.18.255.3"}]}},
            ),
            "source_ranges",
            ("10.0.0.0/8",),
        ),
        (  # without a LoadBalancer IP the ranges restrict nothing
            service(type="LoadBalancer", ports=NP, loadBalancerSourceRanges=["10.0.0.0/8"]),
            "source_ranges",
            (),
        ),
    ],
)
def test_service_port_fields(svc: dict[str, Any], field: str, expected: object) -> None:
    (sp,) = service_ports(svc)
    assert getattr(sp, field) == expected


@pytest.mark.parametrize(
    "svc",
    [
        service(cluster_ip="None"),
        service(cluster_ip="", type="ExternalName", externalName="x.example"),
    ],
    ids=["headless", "external-name"],
)
def test_services_without_rules_convert_to_nothing(svc: dict[str, Any]) -> None:
    assert service_ports(svc) == ()


def test_endpoint_conditions_default_like_the_api() -> None:
    s = endpoint_slice(endpoints=[{"addresses": ["10.244.1.5"], "conditions": {}}])
    info = slice_info(s)
    assert info is not None
    (ep,) = info.endpoints[("http", Protocol.TCP)]
    assert (ep.ready, ep.serving, ep.terminating) == (True, True, False)


@pytest.mark.parametrize(
    ("eps", "used"),
    [
        ([Endpoint("a", 1), Endpoint("b", 1, ready=False, serving=True, terminating=True)], ["a"]),
        ([Endpoint("b", 1, ready=False, serving=True, terminating=True)], ["b"]),
        ([Endpoint("c", 1, ready=False, serving=False, terminating=True)], []),
        ([Endpoint("d", 1, ready=False, serving=False)], []),
    ],
    ids=["ready-wins", "terminating-serving-fallback", "terminating-not-serving", "not-ready"],
)
def test_usable_endpoints(eps: list[Endpoint], used: list[str]) -> None:
    assert [e.ip for e in usable_endpoints(eps)] == used


def test_slice_endpoint_node_name_is_kept() -> None:
    info = slice_info(endpoint_slice(endpoints=[endpoint("10.244.2.5", "node-2")]))
    assert info is not None
    assert info.endpoints[("http", Protocol.TCP)][0].node_name == "node-2"
