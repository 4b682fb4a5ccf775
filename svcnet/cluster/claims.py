"""What a cluster claims on the machine, and what already holds it.

A cluster claims address ranges (its underlay, pods, Services, the LoadBalancer pool) and
names (its bridge, the machine's ends of its veths, its node namespaces, its guard table).
Two owners of one range break each other: a route of one shadows or replaces the other's,
and traffic meant for one cluster reaches the other. So a cluster refuses to start when any
range it claims overlaps a route or an address already on the machine, as Docker refuses a
network whose subnet overlaps a route of the host (libnetwork's ``CheckRouteOverlaps``: every
route of the main table but the default one), and when any name it would make already exists.

:func:`claim_conflicts` is pure over a :class:`Machine` read once by :func:`read_machine`; each
:class:`Conflict` prints as a Kubernetes field error (``field: Invalid value: "v": detail``)
and :func:`describe` groups them as kubectl prints an invalid object.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from svcnet.dataplane.netns import Link, NetnsOps, Route

NAME_FLAG = "--prefix"  # the names derive from the prefix, which defaults to --name
_SHOWN = 3  # what a message lists of the things a range overlaps; the rest are counted


@dataclass(frozen=True)
class Claim:
    """What one cluster would hold on the machine."""

    prefix: str
    ranges: tuple[tuple[str, str], ...]  # (the flag that sets it, CIDR), each routed by it
    links: tuple[str, ...]
    netns: tuple[str, ...]  # node namespaces; "<name>_..." are their pods'
    nft_tables: tuple[str, ...]  # "<family> <name>"


@dataclass(frozen=True)
class Machine:
    """What the machine's own network namespace holds now."""

    routes: tuple[Route, ...] = ()  # the main table
    links: tuple[Link, ...] = ()  # with their addresses
    netns: tuple[str, ...] = ()
    nft_tables: tuple[str, ...] = ()  # "<family> <name>"


@dataclass(frozen=True)
class Conflict:
    field: str  # the flag that sets what conflicts
    value: str | int
    detail: str

    def __str__(self) -> str:
        # As field.Invalid prints: strings quoted, numbers bare.
        value = f'"{self.value}"' if isinstance(self.value, str) else str(self.value)
        return f"{self.field}: Invalid value: {value}: {self.detail}"


def read_machine(ops: NetnsOps) -> Machine:
    res = ops.run(None, ["nft", "list", "tables"])
    tables = (
        tuple(
            line.removeprefix("table ").strip()
            for line in res.stdout.decode(errors="replace").splitlines()
            if line.startswith("table ")
        )
        if res.returncode == 0
        else ()
    )
    return Machine(
        routes=tuple(ops.list_routes(None)),
        links=tuple(ops.list_links(None)),
        netns=tuple(ops.list_netns()),
        nft_tables=tables,
    )


def _listed(things: Sequence[str]) -> str:
    shown = ", ".join(f'"{t}"' for t in things[:_SHOWN])
    more = len(things) - _SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def _own_overlaps(ranges: list[tuple[str, ipaddress.IPv4Network]]) -> list[Conflict]:
    out = []
    for i, (flag, net) in enumerate(ranges):
        for other_flag, other in ranges[:i]:
            if net.overlaps(other):
                out.append(Conflict(flag, str(net), f"overlaps {other_flag} {other}"))
    return out


def _overlapping(net: ipaddress.IPv4Network, machine: Machine) -> list[str]:
    """The routes and addresses of the machine that ``net`` overlaps, as `ip` shows them."""
    found: list[str] = []
    routed: set[tuple[str, str | None]] = set()
    for route in machine.routes:
        dst = ipaddress.ip_network(route.dst, strict=False)
        if dst.version != 4 or dst.prefixlen == 0 or not dst.overlaps(net):
            continue
        found.append(" ".join(route.argv()))
        routed.add((str(dst), route.dev))
    for link in machine.links:
        for cidr in link.addresses:
            iface = ipaddress.ip_interface(cidr)
            # An address of a link that is up shows as its connected route already.
            if (
                iface.version == 4
                and iface.network.overlaps(net)
                and (str(iface.network), link.name) not in routed
            ):
                found.append(f"{cidr} dev {link.name}")
    return found


def _names_in_use(claim: Claim, machine: Machine) -> list[str]:
    links = {link.name for link in machine.links}
    netns = set(machine.netns)
    found = [f"link {name}" for name in claim.links if name in links]
    found += [f"netns {name}" for name in claim.netns if name in netns]
    # Pods' namespaces left by an earlier cluster of this name would be taken for this one's.
    found += sorted(
        f"netns {name}"
        for name in netns
        if any(name.startswith(f"{node}_") for node in claim.netns)
    )
    found += [f"nft table {t}" for t in claim.nft_tables if t in machine.nft_tables]
    return found


def invalid_ranges(nodes: int, ranges: Sequence[tuple[str, str]]) -> list[Conflict]:
    """Ranges that are no IPv4 network, or too small for ``nodes`` (each node takes a /24 of
    the pod range and address 10+N of the underlay; kube-dns takes the Service range's 10th),
    keyed by flag as in :class:`Claim`."""
    room = {
        "--pod-cidr": (24, nodes + 1, "/24s", "a /24 per node"),
        "--underlay-cidr": (32, nodes + 12, "addresses", "the machine's and 10+N per node"),
        "--service-cidr": (32, 11, "addresses", "kube-dns takes the 10th"),
    }
    out = []
    for flag, cidr in ranges:
        try:
            net = ipaddress.IPv4Network(cidr)
        except ValueError as e:
            out.append(Conflict(flag, cidr, f"must be an IPv4 network such as 10.0.0.0/16: {e}"))
            continue
        if flag in room:
            bits, need, unit, why = room[flag]
            have = 2 ** (bits - net.prefixlen) if net.prefixlen <= bits else 0
            if have < need:
                out.append(Conflict(flag, cidr, f"holds {have} {unit}, {need} needed ({why})"))
    return out


def claim_conflicts(claim: Claim, machine: Machine) -> list[Conflict]:
    """Why ``claim`` cannot be held on ``machine`` (empty: it can)."""
    ranges = [(flag, ipaddress.IPv4Network(cidr)) for flag, cidr in claim.ranges]
    out = _own_overlaps(ranges)
    for flag, net in ranges:
        if found := _overlapping(net, machine):
            out.append(
                Conflict(
                    flag,
                    str(net),
                    f"overlaps what this machine already routes: {_listed(found)}; "
                    "pick a range that nothing in `ip route` or `ip addr` overlaps",
                )
            )
    if found := _names_in_use(claim, machine):
        out.append(
            Conflict(
                NAME_FLAG,
                claim.prefix,
                f"already on this machine: {_listed(found)} (a cluster of that name is up: "
                "run `svcnet down` for it, or pick another --name)",
            )
        )
    return out


def describe(cluster: str, conflicts: Sequence[object]) -> str:
    """As kubectl prints an invalid object: one cause inline, several as a list."""
    head = f'The cluster "{cluster}" is invalid'
    if len(conflicts) == 1:
        return f"{head}: {conflicts[0]}"
    return f"{head}: \n" + "\n".join(f"* {c}" for c in conflicts)


__all__ = [
    "Claim",
    "Conflict",
    "Machine",
    "claim_conflicts",
    "describe",
    "invalid_ranges",
    "read_machine",
]
