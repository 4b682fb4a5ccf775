"""A cluster refuses ranges and names the machine already holds (pure, over a Machine value).

Ranges: svcnet's defaults (underlay 172.18.0.0/16, pods 10.244.0.0/16, services 10.96.0.0/16,
pool 172.18.255.0/24) against a machine on 192.0.2.0/24 (TEST-NET-1) with, in some cases, a
running default cluster's routes; "other" ranges are /16s of 10.160.0.0/11 and 172.29.1.0/24.
"""

from __future__ import annotations

import pytest

from svcnet.cluster.claims import Claim, Conflict, Machine, claim_conflicts, describe
from svcnet.cluster.underlay import UnderlayConfig, claim_of, node_net
from svcnet.dataplane.netns import Link, Route, RouteType

MACHINE = Machine(
    routes=(
        Route("0.0.0.0/0", via="192.0.2.1", dev="eth0"),
        Route("192.0.2.0/24", dev="eth0"),
        Route("fd00::/64", dev="eth0"),
    ),
    links=(
        Link("lo", "loopback", True, addresses=("127.0.0.1/8",)),
        Link("eth0", "", True, addresses=("192.0.2.2/24",)),
    ),
)
# What a running default cluster (prefix "svcnet", two nodes) adds to it.
LIVE = Machine(
    routes=(
        *MACHINE.routes,
        Route("172.18.0.0/16", dev="svcnet0"),
        Route("10.244.0.0/16", type=RouteType.UNREACHABLE, metric=4_000_000),
        Route("10.96.0.0/16", type=RouteType.UNREACHABLE, metric=4_000_000),
        Route("10.244.1.0/24", via="172.18.0.11", dev="svcnet0"),
        Route("10.244.2.0/24", via="172.18.0.12", dev="svcnet0"),
        Route("10.96.0.0/16", via="172.18.0.11", dev="svcnet0", metric=100),
    ),
    links=(
        *MACHINE.links,
        Link("svcnet0", "bridge", True, addresses=("172.18.0.1/16",)),
        Link("svcnet-n1", "veth", True, master="svcnet0"),
        Link("svcnet-n2", "veth", True, master="svcnet0"),
    ),
    netns=("svcnet-node-1", "svcnet-node-2", "svcnet-node-1_default_web_uid"),
    nft_tables=("inet svcnet_underlay",),
)
OTHER = {
    "prefix": "other",
    "underlay_cidr": "172.29.1.0/24",
    "pod_cidr": "10.161.0.0/16",
    "service_cidr": "10.177.0.0/16",
    "lb_cidr": "172.29.1.240/28",
}


def claim(**config: str) -> Claim:
    cfg = UnderlayConfig(**config)
    return claim_of(cfg, [node_net(cfg, 1), node_net(cfg, 2)])


@pytest.mark.parametrize(
    ("machine", "config", "expected"),
    [
        # The default cluster on a machine that runs nothing of svcnet's.
        (MACHINE, {}, []),
        # A cluster of other ranges and names next to a running default cluster.
        (LIVE, OTHER, []),
        # The case that broke a running cluster: a Service range equal to its pod range.
        (
            LIVE,
            {**OTHER, "service_cidr": "10.244.0.0/16"},
            [
                (
                    "--service-cidr",
                    '"unreachable 10.244.0.0/16 metric 4000000", '
                    '"10.244.1.0/24 via 172.18.0.11 dev svcnet0", '
                    '"10.244.2.0/24 via 172.18.0.12 dev svcnet0"',
                )
            ],
        ),
        # A range inside one of the machine's routes, and one around a route.
        (LIVE, {**OTHER, "pod_cidr": "10.96.16.0/20"}, [("--pod-cidr", "10.96.0.0/16")]),
        (
            LIVE,
            {**OTHER, "pod_cidr": "10.0.0.0/8"},
            [("--service-cidr", "overlaps --pod-cidr"), ("--pod-cidr", "and 2 more")],
        ),
        # The machine's own LAN, and an address on a link that is down (no route shows it).
        (
            MACHINE,
            {"underlay_cidr": "192.0.2.0/25", "lb_cidr": "192.0.2.64/28"},
            [("--underlay-cidr", '"192.0.2.0/24 dev eth0"')],
        ),
        (
            Machine(links=(Link("dummy0", "", False, addresses=("10.161.9.1/24",)),)),
            OTHER,
            [("--pod-cidr", '"10.161.9.1/24 dev dummy0"')],
        ),
        # A pool outside the underlay is a range of its own.
        (LIVE, {**OTHER, "lb_cidr": "172.18.255.0/24"}, [("--lb-cidr", "172.18.0.0/16")]),
        # The same names as the running cluster, even with other ranges.
        (
            LIVE,
            {**OTHER, "prefix": "svcnet"},
            [
                (
                    "--prefix",
                    '"link svcnet0", "link svcnet-n1", "link svcnet-n2" and 4 more',
                )
            ],
        ),
    ],
)
def test_a_claim_conflicts_with_what_the_machine_holds(
    machine: Machine, config: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    got = claim_conflicts(claim(**config), machine)
    assert [c.field for c in got] == [field for field, _ in expected]
    for conflict, (_, fragment) in zip(got, expected, strict=True):
        assert fragment in conflict.detail


def test_every_name_in_use_is_named() -> None:
    (conflict,) = claim_conflicts(claim(**{**OTHER, "prefix": "svcnet"}), LIVE)
    assert conflict.value == "svcnet"
    listed = conflict.detail
    for thing in ("link svcnet0", "link svcnet-n1", "link svcnet-n2"):
        assert f'"{thing}"' in listed
    assert "and 4 more" in listed  # two node namespaces, one pod's, the guard table
    cfg = UnderlayConfig(**{**OTHER, "prefix": "svcnet"})
    one_node = claim_of(cfg, [node_net(cfg, 2)])
    (conflict,) = claim_conflicts(one_node, LIVE)
    assert conflict.detail.startswith(
        'already on this machine: "link svcnet0", "link svcnet-n2", "netns svcnet-node-2" and '
        "1 more"
    )


def test_pod_namespaces_left_by_an_earlier_cluster_of_the_name_conflict() -> None:
    machine = Machine(netns=("svcnet-node-1_default_web_uid", "svcnet-node-10"))
    (conflict,) = claim_conflicts(claim(), machine)
    assert conflict.detail.startswith('already on this machine: "netns svcnet-node-1_default_web')
    assert "svcnet-node-10" not in conflict.detail  # another node's name, not a pod of node-1


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({**OTHER, "service_cidr": "10.161.128.0/17"}, ["--service-cidr: .* overlaps --pod-cidr"]),
        (
            {**OTHER, "underlay_cidr": "10.161.0.0/24", "lb_cidr": "10.161.0.240/28"},
            ["--pod-cidr: .* overlaps --underlay-cidr"],
        ),
    ],
)
def test_a_clusters_own_ranges_must_not_overlap(
    config: dict[str, str], expected: list[str]
) -> None:
    import re

    got = [str(c) for c in claim_conflicts(claim(**config), MACHINE)]
    assert len(got) == len(expected)
    for line, pattern in zip(got, expected, strict=True):
        assert re.match(pattern, line), line


def test_conflicts_print_as_kubectl_prints_an_invalid_object() -> None:
    one = Conflict("--service-cidr", "10.244.0.0/16", "overlaps x")
    port = Conflict("--port", 6443, "127.0.0.1:6443 is in use: pass --port")
    assert describe("b", [one]) == (
        'The cluster "b" is invalid: --service-cidr: Invalid value: "10.244.0.0/16": overlaps x'
    )
    assert describe("b", [port, one]) == (
        'The cluster "b" is invalid: \n'
        "* --port: Invalid value: 6443: 127.0.0.1:6443 is in use: pass --port\n"
        '* --service-cidr: Invalid value: "10.244.0.0/16": overlaps x'
    )


@pytest.mark.parametrize(
    ("nodes", "flag", "cidr", "detail"),
    [
        (2, "--pod-cidr", "10.244.0.0/16", None),
        (2, "--pod-cidr", "10.244.0.0/23", "holds 2 /24s, 3 needed (a /24 per node)"),
        (3, "--pod-cidr", "10.244.0.0/22", None),
        (2, "--pod-cidr", "10.244.0.0/25", "holds 0 /24s, 3 needed"),
        (2, "--pod-cidr", "garbage", "must be an IPv4 network such as 10.0.0.0/16"),
        (2, "--service-cidr", "10.96.0.1/16", "has host bits set"),
        (2, "--service-cidr", "10.96.0.0/29", "holds 8 addresses, 11 needed (kube-dns"),
        (2, "--service-cidr", "10.96.0.0/28", None),
        (4, "--underlay-cidr", "172.18.0.0/28", None),
        (5, "--underlay-cidr", "172.18.0.0/28", "holds 16 addresses, 17 needed"),
        (2, "--lb-cidr", "fd00::/64", "must be an IPv4 network"),
    ],
)
def test_ranges_must_be_ipv4_networks_with_room_for_the_nodes(
    nodes: int, flag: str, cidr: str, detail: str | None
) -> None:
    from svcnet.cluster.claims import invalid_ranges

    got = invalid_ranges(nodes, [(flag, cidr)])
    if detail is None:
        assert got == []
    else:
        (conflict,) = got
        assert (conflict.field, conflict.value) == (flag, cidr)
        assert detail in conflict.detail
