"""Query names → shapes, as CoreDNS plugin/kubernetes/parse.go reads them."""

from __future__ import annotations

import pytest

from svcnet.dns.names import Kind, QueryName, dashed_ip, parse_name, pod_label_ip, reverse_name

Z = "cluster.local."

CASES: list[tuple[str, QueryName]] = [
    ("cluster.local.", QueryName(Kind.APEX, zone=Z)),
    ("svc.cluster.local.", QueryName(Kind.SVC_APEX, zone=Z)),
    ("pod.cluster.local.", QueryName(Kind.POD_APEX, zone=Z)),
    ("default.svc.cluster.local.", QueryName(Kind.NAMESPACE, zone=Z, namespace="default")),
    ("default.pod.cluster.local.", QueryName(Kind.POD_NAMESPACE, zone=Z, namespace="default")),
    (
        "web.default.svc.cluster.local.",
        QueryName(Kind.SERVICE, zone=Z, namespace="default", service="web"),
    ),
    (
        "WEB.Default.SVC.cluster.LOCAL",
        QueryName(Kind.SERVICE, zone=Z, namespace="default", service="web"),
    ),
    (
        "web-0.web.default.svc.cluster.local.",
        QueryName(Kind.SERVICE, zone=Z, namespace="default", service="web", endpoint="web-0"),
    ),
    (
        "_http._tcp.web.default.svc.cluster.local.",
        QueryName(
            Kind.SERVICE, zone=Z, namespace="default", service="web", port="http", protocol="tcp"
        ),
    ),
    (
        "http.tcp.web.default.svc.cluster.local.",
        QueryName(
            Kind.SERVICE, zone=Z, namespace="default", service="web", port="http", protocol="tcp"
        ),
    ),
    ("a.b.c.web.default.svc.cluster.local.", QueryName(Kind.INVALID, zone=Z)),
    (
        "1-2-3-4.default.pod.cluster.local.",
        QueryName(Kind.POD, zone=Z, namespace="default", service="1-2-3-4"),
    ),
    (
        "x.1-2-3-4.default.pod.cluster.local.",
        QueryName(Kind.POD, zone=Z, namespace="default", service="1-2-3-4"),
    ),
    ("dns-version.cluster.local.", QueryName(Kind.DNS_VERSION, zone=Z)),
    ("ns.dns.cluster.local.", QueryName(Kind.NS_DNS, zone=Z)),
    ("foo.cluster.local.", QueryName(Kind.INVALID, zone=Z)),
    ("web.default.foo.cluster.local.", QueryName(Kind.INVALID, zone=Z)),
    ("example.com.", QueryName(Kind.OUTSIDE)),
    ("local.", QueryName(Kind.OUTSIDE)),
    ("xcluster.local.", QueryName(Kind.OUTSIDE)),
    (".", QueryName(Kind.OUTSIDE)),
    ("20.0.96.10.in-addr.arpa.", QueryName(Kind.REVERSE, zone="in-addr.arpa.", ip="10.96.0.20")),
    ("0.96.10.in-addr.arpa.", QueryName(Kind.REVERSE_OTHER, zone="in-addr.arpa.")),
    ("300.0.96.10.in-addr.arpa.", QueryName(Kind.REVERSE_OTHER, zone="in-addr.arpa.")),
    ("in-addr.arpa.", QueryName(Kind.REVERSE_APEX, zone="in-addr.arpa.")),
    (
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
        QueryName(Kind.REVERSE, zone="ip6.arpa.", ip="fd00::1"),
    ),
    ("d.f.ip6.arpa.", QueryName(Kind.REVERSE_OTHER, zone="ip6.arpa.")),
]


@pytest.mark.parametrize(("qname", "shape"), CASES, ids=[c[0] for c in CASES])
def test_shape(qname: str, shape: QueryName) -> None:
    assert parse_name(qname, Z) == shape


def test_other_zone() -> None:
    assert parse_name("web.default.svc.k8s.example.", "k8s.example") == QueryName(
        Kind.SERVICE, zone="k8s.example.", namespace="default", service="web"
    )


POD_LABELS = [
    ("10-244-1-5", "10.244.1.5"),
    ("fd00--1", "fd00::1"),
    ("2001-db8-0-0-0-0-0-1", "2001:db8::1"),
    ("1-2-3", ""),
    ("1-2-3-256", ""),
    ("web", ""),
]


@pytest.mark.parametrize(("label", "ip"), POD_LABELS)
def test_pod_label_ip(label: str, ip: str) -> None:
    assert pod_label_ip(label) == ip


def test_dashed_ip_and_reverse_name() -> None:
    assert dashed_ip("10.244.1.5") == "10-244-1-5"
    assert dashed_ip("fd00::1") == "fd00--1"
    # endpointHostname: a trailing dash would end a label, so CoreDNS appends a 0
    assert dashed_ip("fd00:244::") == "fd00-244--0"
    assert reverse_name("10.96.0.20") == "20.0.96.10.in-addr.arpa."
