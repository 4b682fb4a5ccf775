"""Workload controllers on a real 2-node cluster: the pod-IP churn that Services exist for.

One ``svcnet up --nodes 2`` for the module (cluster_fixture: its own /24 of 172.29.0.0/16 as
underlay, a /16 of 10.160.0.0/12 for pods, a /16 of 10.176.0.0/12 for services, its own API
port and kubeconfig; ``svcnet down`` and a leak check at the end). Everything goes through
the real kubectl and the real scheduler (no spec.nodeName): Deployments spread, replaced pods
get new names and IPs, a rolling update renews every IP, a stopped node's pods are evicted
and recreated elsewhere, a StatefulSet keeps its pods' names and hostnames, pods on different
nodes talk with their source IP kept, and a pod nothing fits stays Pending with the
scheduler's FailedScheduling message. Each test deletes what it created, also on failure.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cluster_fixture import KUBECTL, Cluster
from cluster_fixture import svcnet_cluster as svcnet_cluster

pytestmark = pytest.mark.e2e

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"
# How long the node lifecycle controller waits before evicting: node grace (3 s) plus the
# default not-ready/unreachable toleration (20 s) the API server adds to every pod, plus slack
# for the replacement to start and become Ready on a 2-core machine.
EVICTION_TIMEOUT = 60.0


@pytest.fixture
def cluster(svcnet_cluster: Cluster) -> Cluster:
    return svcnet_cluster


@pytest.fixture
def cleanup(cluster: Cluster) -> Iterator[list[str]]:
    """Objects ("kind/name") a test registers here are deleted after it, pass or fail."""
    objects: list[str] = []
    yield objects
    if objects:
        cluster.kubectl("delete", "--ignore-not-found", "--wait=false", *objects, check=False)


def deployment(name: str, replicas: int, extra_spec: str = "") -> str:
    # A readiness probe on netexec's /healthz, so "Ready" means the server really answers.
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
{extra_spec}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: {AGNHOST}
        args: [netexec, --http-port=8080]
        readinessProbe:
          httpGet: {{path: /healthz, port: 8080}}
          periodSeconds: 1
"""


def ready(obj: dict[str, Any]) -> bool:
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def live(pods: dict[str, Any]) -> list[dict[str, Any]]:
    """Pods of a list that are not being deleted."""
    return [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]


def all_ready(n: int) -> Callable[[dict[str, Any]], bool]:
    def check(pods: dict[str, Any]) -> bool:
        items = live(pods)
        return len(pods["items"]) == n and len(items) == n and all(ready(p) for p in items)

    return check


def pods_of(cluster: Cluster, app: str) -> list[dict[str, Any]]:
    return live(cluster.get("pods", "-l", f"app={app}"))


def pod_cidrs(cluster: Cluster) -> dict[str, ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return {
        n["metadata"]["name"]: ipaddress.ip_network(n["spec"]["podCIDR"])
        for n in cluster.get("nodes")["items"]
    }


def node_ready_status(node: dict[str, Any]) -> str:
    conds = (node.get("status") or {}).get("conditions") or []
    return next((str(c["status"]) for c in conds if c["type"] == "Ready"), "")


def pod_processes(uid: str) -> list[int]:
    """PIDs in the pod's network namespace (named after its uid), i.e. its real processes."""
    out: list[int] = []
    for name in os.listdir("/run/netns"):
        if uid in name:
            res = subprocess.run(
                ["ip", "netns", "pids", name], capture_output=True, text=True, check=False
            )
            out += [int(p) for p in res.stdout.split()]
    return out


def fetch(cluster: Cluster, pod: str, url: str) -> str:
    """GET ``url`` from inside ``pod`` (python in the container, through kubectl exec)."""
    code = (
        f"import urllib.request; print(urllib.request.urlopen('{url}', timeout=3).read().decode())"
    )
    res = cluster.kubectl("exec", pod, "--", "python3", "-S", "-c", code, check=False)
    assert res.returncode == 0, f"exec {pod}: {res.stdout}{res.stderr}"
    return res.stdout.strip()


def test_deployment_of_three_spreads_over_both_nodes_with_ips_in_their_pod_cidr(
    cluster: Cluster, cleanup: list[str]
) -> None:
    c = cluster
    cleanup.append("deployment/spread")
    c.apply(deployment("spread", 3))
    c.wait_for("pods", all_ready(3), 30, "-l", "app=spread")
    pods = pods_of(c, "spread")
    cidrs = pod_cidrs(c)
    assert {p["spec"]["nodeName"] for p in pods} == {"node-1", "node-2"}
    for p in pods:
        assert p["status"]["phase"] == "Running"
        assert ipaddress.ip_address(p["status"]["podIP"]) in cidrs[p["spec"]["nodeName"]], p
        assert pod_processes(p["metadata"]["uid"]), f"no process for {p['metadata']['name']}"
    assert len({p["status"]["podIP"] for p in pods}) == 3
    dep = c.wait_for("deployment/spread", lambda d: d["status"].get("readyReplicas") == 3)
    assert dep["status"]["availableReplicas"] == 3


def test_deleting_a_pod_gets_a_replacement_with_a_new_name_and_ip(
    cluster: Cluster, cleanup: list[str]
) -> None:
    c = cluster
    cleanup.append("deployment/replace")
    c.apply(deployment("replace", 2))
    c.wait_for("pods", all_ready(2), 30, "-l", "app=replace")
    before = {p["metadata"]["name"]: p["status"]["podIP"] for p in pods_of(c, "replace")}
    victim = sorted(before)[0]
    c.kubectl("delete", "pod", victim, "--wait=false")
    after_list = c.wait_for(
        "pods",
        lambda ps: all_ready(2)(ps) and victim not in {p["metadata"]["name"] for p in ps["items"]},
        30,
        "-l",
        "app=replace",
    )
    after = {p["metadata"]["name"]: p["status"]["podIP"] for p in live(after_list)}
    (new_name,) = set(after) - set(before)
    assert new_name != victim
    assert after[new_name] not in before.values()
    survivor = next(n for n in before if n != victim)
    assert after[survivor] == before[survivor]


def rollout_watching_pods(
    cluster: Cluster, app: str
) -> tuple[subprocess.CompletedProcess[str], list[tuple[int, int]]]:
    """``kubectl rollout status`` while polling the pods: (Ready, not terminating) per poll."""
    proc = subprocess.Popen(
        [KUBECTL, "rollout", "status", f"deploy/{app}", "--timeout=60s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cluster.env(),
    )
    during: list[tuple[int, int]] = []
    try:
        while proc.poll() is None:
            items = pods_of(cluster, app)
            during.append((sum(ready(p) for p in items), len(items)))
            time.sleep(0.05)
        out, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), during


def test_rolling_update_changes_every_pod_ip_and_undo_rolls_back(
    cluster: Cluster, cleanup: list[str]
) -> None:
    c = cluster
    cleanup.append("deployment/roll")
    c.apply(
        deployment(
            "roll",
            3,
            "  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}",
        )
    )
    c.kubectl("rollout", "status", "deploy/roll", "--timeout=40s", timeout=45)
    c.wait_for("pods", all_ready(3), 20, "-l", "app=roll")
    old = {p["metadata"]["uid"]: p["status"]["podIP"] for p in pods_of(c, "roll")}

    c.kubectl("set", "env", "deploy/roll", "FOO=bar")
    status, during = rollout_watching_pods(c, "roll")
    assert status.returncode == 0, status.stdout + status.stderr
    assert 'deployment "roll" successfully rolled out' in status.stdout
    # maxUnavailable 0 / maxSurge 1 with readiness: never fewer than 3 Ready, never more than
    # 4 pods that are not terminating (terminating pods do not count, as upstream).
    assert min(r for r, _ in during) >= 3, during
    assert max(t for _, t in during) <= 4, during
    assert max(t for _, t in during) == 4, "the rollout never surged"
    new_list = c.wait_for(
        "pods",
        lambda ps: (
            all_ready(3)(ps) and not ({p["metadata"]["uid"] for p in ps["items"]} & set(old))
        ),
        20,
        "-l",
        "app=roll",
    )
    new_ips = {p["status"]["podIP"] for p in live(new_list)}
    assert len(new_ips) == 3
    assert not (new_ips & set(old.values())), (old, new_ips)
    for p in live(new_list):
        env = p["spec"]["containers"][0].get("env") or []
        assert {"name": "FOO", "value": "bar"} in env

    history = c.kubectl("rollout", "history", "deploy/roll").stdout
    revisions = [ln.split()[0] for ln in history.splitlines() if ln[:1].isdigit()]
    assert revisions == ["1", "2"], history

    c.kubectl("rollout", "undo", "deploy/roll")
    c.kubectl("rollout", "status", "deploy/roll", "--timeout=60s", timeout=65)
    dep = c.get("deployment", "roll")
    assert not dep["spec"]["template"]["spec"]["containers"][0].get("env")
    # Upstream moves the rolled-back-to revision 1 to the next number: history is now 2, 3.
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    history = c.kubectl("rollout", "history", "deploy/roll").stdout
    revisions = [ln.split()[0] for ln in history.splitlines() if ln[:1].isdigit()]
    assert revisions == ["2", "3"], history
    back = c.wait_for(
        "pods",
        lambda ps: (
            all_ready(3)(ps) and all(not p["spec"]["containers"][0].get("env") for p in ps["items"])
        ),
        20,
        "-l",
        "app=roll",
    )
    assert not ({p["status"]["podIP"] for p in live(back)} & new_ips)


def test_pods_on_different_nodes_reach_each_other_and_see_the_senders_pod_ip(
    cluster: Cluster, cleanup: list[str]
) -> None:
    c = cluster
    cleanup.append("deployment/talk")
    c.apply(deployment("talk", 2))
    c.wait_for("pods", all_ready(2), 30, "-l", "app=talk")
    a, b = pods_of(c, "talk")
    assert a["spec"]["nodeName"] != b["spec"]["nodeName"], "the scheduler did not spread 2 pods"
    for src, dst in ((a, b), (b, a)):
        dst_ip = dst["status"]["podIP"]
        seen = fetch(c, src["metadata"]["name"], f"http://{dst_ip}:8080/clientip")
        assert seen.rsplit(":", 1)[0] == src["status"]["podIP"], (src["spec"]["nodeName"], seen)
        res = c.kubectl(
            "exec",
            src["metadata"]["name"],
            "--",
            "agnhost",
            "connect",
            f"{dst_ip}:8080",
            "--timeout=3s",
            check=False,
        )
        assert res.returncode == 0, res.stdout + res.stderr


def test_stopped_node_pods_are_recreated_on_the_other_node_and_it_comes_back(
    cluster: Cluster, cleanup: list[str]
) -> None:
    c = cluster
    cleanup.append("deployment/evict")
    c.apply(deployment("evict", 4))
    c.wait_for("pods", all_ready(4), 30, "-l", "app=evict")
    before = pods_of(c, "evict")
    on_node2 = {p["metadata"]["uid"]: p for p in before if p["spec"]["nodeName"] == "node-2"}
    assert on_node2, "the scheduler put none of 4 replicas on node-2"
    old_ips = {p["status"]["podIP"] for p in before}
    node1_cidr = pod_cidrs(c)["node-1"]

    stopped_at = time.monotonic()
    c.svcnet("node", "stop", "node-2", *c.cluster_args())
    try:
        c.wait_for("node/node-2", lambda n: node_ready_status(n) == "Unknown", 15)
        unknown_after = time.monotonic() - stopped_at
        after = c.wait_for(
            "pods",
            lambda ps: (
                all_ready(4)(ps) and all(p["spec"]["nodeName"] == "node-1" for p in ps["items"])
            ),
            EVICTION_TIMEOUT,
            "-l",
            "app=evict",
        )
        replaced_after = time.monotonic() - stopped_at
        items = live(after)
        uids = {p["metadata"]["uid"] for p in items}
        assert not (uids & set(on_node2))
        fresh = [
            p for p in items if p["metadata"]["uid"] not in {b["metadata"]["uid"] for b in before}
        ]
        assert len(fresh) == len(on_node2)
        for p in fresh:
            assert p["status"]["podIP"] not in old_ips
            assert ipaddress.ip_address(p["status"]["podIP"]) in node1_cidr
        # The eviction waited for the default toleration, not less (grace 3 s + 20 s).
        assert replaced_after >= 20, f"pods replaced {replaced_after:.1f}s after the stop"
        print(f"node Unknown after {unknown_after:.1f}s, pods replaced after {replaced_after:.1f}s")
    finally:
        c.svcnet("node", "start", "node-2", *c.cluster_args())
    started_at = time.monotonic()
    c.wait_for("node/node-2", lambda n: node_ready_status(n) == "True", 60)
    print(f"node-2 Ready again {time.monotonic() - started_at:.1f}s after start")
    # The evicted pods were deleted from the API while the node was away: the returning
    # agent must not run them again.
    time.sleep(2)
    for uid in on_node2:
        assert not pod_processes(uid), f"evicted pod {on_node2[uid]['metadata']['name']} runs"


STATEFULSET = f"""
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  clusterIP: None
  selector: {{app: web}}
  ports: [{{name: http, port: 8080}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: web}}
spec:
  serviceName: web
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: {AGNHOST}
        args: [netexec, --http-port=8080]
        readinessProbe:
          httpGet: {{path: /healthz, port: 8080}}
          initialDelaySeconds: 1
          periodSeconds: 1
"""


@pytest.fixture(scope="module")
def web(svcnet_cluster: Cluster) -> Iterator[list[tuple[bool, bool]]]:
    """The StatefulSet ``web`` created once for the module and watched until both pods are
    Ready; yields what each poll saw on the way: (web-0 Ready, web-1 exists)."""
    cluster = svcnet_cluster
    seen: list[tuple[bool, bool]] = []
    try:
        cluster.apply(STATEFULSET)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            pods = {p["metadata"]["name"]: p for p in live(cluster.get("pods", "-l", "app=web"))}
            seen.append(("web-0" in pods and ready(pods["web-0"]), "web-1" in pods))
            if len(pods) == 2 and all(ready(p) for p in pods.values()):
                break
            time.sleep(0.1)
        yield seen
    finally:
        cluster.kubectl("delete", "--ignore-not-found", "statefulset/web", "service/web")
        cluster.kubectl("delete", "pods", "-l", "app=web", "--ignore-not-found", "--wait=false")


def test_statefulset_creates_web_1_only_after_web_0_is_ready(
    web: list[tuple[bool, bool]],
) -> None:
    assert web[-1] == (True, True), web[-5:]
    assert (False, False) in web, "never saw web-0 not yet Ready: the order was not observed"
    assert (False, True) not in web, "web-1 existed while web-0 was not Ready"


def test_statefulset_pods_have_their_names_as_hostnames(
    cluster: Cluster, web: list[tuple[bool, bool]]
) -> None:
    for name in ("web-0", "web-1"):
        res = cluster.kubectl("exec", name, "--", "hostname", check=False)
        assert res.stdout.strip() == name, res.stderr
        pod = cluster.get("pod", name)
        assert pod["spec"]["hostname"] == name
        assert pod["spec"]["subdomain"] == "web"
        hosts = cluster.kubectl("exec", name, "--", "cat", "/etc/hosts").stdout
        fqdn = f"{name}.web.default.svc.cluster.local"
        assert f"{pod['status']['podIP']}\t{fqdn}\t{name}" in hosts, hosts


def test_deleted_statefulset_pod_comes_back_with_the_same_name_and_hostname(
    cluster: Cluster, web: list[tuple[bool, bool]]
) -> None:
    c = cluster
    old_uid = c.get("pod", "web-1")["metadata"]["uid"]
    c.kubectl("delete", "pod", "web-1", "--wait=false")
    pod = c.wait_for(
        "pod/web-1",
        lambda p: (
            p["metadata"]["uid"] != old_uid
            and not p["metadata"].get("deletionTimestamp")
            and ready(p)
        ),
        30,
    )
    assert pod["metadata"]["name"] == "web-1"
    res = c.kubectl("exec", "web-1", "--", "hostname", check=False)
    assert res.stdout.strip() == "web-1", res.stderr


def test_pod_that_fits_no_node_stays_pending_with_failed_scheduling(
    cluster: Cluster, cleanup: list[str]
) -> None:
    c = cluster
    cleanup.append("pod/nowhere")
    c.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: nowhere}}
spec:
  nodeSelector: {{disktype: svcnet-e2e-none}}
  containers:
  - {{name: c, image: "{AGNHOST}", args: [netexec]}}
""")
    pod = c.wait_for(
        "pod/nowhere",
        lambda p: any(
            cd["type"] == "PodScheduled" and cd["status"] == "False"
            for cd in (p.get("status") or {}).get("conditions") or []
        ),
        20,
    )
    cond = next(cd for cd in pod["status"]["conditions"] if cd["type"] == "PodScheduled")
    assert cond["reason"] == "Unschedulable"
    assert pod["status"]["phase"] == "Pending"
    assert not pod["spec"].get("nodeName")
    deadline = time.monotonic() + 15
    described = ""
    while time.monotonic() < deadline:
        described = c.kubectl("describe", "pod", "nowhere").stdout
        if "FailedScheduling" in described:
            break
        time.sleep(0.3)
    assert "FailedScheduling" in described, described
    # Upstream's wording (framework.FitError + nodeaffinity.ErrReasonPod).
    assert (
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector" in described
    ), described
