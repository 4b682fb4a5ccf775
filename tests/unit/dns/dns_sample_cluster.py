"""A sample cluster's objects as DNS projections, shared by the DNS tests.

Fixture addresses: services 10.96.0.0/16 (fd00:96::/64 for the dual-stack one), pods
10.244.0.0/16. Namespaces: default, other, kube-system, and `lonely` with no services.
"""

from __future__ import annotations

from svcnet.dns.projection import EndpointInfo, EndpointSliceInfo, PortInfo, ServiceInfo
from svcnet.dns.records import RecordTable

SERIAL = 1_700_000_000
Z = "cluster.local."

HTTP = PortInfo("http", "TCP", 80)


def build_table() -> RecordTable:
    t = RecordTable("cluster.local", clock=lambda: SERIAL)
    for ns in ("default", "other", "kube-system", "lonely"):
        t.set_namespace(ns)
    t.set_service(
        ServiceInfo(
            "default", "web", cluster_ips=("10.96.0.20",), ports=(HTTP, PortInfo("", "UDP", 9000))
        )
    )
    t.set_endpoint_slice(
        EndpointSliceInfo(
            "default", "web-abc", "web", endpoints=(EndpointInfo(("10.244.1.10",)),), ports=(HTTP,)
        )
    )
    t.set_service(
        ServiceInfo("default", "dual", cluster_ips=("10.96.0.30", "fd00:96::30"), ports=(HTTP,))
    )
    t.set_service(
        ServiceInfo("default", "hl", headless=True, ports=(PortInfo("http", "TCP", 8080),))
    )
    t.set_endpoint_slice(
        EndpointSliceInfo(
            "default",
            "hl-1",
            "hl",
            endpoints=(
                EndpointInfo(("10.244.1.5",), hostname="web-0"),
                EndpointInfo(("10.244.2.6",), hostname="web-1"),
                EndpointInfo(("10.244.3.7",)),
                EndpointInfo(("10.244.3.8",), hostname="web-3", ready=False),
            ),
            ports=(PortInfo("http", "TCP", 8080),),
        )
    )
    t.set_service(ServiceInfo("default", "pnr", headless=True, publish_not_ready=True))
    t.set_endpoint_slice(
        EndpointSliceInfo(
            "default", "pnr-1", "pnr", endpoints=(EndpointInfo(("10.244.4.9",), ready=False),)
        )
    )
    t.set_service(ServiceInfo("default", "empty", headless=True, ports=(HTTP,)))
    t.set_service(ServiceInfo("default", "ext", type="ExternalName", external_name="example.com"))
    t.set_service(
        ServiceInfo(
            "default", "alias", type="ExternalName", external_name="web.default.svc.cluster.local"
        )
    )
    t.set_service(ServiceInfo("default", "ipext", type="ExternalName", external_name="192.0.2.1"))
    t.set_service(
        ServiceInfo(
            "other", "api", cluster_ips=("10.96.5.5",), ports=(PortInfo("https", "TCP", 443),)
        )
    )
    t.set_service(
        ServiceInfo(
            "kube-system",
            "kube-dns",
            cluster_ips=("10.96.0.10",),
            ports=(PortInfo("dns", "UDP", 53), PortInfo("dns-tcp", "TCP", 53)),
        )
    )
    t.set_service(ServiceInfo("default", "hl6", headless=True, ports=(HTTP,)))
    t.set_endpoint_slice(
        EndpointSliceInfo(
            "default",
            "hl6-1",
            "hl6",
            address_type="IPv6",
            endpoints=(
                EndpointInfo(("fd00:244::5",), hostname="a"),
                EndpointInfo(("fd00:244::6",)),
            ),
            ports=(HTTP,),
        )
    )
    t.set_synced()
    return t
