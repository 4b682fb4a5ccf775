"""The underlay alone: node namespaces on a bridge, routes, sealing, and sweep after a crash.

Ranges: see conftest (a random /24 of 172.31.0.0/16 underlay).
"""

from __future__ import annotations

import sys

import pytest

from svcnet.cluster.underlay import Underlay, UnderlayConfig, load_nodes, sweep
from svcnet.dataplane.netns import IpRoute2, RouteType

pytestmark = pytest.mark.e2e

LISTEN = (
    "import socket,sys;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
    "s.bind(('0.0.0.0',7000));s.listen();s.settimeout(5);c,a=s.accept();print(a[0])"
)
CONNECT = "import socket,sys;socket.create_connection((sys.argv[1],7000),timeout=3)"


def test_nodes_reach_each_other_and_the_machine_over_the_bridge(e2e_config: UnderlayConfig) -> None:
    import subprocess

    ops = IpRoute2()
    underlay = Underlay(ops, e2e_config)
    try:
        n1, n2 = underlay.create(2)
        server = subprocess.Popen(
            ["ip", "netns", "exec", n2.netns, sys.executable, "-S", "-c", LISTEN],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            for _ in range(50):
                res = ops.run(n1.netns, [sys.executable, "-S", "-c", CONNECT, n2.ip])
                if res.returncode == 0:
                    break
            out, _ = server.communicate(timeout=5)
        finally:
            server.kill()
            server.wait()
        assert out.strip() == n1.ip
        assert ops.route_get(n1.netns, e2e_config.gateway).dev == "eth0"
        assert ops.route_get(n1.netns, n2.pod_cidr.replace(".0/24", ".7")).via == n2.ip
        assert ops.route_get(n1.netns, "192.0.2.1").type is RouteType.UNREACHABLE
        assert ops.get_sysctl(n1.netns, "net.ipv4.ip_forward") == "1"
    finally:
        underlay.destroy()


def test_sweep_removes_everything_after_a_crash(e2e_config: UnderlayConfig) -> None:
    ops = IpRoute2()
    Underlay(ops, e2e_config).create(3)  # the owner "crashes": nothing is destroyed
    assert [n.name for n in load_nodes(e2e_config)] == ["node-1", "node-2", "node-3"]
    removed = sweep(ops, e2e_config)
    assert f"netns {e2e_config.prefix}-node-3" in removed
    assert f"nft table inet {e2e_config.nft_table}" in removed
    assert sweep(ops, e2e_config) == []


def test_removing_a_node_removes_its_routes_everywhere(e2e_config: UnderlayConfig) -> None:
    ops = IpRoute2()
    underlay = Underlay(ops, e2e_config)
    try:
        n1, n2 = underlay.create(2)
        underlay.remove_node(2)
        assert ops.route_get(None, n2.pod_cidr.replace(".0/24", ".5")).type is RouteType.UNREACHABLE
        assert (
            ops.route_get(n1.netns, n2.pod_cidr.replace(".0/24", ".5")).type
            is RouteType.UNREACHABLE
        )
        assert n2.netns not in ops.list_netns()
    finally:
        underlay.destroy()


def test_sweep_ends_processes_left_in_node_and_pod_namespaces(e2e_config: UnderlayConfig) -> None:
    import os
    import subprocess
    import time

    ops = IpRoute2()
    node = Underlay(ops, e2e_config).create(1)[0]
    pod_ns = f"{node.netns}_default_orphan_uid"
    ops.add_netns(pod_ns)
    procs = [
        subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "60"], start_new_session=True)
        for ns in (node.netns, pod_ns)
    ]
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(
            subprocess.run(
                ["ip", "netns", "pids", ns], capture_output=True, text=True
            ).stdout.strip()
            for ns in (node.netns, pod_ns)
        ):
            time.sleep(0.02)  # until `ip netns exec` has joined both namespaces
        sweep(ops, e2e_config)
        codes = [p.wait(timeout=5) for p in procs]
        assert codes == [-9, -9]
        assert all(not os.path.exists(f"/run/netns/{ns}") for ns in (node.netns, pod_ns))
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_a_pod_namespace_made_by_a_node_agent_is_visible_from_the_machine(
    e2e_config: UnderlayConfig,
) -> None:
    import subprocess

    ops = IpRoute2()
    underlay = Underlay(ops, e2e_config)
    try:
        node = underlay.create(1)[0]
        pod_ns = f"{node.netns}_default_visible_uid"
        subprocess.run([*node.agent_argv_prefix(), "ip", "netns", "add", pod_ns], check=True)
        assert ops.run(pod_ns, ["true"]).returncode == 0
    finally:
        underlay.destroy()


@pytest.mark.parametrize(
    ("sub", "type_", "dev", "metric", "exists"),
    [
        (False, RouteType.UNREACHABLE, None, 10, True),
        (False, RouteType.UNICAST, "eth0", 10, True),  # type and device are not in the key
        (False, RouteType.UNREACHABLE, None, 11, False),
        (True, RouteType.UNREACHABLE, None, 10, False),
    ],
)
def test_the_kernel_keys_a_route_by_destination_and_metric_as_the_fake_does(
    e2e_config: UnderlayConfig,
    sub: bool,
    type_: RouteType,
    dev: str | None,
    metric: int,
    exists: bool,
) -> None:
    from svcnet.dataplane.netns import AlreadyExists, Route

    ops = IpRoute2()
    underlay = Underlay(ops, e2e_config)
    try:
        node = underlay.create(1)[0]
        net = e2e_config.service_cidr
        ops.add_route(node.netns, Route(net, type=RouteType.UNREACHABLE, metric=10))
        route = Route(net.replace("/16", "/24") if sub else net, dev=dev, type=type_, metric=metric)
        if exists:
            with pytest.raises(AlreadyExists):
                ops.add_route(node.netns, route)
        else:
            ops.add_route(node.netns, route)
            assert route in ops.list_routes(node.netns)
    finally:
        underlay.destroy()
