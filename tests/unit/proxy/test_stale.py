"""Conntrack entries made stale by a change, for UDP and SCTP only."""

from __future__ import annotations

from typing import Any

from svcnet.dataplane.conntrack import FlowFilter
from svcnet.proxy.changetracker import ChangeTracker
from svcnet.proxy.stale import stale_flows

from .builders import NODE_IP, endpoint, endpoint_slice, service

UDP = [{"name": "dns", "port": 53, "protocol": "UDP"}]
UDP_EP = [{"name": "dns", "port": 5353, "protocol": "UDP"}]


def flows(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[FlowFilter]:
    t = ChangeTracker()
    for o in before:
        (t.upsert_service if o["kind"] == "Service" else t.upsert_slice)(o)
    t.drain()
    for o in after:
        (t.upsert_service if o["kind"] == "Service" else t.upsert_slice)(o)
    return stale_flows(t.drain(), (NODE_IP,))


def test_removed_udp_endpoint_flushes_its_entries() -> None:
    out = flows(
        [
            service(ports=UDP),
            endpoint_slice(
                endpoints=[endpoint("10.244.1.5"), endpoint("10.244.1.6")], ports=UDP_EP
            ),
        ],
        [endpoint_slice(endpoints=[endpoint("10.244.1.6")], ports=UDP_EP)],
    )
    assert out == [FlowFilter("udp", "10.96.0.5", 53, "10.244.1.5")]


def test_udp_service_getting_its_first_endpoint_flushes_the_service_ip() -> None:
    out = flows(
        [service(ports=UDP)], [endpoint_slice(endpoints=[endpoint("10.244.1.5")], ports=UDP_EP)]
    )
    assert out == [FlowFilter("udp", "10.96.0.5", 53)]


def test_nodeport_entries_are_flushed_on_the_node_addresses() -> None:
    np = [{"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}]
    out = flows(
        [
            service(type="NodePort", ports=np),
            endpoint_slice(endpoints=[endpoint("10.244.1.5")], ports=UDP_EP),
        ],
        [endpoint_slice(endpoints=[], ports=UDP_EP)],
    )
    assert FlowFilter("udp", NODE_IP, 30053, "10.244.1.5") in out


def test_tcp_changes_flush_nothing() -> None:
    out = flows(
        [service(), endpoint_slice(endpoints=[endpoint("10.244.1.5")])],
        [endpoint_slice(endpoints=[])],
    )
    assert out == []
