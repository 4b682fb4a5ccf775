"""The DNS add-on as ``svcnet up`` deploys it, and ``svcnet dns query`` from the machine.

The first half is pure (the objects the add-on applies, the DNS server's kubeconfig, reading
kube-dns's EndpointSlices): tables of cases, no root. The second half runs a real cluster
(cluster_fixture: unique name, its own ranges — kube-dns on the 10th address of a random
/16 of 10.176.0.0/12 — temporary data dir and kubeconfig, ``svcnet down`` and a leak check
at the end) and asks its DNS from the machine's namespace, through the ClusterIP (the
machine routes the service range into the first node, whose proxy forwards it) and, with
that path blocked by a table of this test in that node, through the DNS pods' IPs.

The upstream case runs a second DNS server in a pod of its own (``python -m svcnet.dns
--objects`` for the zone ``example.test``) and redeploys the add-on with it as upstream: no
query leaves the cluster's namespaces.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query
import pytest
import yaml
from cluster_fixture import Cluster, running_cluster

from svcnet.cli.dns import absolute_name
from svcnet.cluster.addons import (
    AddonError,
    DnsAddonSpec,
    dns_addon_objects,
    dns_kubeconfig_document,
    parse_upstreams,
    ready_dns_endpoints,
)

PY = sys.executable
ZONE = "cluster.local"

# -- pure: the objects ------------------------------------------------------------------------
SPEC = DnsAddonSpec(
    cluster_ip="10.96.0.10", kubeconfig="/d/addons/kube-dns.kubeconfig", python="/v/bin/python"
)


def objects(spec: DnsAddonSpec = SPEC) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in dns_addon_objects(spec)}


def container(spec: DnsAddonSpec = SPEC) -> dict[str, Any]:
    c: dict[str, Any] = objects(spec)["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    return c


def test_addon_objects_are_applied_service_account_first() -> None:
    kinds = [
        (o["kind"], o["metadata"]["namespace"], o["metadata"]["name"])
        for o in dns_addon_objects(SPEC)
    ]
    assert kinds == [
        ("ServiceAccount", "kube-system", "kube-dns"),
        ("Service", "kube-system", "kube-dns"),
        ("Deployment", "kube-system", "coredns"),
    ]


def test_kube_dns_service_is_on_the_fixed_cluster_ip_with_dns_ports() -> None:
    svc = objects()["Service"]["spec"]
    assert svc["clusterIP"] == "10.96.0.10"
    assert svc["selector"] == {"k8s-app": "kube-dns"}
    assert [(p["name"], p["port"], p["protocol"]) for p in svc["ports"]] == [
        ("dns", 53, "UDP"),
        ("dns-tcp", 53, "TCP"),
    ]


def test_deployment_runs_two_replicas_labelled_kube_dns() -> None:
    dep = objects()["Deployment"]
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["selector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert dep["spec"]["template"]["metadata"]["labels"] == {"k8s-app": "kube-dns"}
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "kube-dns"
    assert pod["dnsPolicy"] == "Default"  # the DNS server does not resolve through itself


@pytest.mark.parametrize(
    ("upstreams", "tail"),
    [
        ((), []),
        (("192.0.2.53",), ["--upstream", "192.0.2.53"]),
        (("192.0.2.53", "[2001:db8::53]:5353"), ["--upstream", "192.0.2.53", "--upstream", "[2001:db8::53]:5353"]),
    ],
)  # fmt: skip
def test_container_command_is_the_clusters_python_running_svcnet_dns(
    upstreams: tuple[str, ...], tail: list[str]
) -> None:
    spec = DnsAddonSpec("10.96.0.10", "/d/k", python="/v/bin/python", upstreams=upstreams)
    assert container(spec)["command"] == [
        "/v/bin/python", "-m", "svcnet.dns", "--zone", "cluster.local",
        "--listen", "0.0.0.0:53", "--kubeconfig", "/d/k",
        "--health", "0.0.0.0:8080", "--ready", "0.0.0.0:8181", "--lameduck", "2", *tail,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("flag", "want"),
    [
        (None, ()),
        ("", ()),
        ("172.18.0.1", ("172.18.0.1",)),
        ("172.18.0.1:5353, 10.0.0.2", ("172.18.0.1:5353", "10.0.0.2")),
        ("[fd00::53]:53", ("[fd00::53]:53",)),
    ],
)
def test_upstream_dns_flag(flag: str | None, want: tuple[str, ...]) -> None:
    assert parse_upstreams(flag, "172.18.0.1") == want


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("127.0.0.53", "a loopback address inside a DNS pod is the pod's own"),
        ("[::1]:53", "a loopback address inside a DNS pod is the pod's own"),
        ("dns.example", "not HOST[:PORT] with an IP address"),
        ("10.0.0.1:dns", "not HOST[:PORT] with an IP address"),
    ],
)
def test_upstream_dns_flag_refused(flag: str, message: str) -> None:
    with pytest.raises(AddonError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_upstreams(flag, "172.18.0.1")


@pytest.mark.parametrize(
    ("probe", "path", "port"),
    [("readinessProbe", "/ready", 8181), ("livenessProbe", "/health", 8080)],
)
def test_probes_are_http_gets_as_coredns_has_them(probe: str, path: str, port: int) -> None:
    got = container()[probe]["httpGet"]
    assert (got["path"], got["port"]) == (path, port)


def test_dns_kubeconfig_points_at_the_gateway_with_the_token() -> None:
    doc = dns_kubeconfig_document("https://172.18.0.1:6443", "Q0E=", "tok")
    assert doc["clusters"][0]["cluster"] == {
        "server": "https://172.18.0.1:6443",
        "certificate-authority-data": "Q0E=",
    }
    assert doc["users"][0]["user"] == {"token": "tok"}
    assert doc["current-context"] == doc["contexts"][0]["name"]


@pytest.mark.parametrize(
    ("endpoints", "want"),
    [
        ([], []),
        ([{"addresses": ["10.244.1.2"], "conditions": {"ready": True}}], ["10.244.1.2"]),
        ([{"addresses": ["10.244.1.2"], "conditions": {"ready": False}}], []),
        ([{"addresses": ["10.244.2.2"]}, {"addresses": ["10.244.1.2"]}], ["10.244.1.2", "10.244.2.2"]),
    ],
)  # fmt: skip
def test_ready_dns_endpoints(endpoints: list[dict[str, Any]], want: list[str]) -> None:
    assert ready_dns_endpoints({"items": [{"endpoints": endpoints}]}) == want


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("web", None),
        ("web.default", None),
        ("web.default.svc.cluster.local", "web.default.svc.cluster.local."),
        ("web.default.svc.cluster.local.", "web.default.svc.cluster.local."),
        ("a.b.c.d.e.f", "a.b.c.d.e.f."),  # ndots:5
    ],
)
def test_query_names_are_completed_as_a_pod_completes_them(name: str, want: str | None) -> None:
    assert absolute_name(name) == want


# -- a real cluster ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("svcnet-dns-addon"), nodes=2) as c:
        yield c


def dns_ip(c: Cluster) -> str:
    network = c.service_cidr.split("/")[0].rsplit(".", 2)[0]
    return f"{network}.0.10"


def wait_dns(c: Cluster, count: int = 2, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        slices = c.get(
            "endpointslices", "-n", "kube-system", "-l", "kubernetes.io/service-name=kube-dns"
        )
        ips = ready_dns_endpoints(slices)
        if len(ips) == count or time.monotonic() > deadline:
            assert len(ips) == count, f"kube-dns endpoints {ips}, wanted {count}"
            return ips
        time.sleep(0.1)


@pytest.fixture(scope="module")
def addon(cluster: Cluster) -> dict[str, Any]:
    """Whether ``svcnet up`` deployed the add-on (deployed here otherwise, so that the rest is
    still proven), then both replicas ready."""
    c = cluster
    by_up = (
        c.kubectl("get", "service", "kube-dns", "-n", "kube-system", check=False).returncode == 0
    )
    if not by_up:
        subprocess.run(
            [PY, "-m", "svcnet.cluster.addons", "--data-dir", str(c.data_dir)],
            check=True,
            capture_output=True,
        )
    pod_ips = wait_dns(c)
    ready_at = time.monotonic()
    # From ready endpoints to an answer on the ClusterIP: the node proxy's programming time.
    programmed = None
    while time.monotonic() - ready_at < 10:
        if cluster_ip_answers(dns_ip(c)):
            programmed = time.monotonic() - ready_at
            break
        time.sleep(0.05)
    return {"by_up": by_up, "pod_ips": pod_ips, "programmed": programmed}


def cluster_ip_answers(ip: str) -> bool:
    q = dns.message.make_query(f"kubernetes.default.svc.{ZONE}", "A")
    try:
        return bool(dns.query.udp(q, ip, timeout=0.2).answer)
    except (dns.exception.Timeout, OSError):
        return False


def query(c: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return c.svcnet("dns", "query", *c.cluster_args(), *args, check=False)


@pytest.mark.e2e
def test_svcnet_up_deploys_the_dns_addon(cluster: Cluster, addon: dict[str, Any]) -> None:
    assert addon["by_up"], "svcnet up did not create kube-system/kube-dns"


@pytest.mark.e2e
def test_cluster_ip_answers_once_the_endpoints_are_ready(
    cluster: Cluster, addon: dict[str, Any]
) -> None:
    # How soon (network programming latency) is bench/proxy/latency.py's question.
    assert addon["programmed"] is not None, "the ClusterIP never answered"


@pytest.mark.e2e
def test_dns_kubeconfig_is_private_and_names_the_gateway(
    cluster: Cluster, addon: dict[str, Any]
) -> None:
    path = cluster.data_dir / "addons" / "kube-dns.kubeconfig"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    gateway = cluster.underlay_cidr.replace(".0/24", ".1")
    server = yaml.safe_load(path.read_text())["clusters"][0]["cluster"]["server"]
    assert server == f"https://{gateway}:{cluster.port}"


@pytest.mark.e2e
def test_dns_server_reads_the_api_as_its_own_service_account(
    cluster: Cluster, addon: dict[str, Any]
) -> None:
    path = cluster.data_dir / "addons" / "kube-dns.kubeconfig"
    token = yaml.safe_load(path.read_text())["users"][0]["user"]["token"]
    who = cluster.kubectl(
        "auth", "whoami", "--token", token, "-o", "jsonpath={.status.userInfo.username}"
    )
    assert who.stdout == "system:serviceaccount:kube-system:kube-dns"
    assert cluster.kubectl("get", "endpointslices", "-A", "--token", token).returncode == 0
    refused = cluster.kubectl("get", "secrets", "-A", "--token", token, check=False)
    assert refused.stderr.strip() == (
        "Error from server (Forbidden): secrets is forbidden: User"
        ' "system:serviceaccount:kube-system:kube-dns" cannot list resource "secrets" in API'
        ' group "" at the cluster scope'
    )


@pytest.mark.e2e
def test_query_answers_through_the_cluster_ip(cluster: Cluster, addon: dict[str, Any]) -> None:
    res = query(cluster, "kubernetes")
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    kubernetes = cluster.get("service", "kubernetes")["spec"]["clusterIP"]
    assert ";; ->>HEADER<<- opcode: QUERY, status: NOERROR" in out[0]
    assert f"kubernetes.default.svc.{ZONE}. 5 IN A {kubernetes}" in out
    assert out[-1] == f";; SERVER: {dns_ip(cluster)}#53 (kube-dns ClusterIP)"


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "want"),
    [
        (["kubernetes.default", "--short"], "{kubernetes}"),
        (["kube-dns", "-n", "kube-system", "--short"], "{dns}"),
        (["_https._tcp.kubernetes.default", "SRV", "--short"], "0 100 443 kubernetes.default.svc.cluster.local."),
        (["{dns}", "PTR", "--short"], "kube-dns.kube-system.svc.cluster.local."),
    ],
)  # fmt: skip
def test_query_types_and_namespaces(
    cluster: Cluster, addon: dict[str, Any], args: list[str], want: str
) -> None:
    facts = {
        "kubernetes": cluster.get("service", "kubernetes")["spec"]["clusterIP"],
        "dns": dns_ip(cluster),
    }
    res = query(cluster, *(a.format(**facts) for a in args))
    assert res.stdout.strip() == want.format(**facts), res.stderr


@pytest.mark.e2e
def test_query_outside_the_zone_fails_at_once_without_upstream(
    cluster: Cluster, addon: dict[str, Any]
) -> None:
    started = time.monotonic()
    res = query(cluster, "example.test.")
    assert "status: SERVFAIL" in res.stdout
    assert time.monotonic() - started < 3.0  # no resolver waited on: the cluster is sealed


@pytest.fixture
def cluster_ip_blocked(cluster: Cluster) -> Iterator[None]:
    """Drop DNS to kube-dns's ClusterIP in the first node (where the machine routes the service
    range), in a table of this test's own that runs before the proxy's."""
    ns = f"{cluster.name}-node-1"
    table = f"{cluster.name}dnsblock"
    script = (
        f"table ip {table} {{\n chain pre {{\n  type filter hook prerouting priority -400;\n"
        f"  ip daddr {dns_ip(cluster)} meta l4proto {{ tcp, udp }} th dport 53 drop\n }}\n}}\n"
    )
    subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "-f", "-"], input=script, text=True, check=True
    )
    try:
        yield
    finally:
        subprocess.run(
            ["ip", "netns", "exec", ns, "nft", "delete", "table", "ip", table], check=False
        )


@pytest.mark.e2e
def test_query_falls_back_to_the_dns_pods_when_the_cluster_ip_does_not_answer(
    cluster: Cluster, addon: dict[str, Any], cluster_ip_blocked: None
) -> None:
    res = query(cluster, "kubernetes.default")
    assert res.returncode == 0, res.stderr
    assert f";; {dns_ip(cluster)} (kube-dns ClusterIP): no answer" in res.stderr
    server = res.stdout.splitlines()[-1]
    assert any(server.startswith(f";; SERVER: {ip}#53 (kube-dns pod") for ip in addon["pod_ips"])
    assert "status: NOERROR" in res.stdout


UPSTREAM_ZONE = """
apiVersion: v1
kind: Service
metadata: {name: www, namespace: corp}
spec: {clusterIP: 198.51.100.80, ports: [{port: 80}]}
"""


@pytest.mark.e2e
def test_upstream_dns_answers_names_outside_the_zone(
    cluster: Cluster, addon: dict[str, Any], tmp_path: Path
) -> None:
    """The add-on redeployed with an upstream (what ``svcnet up --upstream-dns`` passes): a
    name of another zone is forwarded to it. The upstream is a DNS server in a pod."""
    c = cluster
    objs = tmp_path / "upstream.yaml"
    objs.write_text(UPSTREAM_ZONE)
    c.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: upstream, labels: {{app: upstream}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: dns
    image: svcnet/dns
    command: [{PY}, -m, svcnet.dns, --zone, example.test, --listen, "0.0.0.0:53", --objects, {objs}]
    volumeMounts: [{{name: zone, mountPath: {tmp_path}, readOnly: true}}]
  volumes: [{{name: zone, hostPath: {{path: {tmp_path}, type: Directory}}}}]
""")  # fmt: skip
    pod = c.wait_for(
        "pod/upstream",
        lambda p: p["status"].get("podIP") and p["status"].get("phase") == "Running",
        60,
    )
    upstream = pod["status"]["podIP"]
    try:
        subprocess.run(
            [PY, "-m", "svcnet.cluster.addons", "--data-dir", str(c.data_dir), "--upstream-dns", upstream],
            check=True, capture_output=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            res = query(c, "www.corp.svc.example.test.", "--short")
            if res.stdout.strip() == "198.51.100.80" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert res.stdout.strip() == "198.51.100.80", res.stdout + res.stderr
    finally:
        subprocess.run(
            [PY, "-m", "svcnet.cluster.addons", "--data-dir", str(c.data_dir)], check=False
        )
        c.kubectl("delete", "pod", "upstream", "--wait=false", check=False)
