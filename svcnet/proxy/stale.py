"""Which conntrack entries a sync makes stale (pure), as kube-proxy's ``deleteUDPEndpointConnections``.

- an endpoint of a UDP/SCTP port removed: entries to each address of the port DNATed to it;
- a UDP/SCTP port that had no usable endpoint and now has some: every entry to its addresses,
  which may hold the rejection (or nothing) cached from the time it had none.
"""

from __future__ import annotations

from collections.abc import Mapping

from svcnet.dataplane.conntrack import FlowFilter
from svcnet.proxy.changetracker import Change, Snapshot
from svcnet.proxy.model import Protocol, ServiceKey, ServicePort, usable_endpoints

_CONNECTIONLESS = (Protocol.UDP, Protocol.SCTP)


def _addresses(sp: ServicePort, node_ips: tuple[str, ...]) -> list[tuple[str, int]]:
    out = [(sp.cluster_ip, sp.port)] + [(a, sp.port) for a in sp.external_addresses]
    if sp.node_port:
        out += [(ip, sp.node_port) for ip in node_ips]
    return out


def _usable(snap: Snapshot | None) -> dict[str, tuple[ServicePort, set[str]]]:
    if snap is None:
        return {}
    return {
        sp.name: (sp, {e.ip for e in usable_endpoints(eps)})
        for sp, eps in snap.port_endpoints()
        if sp.protocol in _CONNECTIONLESS
    }


AffinityEntry = tuple[str, str, str]  # address . proto . port, as in the affinity map's key


def removed_affinity_endpoints(
    changes: Mapping[ServiceKey, Change], node_ips: tuple[str, ...] = ()
) -> dict[AffinityEntry, set[tuple[str, str]]]:
    """Per entry of a Service with session affinity: the endpoints (ip, port) it lost.

    Affinity entries pointing at them must go, or their clients would keep being sent to a
    gone pod until the entry times out (kube-proxy deletes the endpoint's affinity set).
    """
    out: dict[AffinityEntry, set[tuple[str, str]]] = {}
    for change in changes.values():
        if change.previous is None:
            continue
        now = {
            sp.name: {(e.ip, str(e.port)) for e in eps}
            for sp, eps in (change.current.port_endpoints() if change.current else ())
        }
        for sp, eps in change.previous.port_endpoints():
            if sp.affinity_timeout is None:
                continue
            gone = {(e.ip, str(e.port)) for e in eps} - now.get(sp.name, set())
            if gone:
                for addr, port in _addresses(sp, node_ips):
                    out.setdefault((addr, sp.proto, str(port)), set()).update(gone)
    return out


def stale_flows(
    changes: Mapping[ServiceKey, Change], node_ips: tuple[str, ...] = ()
) -> list[FlowFilter]:
    flows: set[FlowFilter] = set()
    for change in changes.values():
        before = _usable(change.previous)
        after = _usable(change.current)
        for name, (sp, old_ips) in before.items():
            new_ips = after.get(name, (sp, set()))[1]
            for ip in sorted(old_ips - new_ips):
                for addr, port in _addresses(sp, node_ips):
                    flows.add(FlowFilter(sp.proto, addr, port, ip))
        for name, (sp, new_ips) in after.items():
            old_ips = before.get(name, (sp, set()))[1]
            if new_ips and not old_ips:
                for addr, port in _addresses(sp, node_ips):
                    flows.add(FlowFilter(sp.proto, addr, port))
    return sorted(flows)
