"""``hostNetwork: true`` pods in a real cluster: they run in their node's network namespace, as
under containerd (no namespace of their own, no CNI ADD), so their IP is the node's InternalIP,
they serve on it, and they see the node's interfaces; dnsPolicy ClusterFirst gives them the
node's resolv.conf, ClusterFirstWithHostNet the cluster DNS (kubelet's GetPodDNS).

Ranges: the cluster fixture's (a random /24 of 172.29.0.0/16 underlay, pods in 10.160/12).
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from typing import Any

import pytest
from cluster_fixture import Cluster, pod_manifest, ready, svcnet_cluster  # noqa: F401

pytestmark = pytest.mark.e2e

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.52"
PORT = 18081  # on the node: a hostNetwork pod's hostPort is its containerPort


def node_ip(c: Cluster, node: str) -> str:
    addresses = c.get("node", node)["status"]["addresses"]
    return next(str(a["address"]) for a in addresses if a["type"] == "InternalIP")


def node_netns(c: Cluster, node: str) -> str:
    return f"{c.name}-{node}"


def in_node(c: Cluster, node: str, *argv: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", node_netns(c, node), *argv],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout


def host_pod(
    c: Cluster, name: str, node: str, container: str, dns_policy: str = ""
) -> dict[str, Any]:
    policy = f"  dnsPolicy: {dns_policy}\n" if dns_policy else ""
    c.apply(pod_manifest(name, node, container, pod_extra=f"  hostNetwork: true\n{policy}"))
    return c.wait_for(f"pod/{name}", ready, 60.0)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def server(svcnet_cluster: Cluster) -> dict[str, Any]:  # noqa: F811 - the fixture
    """agnhost netexec on node-1's network, port PORT."""
    container = f"""    image: {AGNHOST}
    args: [netexec, --http-port={PORT}]
    ports: [{{containerPort: {PORT}}}]"""
    return host_pod(svcnet_cluster, "hostnet", "node-1", container)


@pytest.fixture(scope="module")
def shell(svcnet_cluster: Cluster) -> Cluster:  # noqa: F811 - the fixture
    """busybox pods on node-2's network, one per dnsPolicy."""
    container = "    image: busybox\n    command: [sleep, '3600']"
    host_pod(svcnet_cluster, "hn-default", "node-2", container)
    host_pod(svcnet_cluster, "hn-cluster", "node-2", container, "ClusterFirstWithHostNet")
    return svcnet_cluster


def test_pod_ip_is_the_nodes_internal_ip(svcnet_cluster: Cluster, server: dict[str, Any]) -> None:  # noqa: F811
    ip = node_ip(svcnet_cluster, "node-1")
    status = server["status"]
    assert (status["podIP"], status["podIPs"], status["hostIP"]) == (ip, [{"ip": ip}], ip)
    ports = server["spec"]["containers"][0]["ports"]
    assert ports == [{"containerPort": PORT, "hostPort": PORT, "protocol": "TCP"}]


def test_it_serves_on_the_nodes_address(svcnet_cluster: Cluster, server: dict[str, Any]) -> None:  # noqa: F811
    ip = node_ip(svcnet_cluster, "node-1")
    with urllib.request.urlopen(f"http://{ip}:{PORT}/hostname", timeout=10) as resp:
        assert resp.read().decode() == "node-1"  # the node's hostname, not the pod's name
    # ... and inside the node's namespace itself: the socket is the node's
    listening = in_node(svcnet_cluster, "node-1", "ss", "-Htln", f"sport = :{PORT}")
    assert f":{PORT}" in listening, listening


def test_it_has_no_namespace_of_its_own(svcnet_cluster: Cluster, server: dict[str, Any]) -> None:  # noqa: F811
    uid = server["metadata"]["uid"]
    names = subprocess.run(
        ["ip", "-j", "netns", "list"], capture_output=True, text=True, check=True
    )
    assert not [n for n in json.loads(names.stdout or "[]") if uid in n["name"]]


def test_it_sees_the_nodes_interfaces(shell: Cluster) -> None:
    inside = shell.kubectl("exec", "hn-default", "--", "ip", "-o", "-4", "addr").stdout
    on_node = in_node(shell, "node-2", "ip", "-o", "-4", "addr")

    def addresses(out: str) -> set[tuple[str, str]]:
        return {(line.split()[1], line.split()[3]) for line in out.splitlines() if " inet " in line}

    assert addresses(inside) == addresses(on_node), (inside, on_node)
    assert ("eth0", f"{node_ip(shell, 'node-2')}/24") in addresses(inside)


def test_cluster_first_gives_a_host_network_pod_the_nodes_resolv_conf(shell: Cluster) -> None:
    inside = shell.kubectl("exec", "hn-default", "--", "cat", "/etc/resolv.conf").stdout
    node_resolv = in_node(shell, "node-2", "cat", "/etc/resolv.conf")
    nameservers = [ln for ln in node_resolv.splitlines() if ln.startswith("nameserver")]
    assert (
        nameservers
        and [ln for ln in inside.splitlines() if ln.startswith("nameserver")] == nameservers
    )
    assert "svc.cluster.local" not in inside


def test_cluster_first_with_host_net_resolves_services(shell: Cluster) -> None:
    dns_ip = shell.get("svc", "kube-dns", "-n", "kube-system")["spec"]["clusterIP"]
    resolv = shell.kubectl("exec", "hn-cluster", "--", "cat", "/etc/resolv.conf").stdout
    assert resolv.splitlines()[0] == f"nameserver {dns_ip}", resolv
    api_ip = shell.get("svc", "kubernetes")["spec"]["clusterIP"]
    res = shell.kubectl(
        "exec", "hn-cluster", "--", "nslookup", "kubernetes.default.svc.cluster.local"
    )
    assert f"Address: {api_ip}\n" in res.stdout, res.stdout


def test_a_second_server_on_the_same_node_port_is_rejected(
    svcnet_cluster: Cluster,  # noqa: F811 - the fixture
    server: dict[str, Any],
) -> None:
    """Bound by spec.nodeName (no scheduler to keep it away), it meets kubelet's admission."""
    c = svcnet_cluster
    container = f"""    image: {AGNHOST}
    args: [netexec, --http-port={PORT}]
    ports: [{{containerPort: {PORT}}}]"""
    c.apply(pod_manifest("hostnet-2", "node-1", container, pod_extra="  hostNetwork: true\n"))
    failed = c.wait_for("pod/hostnet-2", lambda p: p["status"].get("phase") == "Failed", 30.0)
    message = "node(s) didn't have free ports for the requested pod ports"
    assert failed["status"]["reason"] == "NodePorts"
    assert failed["status"]["message"] == f"Pod was rejected: Predicate NodePorts failed: {message}"
    assert c.get("pod", "hostnet")["status"]["phase"] == "Running"  # the first one is untouched
    c.kubectl("delete", "pod", "hostnet-2", "--wait=false")
