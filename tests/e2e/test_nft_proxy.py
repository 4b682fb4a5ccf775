"""The proxy's rules in a real kernel, with real TCP and UDP traffic.

Topology (scratch namespaces of this test, removed in ``finally``):

    kpxe-<id>-c  (client pod 10.244.3.2)  ─┐
    kpxe-<id>-a  (pod a 10.244.1.2)        ├─ veth ─ kpxe-<id>-n  (the node: forwards, runs the
    kpxe-<id>-b  (pod b 10.244.2.2)       ─┘                      proxy's table)
    kpxe-<id>-o  (the machine 172.18.0.1) ── veth ── node 172.18.0.11 (the underlay)

Pod a counts as node-1's (the node under test), pod b as node-2's.

Pods a and b run a tiny asyncio server answering their name over TCP (port 8080) and UDP
(5353). The Service is 10.96.0.5 (tcp 80 -> 8080, udp 53 -> 5353). The node has a route for
10.96.0.0/16 (out of any interface, as a node with a default route would), so that traffic to
a Service without endpoints reaches the forward hook where it is rejected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from svcnet.apiserver.server import ApiServer, ApiServerConfig
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.kubeconfig import load_kubeconfig
from svcnet.client.rest import ApiClient
from svcnet.dataplane.conntrack import ConntrackExecutor
from svcnet.dataplane.nft_exec import NftExecutor
from svcnet.proxy.changetracker import ChangeTracker
from svcnet.proxy.rules import FAMILY, TABLE, ProxyConfig
from svcnet.proxy.runner import ProxyRunner
from svcnet.proxy.syncer import Syncer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]

SERVER = r"""
import asyncio, sys
name = sys.argv[1]
class Udp(asyncio.DatagramProtocol):
    def connection_made(self, t): self.t = t
    def datagram_received(self, data, addr): self.t.sendto(f"{name} {addr[0]}".encode(), addr)
async def tcp(r, w):
    w.write(f"{name} {w.get_extra_info('peername')[0]}".encode()); await w.drain(); w.close()
async def main():
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(Udp, local_addr=("0.0.0.0", 5353))
    srv = await asyncio.start_server(tcp, "0.0.0.0", 8080)
    print("ready", flush=True)
    await srv.serve_forever()
asyncio.run(main())
"""

CLIENT = r"""
import socket, sys, time, json
mode, host, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sport = int(sys.argv[5]) if len(sys.argv) > 5 else 0
out = []
for _ in range(count):
    t0 = time.monotonic()
    try:
        if mode == "tcp":
            s = socket.create_connection((host, port), timeout=2)
            out.append(s.recv(100).decode()); s.close()
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if sport: s.bind(("0.0.0.0", sport))
            # Connected, as resolvers do: only then does ICMP port unreachable surface.
            s.settimeout(2); s.connect((host, port)); s.send(b"hi")
            out.append(s.recv(100).decode()); s.close()
    except OSError as e:
        out.append(f"error:{type(e).__name__}:{time.monotonic() - t0:.3f}")
print(json.dumps(out))
"""

CLUSTER_IP = "10.96.0.5"
NODE_IP = "172.18.0.11"
MACHINE_IP = "172.18.0.1"


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@dataclass
class Net:
    node: str
    client: str
    outside: str
    pods: dict[str, str]  # name -> netns
    procs: list[subprocess.Popen[bytes]]

    def answers(self, *args: Any, ns: str | None = None) -> list[str]:
        """What each request got: "<pod> <source address the pod saw>" or "error:..."."""
        out = subprocess.run(
            ["ip", "netns", "exec", ns or self.client, sys.executable, "-c", CLIENT]
            + [str(a) for a in args],
            check=True,
            capture_output=True,
            timeout=60,
        )
        result: list[str] = json.loads(out.stdout)
        return result

    def run_client(self, *args: Any, ns: str | None = None) -> list[str]:
        """Which pod answered each request (or the error)."""
        return [a.split()[0] for a in self.answers(*args, ns=ns)]


@pytest.fixture
def net() -> Iterator[Net]:
    tag = f"kpxe-{os.getpid() % 100000}"
    node, client, outside = f"{tag}-n", f"{tag}-c", f"{tag}-o"
    pods = {"a": f"{tag}-a", "b": f"{tag}-b"}
    made: list[str] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for ns in (node, client, outside, *pods.values()):
            sh("ip", "netns", "add", ns)
            made.append(ns)
        sh("ip", "-n", node, "link", "set", "lo", "up")
        sh("ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # On this kernel (6.18) a fresh peer gets no ICMP error for its first second: with
        # destination-unreachable rate limited (the default mask 6168), a UDP client of a
        # Service without endpoints would wait for its timeout instead of being refused.
        # 6160 = the default mask without destination unreachable (bit 3).
        sh("ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.icmp_ratemask=6160")
        # The underlay: "outside" is the machine (172.18.0.1), off the pod network.
        sh(
            "ip",
            "link",
            "add",
            "ko",
            "netns",
            node,
            "type",
            "veth",
            "peer",
            "eth0",
            "netns",
            outside,
        )
        sh("ip", "-n", node, "addr", "add", f"{NODE_IP}/24", "dev", "ko")
        sh("ip", "-n", node, "link", "set", "ko", "up")
        sh("ip", "-n", outside, "addr", "add", f"{MACHINE_IP}/24", "dev", "eth0")
        sh("ip", "-n", outside, "link", "set", "eth0", "up")
        for i, ns in ((1, pods["a"]), (2, pods["b"]), (3, client)):
            host_if, pod_if = f"kv{i}", "eth0"
            sh(
                "ip",
                "link",
                "add",
                host_if,
                "netns",
                node,
                "type",
                "veth",
                "peer",
                pod_if,
                "netns",
                ns,
            )
            sh("ip", "-n", node, "addr", "add", f"10.244.{i}.1/24", "dev", host_if)
            sh("ip", "-n", node, "link", "set", host_if, "up")
            sh("ip", "-n", ns, "addr", "add", f"10.244.{i}.2/24", "dev", pod_if)
            sh("ip", "-n", ns, "link", "set", pod_if, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "route", "add", "default", "via", f"10.244.{i}.1")
        sh("ip", "-n", node, "route", "add", "10.96.0.0/16", "dev", "kv3")
        for name, ns in pods.items():
            p = subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, name],
                stdout=subprocess.PIPE,
            )
            procs.append(p)
            assert p.stdout is not None and p.stdout.readline().strip() == b"ready"
        yield Net(node, client, outside, pods, procs)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], check=False)


def svc(**spec: Any) -> dict[str, Any]:
    return {
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "clusterIP": CLUSTER_IP,
            "ports": [
                {"name": "http", "port": 80, "protocol": "TCP"},
                {"name": "dns", "port": 53, "protocol": "UDP"},
            ],
            **spec,
        },
    }


READY = {"ready": True, "serving": True, "terminating": False}
NOT_READY = {"ready": False, "serving": False, "terminating": False}
TERMINATING_SERVING = {"ready": False, "serving": True, "terminating": True}
TERMINATING_NOT_SERVING = {"ready": False, "serving": False, "terminating": True}


def slice_(*pods: str, conditions: dict[str, dict[str, bool]] | None = None) -> dict[str, Any]:
    """Endpoints of ``pods`` (Ready unless ``conditions`` says otherwise for a pod)."""
    ips = {"a": ("10.244.1.2", "node-1"), "b": ("10.244.2.2", "node-2")}
    conds = conditions or {}
    return {
        "kind": "EndpointSlice",
        "metadata": {
            "name": "web-1",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [ips[p][0]], "conditions": conds.get(p, READY), "nodeName": ips[p][1]}
            for p in pods
        ],
        "ports": [
            {"name": "http", "port": 8080, "protocol": "TCP"},
            {"name": "dns", "port": 5353, "protocol": "UDP"},
        ],
    }


@pytest.fixture
async def proxy(net: Net) -> AsyncIterator[tuple[ChangeTracker, Syncer]]:
    cfg = ProxyConfig(node_name="node-1", cluster_cidr="10.244.0.0/16", node_ips=(NODE_IP,))
    tracker = ChangeTracker()
    nft = NftExecutor(netns=net.node)
    syncer = Syncer(
        cfg, tracker, nft, ConntrackExecutor(netns=net.node), min_interval=0.0, check_interval=0.2
    )
    try:
        yield tracker, syncer
    finally:
        nft.delete_table_if_exists(FAMILY, TABLE)


async def test_tcp_and_udp_reach_both_backends(
    net: Net, proxy: tuple[ChangeTracker, Syncer]
) -> None:
    tracker, syncer = proxy
    tracker.upsert_service(svc())
    tracker.upsert_slice(slice_("a", "b"))
    assert (await syncer.sync()).ok
    assert set(net.run_client("tcp", CLUSTER_IP, 80, 30)) == {"a", "b"}
    assert set(net.run_client("udp", CLUSTER_IP, 53, 30)) == {"a", "b"}


async def test_no_endpoints_refuses(net: Net, proxy: tuple[ChangeTracker, Syncer]) -> None:
    tracker, syncer = proxy
    tracker.upsert_service(svc())
    assert (await syncer.sync()).ok
    # Refused (a TCP reset), not dropped: a drop would end in the client's 2 s timeout.
    assert errors(net.run_client("tcp", CLUSTER_IP, 80, 1)) == ["ConnectionRefusedError"]


def errors(results: list[str]) -> list[str]:
    """The kinds of error among a client's results ("error:<kind>:<seconds>")."""
    return [r.split(":")[1] for r in results if r.startswith("error:")]


# --- internalTrafficPolicy and terminating endpoints -------------------------------------------


async def test_internal_policy_local_reaches_only_the_local_endpoint(
    net: Net, proxy: tuple[ChangeTracker, Syncer]
) -> None:
    tracker, syncer = proxy
    tracker.upsert_service(svc(internalTrafficPolicy="Local"))
    tracker.upsert_slice(slice_("a", "b"))
    assert (await syncer.sync()).ok
    assert set(net.run_client("tcp", CLUSTER_IP, 80, 20)) == {"a"}
    assert set(net.run_client("udp", CLUSTER_IP, 53, 20)) == {"a"}


async def test_internal_policy_local_without_a_local_endpoint_drops(
    net: Net, proxy: tuple[ChangeTracker, Syncer]
) -> None:
    tracker, syncer = proxy
    tracker.upsert_service(svc(internalTrafficPolicy="Local"))
    tracker.upsert_slice(slice_("b"))
    assert (await syncer.sync()).ok
    # Dropped, as kube-proxy does ("has no local endpoints"): no reset, the client times out;
    # b on node-2 is never used for traffic from this node.
    assert errors(net.run_client("tcp", CLUSTER_IP, 80, 2)) == ["TimeoutError"] * 2
    # The same endpoint under the Cluster policy answers: it was the policy that dropped.
    tracker.upsert_service(svc())
    assert (await syncer.sync()).ok
    assert set(net.run_client("tcp", CLUSTER_IP, 80, 5)) == {"b"}


@pytest.mark.parametrize(
    ("conditions", "want"),
    [
        ({"a": TERMINATING_SERVING, "b": NOT_READY}, {"a"}),
        ({"a": TERMINATING_SERVING}, {"b"}),
        ({"a": TERMINATING_NOT_SERVING, "b": NOT_READY}, {"error:ConnectionRefusedError"}),
    ],
    ids=["only-terminating-serving-is-used", "ready-wins", "terminating-not-serving-refuses"],
)
async def test_terminating_endpoints_are_a_fallback_when_none_is_ready(
    net: Net,
    proxy: tuple[ChangeTracker, Syncer],
    conditions: dict[str, dict[str, bool]],
    want: set[str],
) -> None:
    tracker, syncer = proxy
    tracker.upsert_service(svc())
    tracker.upsert_slice(slice_("a", "b", conditions=conditions))
    assert (await syncer.sync()).ok
    got = {r.rsplit(":", 1)[0] if r.startswith("error:") else r for r in net.run_client(
        "tcp", CLUSTER_IP, 80, 20
    )}  # fmt: skip
    assert got == want


async def test_session_affinity_sticks(net: Net, proxy: tuple[ChangeTracker, Syncer]) -> None:
    tracker, syncer = proxy
    tracker.upsert_service(svc(sessionAffinity="ClientIP"))
    tracker.upsert_slice(slice_("a", "b"))
    assert (await syncer.sync()).ok
    assert len(set(net.run_client("tcp", CLUSTER_IP, 80, 20))) == 1
    assert len(set(net.run_client("udp", CLUSTER_IP, 53, 20))) == 1


async def test_endpoint_change_is_applied_by_a_partial_sync(
    net: Net, proxy: tuple[ChangeTracker, Syncer]
) -> None:
    tracker, syncer = proxy
    tracker.upsert_service(svc())
    tracker.upsert_slice(slice_("a", "b"))
    assert (await syncer.sync()).full
    tracker.upsert_slice(slice_("b"))
    result = await syncer.sync()
    assert result.ok and not result.full
    assert set(net.run_client("tcp", CLUSTER_IP, 80, 20)) == {"b"}


async def test_first_udp_service_is_added_by_a_partial_sync(
    net: Net, proxy: tuple[ChangeTracker, Syncer]
) -> None:
    # nft 1.0.6 refused this partial transaction ("conflicting protocols specified: udp vs.
    # tcp") while one endpoint map served every protocol; the syncer then fell back to a full
    # sync. With a map per protocol the partial transaction is accepted.
    tracker, syncer = proxy
    tcp_only = svc()
    del tcp_only["spec"]["ports"][1]
    tracker.upsert_service(tcp_only)
    tracker.upsert_slice(slice_("a", "b"))
    assert (await syncer.sync()).full
    tracker.upsert_service(svc())  # adds the UDP port: the first udp selector chain
    result = await syncer.sync()
    assert result.ok and not result.full, result
    assert set(net.run_client("udp", CLUSTER_IP, 53, 30)) == {"a", "b"}


async def test_udp_conntrack_of_a_removed_endpoint_is_flushed(
    net: Net, proxy: tuple[ChangeTracker, Syncer]
) -> None:
    tracker, syncer = proxy
    tracker.upsert_service(svc())
    tracker.upsert_slice(slice_("a", "b"))
    assert (await syncer.sync()).ok
    # The same source port reuses the conntrack entry: the first answer is sticky.
    (first,) = net.run_client("udp", CLUSTER_IP, 53, 1, 40000)
    assert net.run_client("udp", CLUSTER_IP, 53, 3, 40000) == [first] * 3
    other = "b" if first == "a" else "a"
    tracker.upsert_slice(slice_(other))
    assert (await syncer.sync()).ok
    assert net.run_client("udp", CLUSTER_IP, 53, 3, 40000) == [other] * 3


async def test_deleted_table_is_restored_by_the_periodic_check(
    net: Net, proxy: tuple[ChangeTracker, Syncer]
) -> None:
    tracker, syncer = proxy
    tracker.upsert_service(svc())
    tracker.upsert_slice(slice_("a", "b"))
    task = asyncio.create_task(syncer.run())
    try:
        syncer.request()
        deadline = time.monotonic() + 5
        while not syncer.syncs and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert syncer.syncs and syncer.syncs[-1].ok
        sh("ip", "netns", "exec", net.node, "nft", "delete", "table", FAMILY, TABLE)
        assert net.run_client("tcp", CLUSTER_IP, 80, 1)[0].startswith("error")
        n = len(syncer.syncs)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(s.full for s in syncer.syncs[n:]):
            await asyncio.sleep(0.05)
        assert set(net.run_client("tcp", CLUSTER_IP, 80, 20)) == {"a", "b"}
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_affinity_to_a_removed_endpoint_is_forgotten(
    net: Net, proxy: tuple[ChangeTracker, Syncer]
) -> None:
    tracker, syncer = proxy
    tracker.upsert_service(svc(sessionAffinity="ClientIP"))
    tracker.upsert_slice(slice_("a", "b"))
    assert (await syncer.sync()).ok
    (first,) = set(net.run_client("tcp", CLUSTER_IP, 80, 5))
    other = "b" if first == "a" else "a"
    # The removed pod still runs: only a forgotten affinity entry sends clients elsewhere.
    tracker.upsert_slice(slice_(other))
    assert (await syncer.sync()).ok
    assert set(net.run_client("tcp", CLUSTER_IP, 80, 5)) == {other}


async def test_nodeport_reaches_both_backends_masqueraded(
    net: Net, proxy: tuple[ChangeTracker, Syncer]
) -> None:
    tracker, syncer = proxy
    ports = [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]
    tracker.upsert_service(svc(type="NodePort", ports=ports))
    tracker.upsert_slice(slice_("a", "b"))
    assert (await syncer.sync()).ok
    assert set(net.run_client("tcp", NODE_IP, 30080, 30)) == {"a", "b"}


async def test_nodeport_cluster_policy_from_outside_is_masqueraded(
    net: Net, proxy: tuple[ChangeTracker, Syncer]
) -> None:
    tracker, syncer = proxy
    ports = [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]
    tracker.upsert_service(svc(type="NodePort", ports=ports))
    tracker.upsert_slice(slice_("a", "b"))
    assert (await syncer.sync()).ok
    answers = net.answers("tcp", NODE_IP, 30080, 30, ns=net.outside)
    assert {a.split()[0] for a in answers} == {"a", "b"}
    assert all(a.split()[1] != MACHINE_IP for a in answers)


async def test_nodeport_local_policy_keeps_the_client_ip_and_uses_local_endpoints(
    net: Net, proxy: tuple[ChangeTracker, Syncer]
) -> None:
    tracker, syncer = proxy
    ports = [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]
    tracker.upsert_service(svc(type="NodePort", ports=ports, externalTrafficPolicy="Local"))
    tracker.upsert_slice(slice_("a", "b"))
    assert (await syncer.sync()).ok
    assert set(net.answers("tcp", NODE_IP, 30080, 20, ns=net.outside)) == {f"a {MACHINE_IP}"}


async def test_pod_to_pod_through_a_service_keeps_the_source(
    net: Net, proxy: tuple[ChangeTracker, Syncer]
) -> None:
    tracker, syncer = proxy
    tracker.upsert_service(svc())
    tracker.upsert_slice(slice_("b"))
    assert (await syncer.sync()).ok
    assert set(net.answers("tcp", CLUSTER_IP, 80, 5)) == {"b 10.244.3.2"}


async def test_hairpin_pod_reaches_itself_through_its_service(
    net: Net, proxy: tuple[ChangeTracker, Syncer]
) -> None:
    tracker, syncer = proxy
    tracker.upsert_service(svc())
    tracker.upsert_slice(slice_("a"))
    assert (await syncer.sync()).ok
    assert net.run_client("tcp", CLUSTER_IP, 80, 5, ns=net.pods["a"]) == ["a"] * 5


async def test_external_ip_from_the_machine_reaches_both_backends(
    net: Net, proxy: tuple[ChangeTracker, Syncer]
) -> None:
    tracker, syncer = proxy
    sh("ip", "-n", net.outside, "route", "add", "198.51.100.9/32", "via", NODE_IP)
    tracker.upsert_service(svc(externalIPs=["198.51.100.9"]))
    tracker.upsert_slice(slice_("a", "b"))
    assert (await syncer.sync()).ok
    answers = net.answers("tcp", "198.51.100.9", 80, 30, ns=net.outside)
    assert {a.split()[0] for a in answers} == {"a", "b"}


async def test_udp_without_endpoints_is_refused(
    net: Net, proxy: tuple[ChangeTracker, Syncer]
) -> None:
    tracker, syncer = proxy
    tracker.upsert_service(svc())
    assert (await syncer.sync()).ok
    # ICMP port unreachable: the connected client's recv fails instead of timing out.
    assert errors(net.run_client("udp", CLUSTER_IP, 53, 1)) == ["ConnectionRefusedError"]


async def test_runner_programs_services_from_the_real_api_server(net: Net, tmp_path: Path) -> None:
    """The glue end to end: API server -> informers -> tracker -> syncer -> nft -> traffic."""
    server = ApiServer(ApiServerConfig(data_dir=tmp_path, port=0, store_url="memory:"))
    await server.start()
    nft = NftExecutor(netns=net.node)
    try:
        async with ApiClient(load_kubeconfig(server.kubeconfig_path)) as client:
            service = svc()
            del service["spec"]["ports"][1]  # TCP only
            service["apiVersion"] = "v1"
            await client.create(service)
            slice_obj = {**slice_("a"), "apiVersion": "discovery.k8s.io/v1"}
            created = await client.create(slice_obj)
            runner = ProxyRunner(
                SharedInformerFactory(client),
                ProxyConfig(node_name="node-1", node_ips=(NODE_IP,)),
                nft,
                ConntrackExecutor(netns=net.node),
                health_check_host=None,
                min_interval=0.0,
            )
            task = asyncio.create_task(runner.run())
            try:
                deadline = time.monotonic() + 10
                while net.run_client("tcp", CLUSTER_IP, 80, 1) != ["a"]:
                    assert time.monotonic() < deadline, "the Service was never programmed"
                    await asyncio.sleep(0.1)
                created["endpoints"] = slice_("a", "b")["endpoints"]
                await client.update(created)
                deadline = time.monotonic() + 10
                while set(net.run_client("tcp", CLUSTER_IP, 80, 20)) != {"a", "b"}:
                    assert time.monotonic() < deadline, "the endpoint change never arrived"
                    await asyncio.sleep(0.1)
                assert not runner.syncer.syncs[-1].full
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        nft.delete_table_if_exists(FAMILY, TABLE)
        await server.stop()
