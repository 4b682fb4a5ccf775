"""Underlay planning and apply over the fake kernel.

Ranges: the defaults of DESIGN.md (underlay 172.18.0.0/16, pods 10.244.0.0/16, services
10.96.0.0/16); the fake never touches the machine.
"""

from __future__ import annotations

import pytest

from svcnet.cluster.underlay import (
    Underlay,
    UnderlayConfig,
    UnderlayError,
    node_net,
    plan_node_routes,
    render_guard,
)
from svcnet.dataplane.fake_netns import FakeNetns
from svcnet.dataplane.netns import Route, RouteType


@pytest.fixture
def underlay(tmp_path: object) -> Underlay:
    u = Underlay(FakeNetns(), UnderlayConfig(state_dir=str(tmp_path)))
    u.create(2)
    return u


@pytest.mark.parametrize(
    ("index", "ip", "netns", "veth", "pod_cidr"),
    [
        (1, "172.18.0.11", "svcnet-node-1", "svcnet-n1", "10.244.1.0/24"),
        (2, "172.18.0.12", "svcnet-node-2", "svcnet-n2", "10.244.2.0/24"),
        (12, "172.18.0.22", "svcnet-node-12", "svcnet-n12", "10.244.12.0/24"),
    ],
)
def test_node_names_and_addresses(
    index: int, ip: str, netns: str, veth: str, pod_cidr: str
) -> None:
    n = node_net(UnderlayConfig(), index)
    assert (n.ip, n.netns, n.veth_root, n.pod_cidr) == (ip, netns, veth, pod_cidr)


@pytest.mark.parametrize(
    ("ns", "dst", "expected"),
    [
        (None, "10.244.1.7", ("unicast", "172.18.0.11", "svcnet0")),
        (None, "10.244.2.7", ("unicast", "172.18.0.12", "svcnet0")),
        (None, "10.244.9.7", ("unreachable", None, None)),
        (None, "10.96.0.10", ("unicast", "172.18.0.11", "svcnet0")),
        ("svcnet-node-1", "10.244.2.7", ("unicast", "172.18.0.12", "eth0")),
        ("svcnet-node-1", "172.18.0.1", ("unicast", None, "eth0")),
        ("svcnet-node-1", "8.8.8.8", ("unreachable", None, None)),
        ("svcnet-node-2", "10.244.9.7", ("unreachable", None, None)),
    ],
)
def test_routes_make_one_sealed_flat_network(
    underlay: Underlay, ns: str | None, dst: str, expected: tuple[str, str | None, str | None]
) -> None:
    got = underlay.ops.route_get(ns, dst)
    assert (got.type.value, got.via, got.dev) == expected


def test_nodes_have_no_default_route(underlay: Underlay) -> None:
    for node in underlay.nodes.values():
        assert all(r.dst != "0.0.0.0/0" for r in underlay.ops.list_routes(node.netns))


def test_node_forwards_and_has_loose_rp_filter(underlay: Underlay) -> None:
    ops = underlay.ops
    assert ops.get_sysctl("svcnet-node-1", "net.ipv4.ip_forward") == "1"
    assert ops.get_sysctl("svcnet-node-1", "net.ipv4.conf.all.rp_filter") == "0"


def test_creating_twice_is_refused(underlay: Underlay) -> None:
    with pytest.raises(UnderlayError, match="svcnet down"):
        Underlay(underlay.ops, underlay.config).create(1)


def test_set_pod_cidr_repoints_routes_on_root_and_other_nodes(underlay: Underlay) -> None:
    underlay.set_pod_cidr(2, "10.244.77.0/24")
    ops = underlay.ops
    assert ops.route_get(None, "10.244.77.1").via == "172.18.0.12"
    assert ops.route_get("svcnet-node-1", "10.244.77.1").via == "172.18.0.12"
    assert ops.route_get("svcnet-node-1", "10.244.2.1").type is RouteType.UNREACHABLE


def test_service_route_moves_when_the_first_node_goes(underlay: Underlay) -> None:
    underlay.remove_node(1)
    assert underlay.ops.route_get(None, "10.96.0.1").via == "172.18.0.12"


def test_destroy_leaves_only_the_machines_own_things(underlay: Underlay) -> None:
    underlay.destroy()
    ops = underlay.ops
    assert ops.list_netns() == []
    assert [link.name for link in ops.list_links(None)] == ["lo"]
    assert [r.dst for r in ops.list_routes(None)] == ["127.0.0.0/8"]


def test_node_routes_skip_the_node_itself() -> None:
    cfg = UnderlayConfig()
    nodes = [node_net(cfg, i) for i in (1, 2, 3)]
    assert plan_node_routes(cfg, nodes[1], nodes)[2:] == [
        Route("10.244.1.0/24", via="172.18.0.11", dev="eth0"),
        Route("10.244.3.0/24", via="172.18.0.13", dev="eth0"),
    ]


def test_node_routes_send_the_service_cidr_towards_the_machine() -> None:
    cfg = UnderlayConfig()
    nodes = [node_net(cfg, i) for i in (1, 2)]
    assert Route("10.96.0.0/16", via="172.18.0.1", dev="eth0") in plan_node_routes(
        cfg, nodes[0], nodes
    )


def test_guard_drops_anything_crossing_the_bridge_boundary() -> None:
    script = render_guard(UnderlayConfig())
    assert 'iifname "svcnet0" oifname != "svcnet0" drop' in script
    assert 'ip daddr { 10.244.0.0/16, 10.96.0.0/16 } oifname != "svcnet0" drop' in script


def test_sweep_kills_processes_before_unnaming_namespaces(underlay: Underlay) -> None:
    from svcnet.cluster.underlay import sweep
    from svcnet.dataplane.fake_netns import FakeNetns

    ops = underlay.ops
    assert isinstance(ops, FakeNetns)
    ops.add_netns("svcnet-node-1_default_web_uid")
    ops.add_process("svcnet-node-1_default_web_uid", 11)
    ops.add_process("svcnet-node-2", 12)
    removed = sweep(ops, underlay.config)
    assert "process 11 in svcnet-node-1_default_web_uid" in removed
    assert "process 12 in svcnet-node-2" in removed
    assert ops.leaked == []


@pytest.mark.parametrize(
    ("lb_cidr", "route"),
    [
        ("172.18.255.0/24", None),  # inside the underlay: the connected route covers it
        ("192.0.2.0/28", Route("192.0.2.0/28", dev="svcnet0")),
    ],
)
def test_load_balancer_pool_goes_into_the_bridge(lb_cidr: str, route: Route | None) -> None:
    from svcnet.cluster.underlay import plan_root_routes

    routes = plan_root_routes(UnderlayConfig(lb_cidr=lb_cidr), [])
    assert [r for r in routes if r.dst == lb_cidr] == ([route] if route else [])


# -- ownership: a cluster removes what it made and nothing else ---------------------------------
# A second cluster "b" next to the default one: underlay 172.29.1.0/24, pods 10.161.0.0/16,
# services 10.177.0.0/16, unless a test gives it one of the default cluster's ranges or names.
OTHER = {
    "prefix": "b",
    "underlay_cidr": "172.29.1.0/24",
    "pod_cidr": "10.161.0.0/16",
    "service_cidr": "10.177.0.0/16",
    "lb_cidr": "172.29.1.240/28",
}


def machine_state(ops: FakeNetns) -> tuple[object, ...]:
    return (ops.list_netns(), ops.list_links(None), sorted(map(str, ops.list_routes(None))))


@pytest.mark.parametrize(
    "overrides",
    [
        {"service_cidr": "10.244.0.0/16"},  # a Service range equal to the live pod range
        {"prefix": "svcnet"},  # the live cluster's names with ranges of its own
        {"pod_cidr": "10.96.0.0/16", "service_cidr": "10.244.0.0/16"},
    ],
)
def test_a_cluster_that_meets_a_running_one_is_refused_and_its_cleanup_leaves_it_alone(
    underlay: Underlay, tmp_path: object, overrides: dict[str, str]
) -> None:
    from svcnet.cluster.underlay import ClaimError, sweep

    ops = underlay.ops
    assert isinstance(ops, FakeNetns)
    before = machine_state(ops)
    other = UnderlayConfig(**{**OTHER, **overrides, "state_dir": f"{tmp_path}/b"})
    with pytest.raises(ClaimError):
        Underlay(ops, other).create(2)
    assert sweep(ops, other) == []
    Underlay(ops, other).destroy()
    assert machine_state(ops) == before


def test_a_cluster_next_to_a_running_one_removes_only_its_own(
    underlay: Underlay, tmp_path: object
) -> None:
    ops = underlay.ops
    assert isinstance(ops, FakeNetns)
    before = machine_state(ops)
    other = Underlay(ops, UnderlayConfig(**{**OTHER, "state_dir": f"{tmp_path}/b"}))
    other.create(2)
    assert machine_state(ops) != before
    other.destroy()
    assert machine_state(ops) == before


def test_the_journal_follows_nodes_that_come_and_go(underlay: Underlay) -> None:
    from svcnet.cluster.owned import Journal

    journal = Journal(underlay.config.state_dir)
    assert journal.read().netns == ("svcnet-node-1", "svcnet-node-2")
    underlay.remove_node(1)
    owned = journal.read()
    assert owned.netns == ("svcnet-node-2",)
    assert owned.links == ("svcnet0", "svcnet-n2")
    assert owned.nft_tables == ("inet svcnet_underlay",)
    # The Service route moved to node-2: the journal holds the route as it is now.
    assert Route("10.96.0.0/16", via="172.18.0.12", dev="svcnet0", metric=100) in owned.routes
    assert all(r.via != "172.18.0.11" for r in owned.routes)
    assert set(owned.routes) <= set(underlay.ops.list_routes(None))
    underlay.destroy()
    assert not journal.path.exists()


def test_a_torn_last_line_of_the_journal_is_skipped(tmp_path: object) -> None:
    from svcnet.cluster.owned import Journal, Kind

    journal = Journal(str(tmp_path))
    journal.made(Kind.NETNS, "a-node-1")
    journal.made(Kind.NETNS, "a-node-2")
    journal.gone(Kind.NETNS, "a-node-1")
    with open(journal.path, "a") as f:
        f.write('{"kind": "netns", "name": "a-no')
    assert journal.read().netns == ("a-node-2",)


def test_sweep_removes_the_etc_files_of_its_own_pods_only(underlay: Underlay) -> None:
    from svcnet.cluster.underlay import sweep

    ops = underlay.ops
    assert isinstance(ops, FakeNetns)
    ops.add_netns("svcnet-node-1_default_web_uid")
    ops.etc |= {"svcnet-node-1_default_web_uid", "svcnet-node-10_default_web_uid", "b-node-1"}
    removed = sweep(ops, underlay.config)
    assert "/etc/netns/svcnet-node-1_default_web_uid" in removed
    assert ops.etc == {"svcnet-node-10_default_web_uid", "b-node-1"}


def test_a_stale_journal_of_the_state_dir_is_not_taken_for_this_clusters(tmp_path: object) -> None:
    from svcnet.cluster.owned import Journal
    from svcnet.cluster.underlay import sweep

    ops = FakeNetns()
    ops.add_bridge(None, "lan0")  # the machine's own link
    cfg = UnderlayConfig(state_dir=str(tmp_path))
    theirs = Route("10.1.0.0/16", dev="lan0")
    Journal(cfg.state_dir).made_route(theirs)  # left by an earlier run; the route went since
    Underlay(ops, cfg).create(1)
    ops.add_route(None, theirs)  # the same route, made later by another owner
    sweep(ops, cfg)
    assert theirs in ops.list_routes(None)
