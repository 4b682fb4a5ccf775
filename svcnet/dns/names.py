"""Parse a query name into its shape in the cluster zone.

Pure. Mirrors CoreDNS plugin/kubernetes parse.go: the labels below the zone are read from the
right — `svc|pod`, then the namespace, then the service (or pod), then either one endpoint
label or two labels `_port._proto` (the underscore is optional, as in CoreDNS). More labels
than that is an invalid request, which CoreDNS answers with NXDOMAIN. Reverse names under
in-addr.arpa and ip6.arpa carry the address they ask for.

Names are compared case-insensitively: the parser lowercases labels (RFC 4343: ASCII only).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import Enum

REVERSE_ZONES: tuple[tuple[str, ...], ...] = (("in-addr", "arpa"), ("ip6", "arpa"))


class Kind(Enum):
    OUTSIDE = "outside"  # not in any zone we serve: forward
    APEX = "apex"  # <zone>
    SVC_APEX = "svc-apex"  # svc.<zone>
    POD_APEX = "pod-apex"  # pod.<zone>
    NAMESPACE = "namespace"  # <ns>.svc.<zone>
    POD_NAMESPACE = "pod-namespace"  # <ns>.pod.<zone>
    SERVICE = "service"  # <svc>.<ns>.svc.<zone>, [<endpoint>.|_<port>._<proto>.]
    POD = "pod"  # <a-b-c-d>.<ns>.pod.<zone> (any labels further left are ignored, as CoreDNS)
    DNS_VERSION = "dns-version"  # dns-version.<zone>
    NS_DNS = "ns-dns"  # ns.dns.<zone>: the name server's own name
    INVALID = "invalid"  # in the zone, but no shape: NXDOMAIN
    REVERSE = "reverse"  # a full address under in-addr.arpa / ip6.arpa
    REVERSE_APEX = "reverse-apex"  # in-addr.arpa / ip6.arpa itself
    REVERSE_OTHER = "reverse-other"  # a partial or malformed reverse name


@dataclass(frozen=True, slots=True)
class QueryName:
    """The shape of one query name; fields that a shape does not have are empty strings."""

    kind: Kind
    zone: str = ""  # the zone matched, lowercase, with trailing dot
    namespace: str = ""
    service: str = ""  # the service name, or the pod label for Kind.POD
    endpoint: str = ""  # hostname or dashed IP of one endpoint
    port: str = ""  # the named port, without underscore; "" matches every port
    protocol: str = ""  # "" matches every protocol
    ip: str = ""  # Kind.REVERSE: the address asked for


def split_name(qname: str) -> tuple[str, ...]:
    """Lowercased labels of a dotted name; the root is the empty tuple."""
    name = qname.rstrip(".")
    if not name:
        return ()
    return tuple(label.lower() for label in name.split("."))


def zone_labels(zone: str) -> tuple[str, ...]:
    return split_name(zone)


def _strip_underscore(label: str) -> str:
    return label[1:] if label.startswith("_") else label


def _reverse_address(labels: tuple[str, ...], v6: bool) -> str:
    """The address a full reverse name asks for, or "" when the name is partial or malformed."""
    try:
        if not v6:
            if len(labels) != 4:
                return ""
            octets = [int(x) for x in reversed(labels) if x.isdigit() and len(x) <= 3]
            if len(octets) != 4 or any(o > 255 for o in octets):
                return ""
            return str(ipaddress.IPv4Address(".".join(str(o) for o in octets)))
        if len(labels) != 32 or any(len(x) != 1 for x in labels):
            return ""
        nibbles = "".join(reversed(labels))
        return str(ipaddress.IPv6Address(int(nibbles, 16)))
    except ValueError:
        return ""


def parse_labels(labels: tuple[str, ...], zone: tuple[str, ...]) -> QueryName:
    """Shape of a name given as lowercased labels, for the cluster zone `zone` (labels)."""
    nz = len(zone)
    if len(labels) >= nz and labels[len(labels) - nz :] == zone:
        zone_text = ".".join(zone) + "."
        return _parse_cluster(labels[: len(labels) - nz], zone_text)
    for rz in REVERSE_ZONES:
        if len(labels) >= 2 and labels[-2:] == rz:
            base = labels[:-2]
            ip = _reverse_address(base, v6=rz[0] == "ip6")
            zone_text = ".".join(rz) + "."
            if not base:
                return QueryName(Kind.REVERSE_APEX, zone=zone_text)
            if ip:
                return QueryName(Kind.REVERSE, zone=zone_text, ip=ip)
            return QueryName(Kind.REVERSE_OTHER, zone=zone_text)
    return QueryName(Kind.OUTSIDE)


def parse_name(qname: str, zone: str = "cluster.local.") -> QueryName:
    """Shape of a dotted query name (any case, trailing dot optional)."""
    return parse_labels(split_name(qname), zone_labels(zone))


def _parse_cluster(base: tuple[str, ...], zone: str) -> QueryName:
    if not base:
        return QueryName(Kind.APEX, zone=zone)
    if base == ("dns-version",):
        return QueryName(Kind.DNS_VERSION, zone=zone)
    if base == ("ns", "dns"):
        return QueryName(Kind.NS_DNS, zone=zone)
    last = len(base) - 1
    pod_or_svc = base[last]
    if pod_or_svc not in ("svc", "pod"):
        return QueryName(Kind.INVALID, zone=zone)
    is_pod = pod_or_svc == "pod"
    if last == 0:
        return QueryName(Kind.POD_APEX if is_pod else Kind.SVC_APEX, zone=zone)
    namespace = base[last - 1]
    if last == 1:
        return QueryName(
            Kind.POD_NAMESPACE if is_pod else Kind.NAMESPACE, zone=zone, namespace=namespace
        )
    service = base[last - 2]
    left = base[: last - 2]
    if is_pod:
        # CoreDNS findPods reads only the pod label: extra labels on the left are ignored.
        if len(left) > 2:
            return QueryName(Kind.INVALID, zone=zone)
        return QueryName(Kind.POD, zone=zone, namespace=namespace, service=service)
    if not left:
        return QueryName(Kind.SERVICE, zone=zone, namespace=namespace, service=service)
    if len(left) == 1:
        return QueryName(
            Kind.SERVICE, zone=zone, namespace=namespace, service=service, endpoint=left[0]
        )
    if len(left) == 2 and left[0] and left[1]:
        return QueryName(
            Kind.SERVICE,
            zone=zone,
            namespace=namespace,
            service=service,
            port=_strip_underscore(left[0]),
            protocol=_strip_underscore(left[1]),
        )
    return QueryName(Kind.INVALID, zone=zone)


def reverse_name(ip: str) -> str:
    """The PTR owner name of an address, lowercase with trailing dot."""
    return ipaddress.ip_address(ip).reverse_pointer + "."


def dashed_ip(ip: str) -> str:
    """CoreDNS endpointHostname for an address without hostname: dots/colons become dashes."""
    if "." in ip:
        return ip.replace(".", "-")
    dashed = ip.replace(":", "-")
    return dashed + "0" if dashed.endswith("-") else dashed  # a label cannot end with "-"


def pod_label_ip(label: str) -> str:
    """CoreDNS findPods: `a-b-c-d` is IPv4; otherwise dashes are colons (IPv6). "" if not an IP."""
    if label.count("-") == 3 and "--" not in label:
        text = label.replace("-", ".")
    else:
        text = label.replace("-", ":")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ""
