"""The network-debugging one-liners of every tutorial, with the real kubectl against a real
cluster: ``kubectl run t --rm -i --image=busybox --restart=Never -- nslookup web`` and its
``-it`` form on a terminal.

What a real cluster prints is the reference, including what is busybox's own doing: its
nslookup (1.28 and later; the image here is Debian's busybox-static 1.35) asks A and AAAA of
``web`` under every search domain at once and exits 1 when any answer is NXDOMAIN. CoreDNS
answers ``web.svc.cluster.local`` (no namespace "web") and ``web.cluster.local`` (no ``svc`` or
``pod`` label) with NXDOMAIN, so against CoreDNS too ``nslookup web`` prints the address and
exits 1 (docker-library/busybox#48, #61); ``nslookup web.default.svc.cluster.local`` exits 0.

A container this short ends before kubectl attaches (svcnet reports Running as the container
starts, kubelet a PLEG relist later): the first attach of a finished instance is served its
output from the log, so kubectl prints it without "couldn't attach" and then reads the exit
code from the pod's status, as upstream's ``kubectl run`` does.

Ranges: the cluster fixture's (a random /24 of 172.29.0.0/16 underlay, pods in 10.160/12).
"""

from __future__ import annotations

import subprocess

import pytest
from cluster_fixture import KUBECTL, Cluster, svcnet_cluster  # noqa: F401 - the fixture
from terminal import in_terminal

from svcnet.testing.polling import eventually_sync

pytestmark = pytest.mark.e2e

SPDY = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}
TRANSPORTS = {"websocket": {}, "spdy": SPDY}


def test_the_cluster_dns_answers_from_every_node_once_up_returns(
    svcnet_cluster: Cluster,  # noqa: F811 - the fixture
) -> None:
    """First in the module, so it runs as `svcnet up` returns: no "connection refused" for the
    first lookup of a pod started now (up waits for the DNS as `kind create cluster --wait`)."""
    c = svcnet_cluster
    dns_ip = c.get("svc", "kube-dns", "-n", "kube-system")["spec"]["clusterIP"]
    api_ip = c.get("svc", "kubernetes")["spec"]["clusterIP"]
    for i in range(1, c.nodes + 1):
        res = subprocess.run(
            ["ip", "netns", "exec", f"{c.name}-node-{i}", "dig", "+short", "+time=1", "+tries=1",
             f"@{dns_ip}", "kubernetes.default.svc.cluster.local"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert res.stdout.split() == [api_ip], (i, res.stdout, res.stderr)


@pytest.fixture(scope="module")
def web(svcnet_cluster: Cluster) -> Cluster:  # noqa: F811 - the fixture
    """Deployment ``web`` (2 nginx pods) behind Service ``web`` port 80, as the tutorials."""
    c = svcnet_cluster
    c.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2")
    c.kubectl("expose", "deployment", "web", "--port=80")
    c.wait_for("deployment/web", lambda d: (d.get("status") or {}).get("readyReplicas") == 2, 60.0)
    return c


def cluster_ip(c: Cluster) -> str:
    return str(c.get("svc", "web")["spec"]["clusterIP"])


def answer(ip: str) -> str:
    """busybox nslookup's lines for the Service's A record."""
    return f"Name:\tweb.default.svc.cluster.local\nAddress: {ip}\n"


def gone(c: Cluster, name: str) -> bool:
    res = c.kubectl("get", "pod", name, "-o", "name", check=False)
    return res.returncode != 0 and "NotFound" in res.stderr


def run_busybox(
    c: Cluster, name: str, env: dict[str, str], *argv: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBECTL, "run", name, "--rm", "-i", "--image=busybox", "--restart=Never", "--", *argv],
        capture_output=True,
        text=True,
        env={**c.env(), **env},
        timeout=90,
        check=False,
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_nslookup_web_prints_the_cluster_ip_and_the_pod_goes(web: Cluster, transport: str) -> None:
    name = f"t-{transport}"
    res = run_busybox(web, name, TRANSPORTS[transport], "nslookup", "web")
    assert answer(cluster_ip(web)) in res.stdout, (res.stdout, res.stderr)
    assert "couldn't attach" not in res.stderr, res.stderr
    # busybox's verdict on CoreDNS's NXDOMAIN for the other search names (module docstring)
    assert "** server can't find web.svc.cluster.local: NXDOMAIN" in res.stdout
    assert res.returncode == 1 and f"pod default/{name} terminated (Error)" in res.stderr
    assert f'pod "{name}" deleted' in res.stdout
    eventually_sync(lambda: gone(web, name), 30.0, what=f"pod {name} gone")


def test_nslookup_of_the_full_name_exits_0(web: Cluster) -> None:
    res = run_busybox(web, "full", {}, "nslookup", "web.default.svc.cluster.local")
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert answer(cluster_ip(web)) in res.stdout
    assert "couldn't attach" not in res.stderr, res.stderr
    eventually_sync(lambda: gone(web, "full"), 30.0, what="pod full gone")


def test_a_short_container_output_and_exit_code_reach_kubectl_run(web: Cluster) -> None:
    res = run_busybox(web, "short", {}, "sh", "-c", "echo out; echo err >&2; exit 7")
    assert res.returncode == 7, res.stderr
    assert "out\n" in res.stdout and "err\n" in res.stderr, (res.stdout, res.stderr)
    assert "couldn't attach" not in res.stderr, res.stderr


def test_nslookup_on_a_terminal_prints_the_address(web: Cluster) -> None:
    """`kubectl run tmp --rm -it --image=busybox -- nslookup web` (restartPolicy Always: kubectl
    returns once the attach ends and deletes the pod, exit code 0 whatever busybox said)."""
    out, code = in_terminal(
        web, ["run", "tmp", "--rm", "-it", "--image=busybox", "--", "nslookup", "web"], []
    )
    assert code == 0, out
    text = out.replace("\r\n", "\n")
    assert answer(cluster_ip(web)) in text, out
    assert 'pod "tmp" deleted' in text, out
    assert "couldn't attach" not in text, out
    eventually_sync(lambda: gone(web, "tmp"), 30.0, what="pod tmp gone")
