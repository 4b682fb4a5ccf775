"""Services end to end: ``svcnet up --nodes 2``, the real kubectl, the tutorial's manifests from
``examples/services/`` and real traffic from client pods and from the machine.

Ranges and names: see cluster_fixture (a unique cluster for this module: its own /24 underlay
U, so node-N is U.(10+N), /16 pod and service ranges and API port). The LoadBalancer pool is
set by the ConfigMap ``kube-system/svcnet-lb-pools`` to the address the ingress add-on's Service
already holds plus ONE more: ``web-lb`` takes that one and a second LoadBalancer Service finds the
pool exhausted.

Traffic from "a client pod" runs inside client pods pinned to each node (``svcnet exec``), with
``python -m svcnet.testing.loadgen`` for HTTP (one new connection per request, every failure
counted) and small inline scripts for UDP and for timing a refusal. The tests run in file order
on one cluster; the ones that disturb it (pod deletion, rolling update, node stop) come last.

Set ``SVCNET_E2E_CLUSTER=<data dir>`` to run against an already running cluster instead of
making one (no up/down and no leak check then; for debugging).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cluster_fixture import Cluster, running_cluster

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "services"
PY = sys.executable  # pods run commands on the node's filesystem: the venv's python is there
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"
NODES = ("node-1", "node-2")
LB_HOSTS = range(240, 255)  # the cluster's LoadBalancer pool: <underlay>.240/28
INGRESS = ("svcnet-ingress-controller", "-n", "svcnet-ingress")


# -- the cluster -------------------------------------------------------------------------------


def _reuse(data_dir: str) -> Cluster:
    cfg = json.loads((Path(data_dir) / "state" / "cluster.json").read_text())
    kubeconfig = Path((Path(data_dir) / "state" / "kubeconfig-target").read_text().strip())
    return Cluster(
        name=cfg["name"],
        nodes=cfg["nodes"],
        data_dir=Path(data_dir),
        kubeconfig=kubeconfig,
        port=cfg["port"],
        underlay_cidr=cfg["underlay_cidr"],
        pod_cidr=cfg["pod_cidr"],
        service_cidr=cfg["service_cidr"],
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if os.environ.get("SVCNET_E2E_CLUSTER"):
        yield _reuse(os.environ["SVCNET_E2E_CLUSTER"])
        return
    with running_cluster(tmp_path_factory.mktemp("svcnet-services"), nodes=2) as c:
        yield c


def underlay_host(cluster: Cluster, host: int) -> str:
    return cluster.underlay_cidr.rsplit(".", 1)[0] + f".{host}"


def node_ip(cluster: Cluster, node: str) -> str:
    return underlay_host(cluster, 10 + int(node.rsplit("-", 1)[1]))


def node_netns(cluster: Cluster, node: str) -> str:
    return f"{cluster.name}-node-{node.rsplit('-', 1)[1]}"


# -- manifests beside the examples -----------------------------------------------------------


def client_pod(name: str, node: str) -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{role: client}}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {AGNHOST}
    args: ["netexec", "--http-port=8080", "--udp-port=-1"]
"""


EXTRAS = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: echo}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: echo}}}}
  template:
    metadata: {{labels: {{app: echo}}}}
    spec:
      nodeName: node-1
      terminationGracePeriodSeconds: 1
      containers:
      - name: echo
        image: {AGNHOST}
        args: ["netexec", "--http-port=8080", "--udp-port=-1"]
        ports: [{{containerPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: echo-local}}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  selector: {{app: echo}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: echo-cluster}}
spec:
  type: NodePort
  externalTrafficPolicy: Cluster
  selector: {{app: echo}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: udp-echo}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: udp-echo}}}}
  template:
    metadata: {{labels: {{app: udp-echo}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: udp
        image: {AGNHOST}
        args: ["serve-hostname", "--udp", "--http=false", "--port=9376"]
---
apiVersion: v1
kind: Service
metadata: {{name: udp-echo}}
spec:
  selector: {{app: udp-echo}}
  ports: [{{port: 53, targetPort: 9376, protocol: UDP}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web-sticky}}
spec:
  selector: {{app: web}}
  sessionAffinity: ClientIP
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: no-backends}}
spec:
  selector: {{app: nothing-has-this-label}}
  ports: [{{port: 80, targetPort: 8080}}]
"""


# -- helpers ---------------------------------------------------------------------------------


def eventually(what: str, fn: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def is_ready(pod: dict[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def ready_pods(cluster: Cluster, selector: str) -> list[dict[str, Any]]:
    return [p for p in cluster.get("pods", "-l", selector)["items"] if is_ready(p)]


def wait_ready(cluster: Cluster, selector: str, count: int, timeout: float = 90) -> list[str]:
    pods = eventually(
        f"{count} ready pods {selector}",
        lambda: (lambda ps: ps if len(ps) == count else None)(ready_pods(cluster, selector)),
        timeout,
        0.5,
    )
    return sorted(p["metadata"]["name"] for p in pods)


def in_pod(cluster: Cluster, pod: str, *argv: str, timeout: float = 90) -> str:
    """Run ``argv`` in ``pod`` (svcnet exec: through the node agent) and return its stdout."""
    res = cluster.svcnet(
        "exec", *cluster.cluster_args(), pod, "--", *argv, check=False, timeout=timeout
    )
    if not res.stdout.strip():
        raise AssertionError(f"exec in {pod} {argv}: rc={res.returncode} {res.stderr}")
    return res.stdout


def load(cluster: Cluster, pod: str, url: str, rate: float, duration: float) -> dict[str, Any]:
    out = in_pod(
        cluster, pod, PY, "-m", "svcnet.testing.loadgen", url,
        "--rate", str(rate), "--duration", str(duration), "--timeout", "2",
    )  # fmt: skip
    summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return summary


def cluster_ip(cluster: Cluster, svc: str) -> str:
    return str(cluster.get("svc", svc)["spec"]["clusterIP"])


def node_port(cluster: Cluster, svc: str) -> int:
    return int(cluster.get("svc", svc)["spec"]["ports"][0]["nodePort"])


def http_get(url: str, timeout: float = 2.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return str(resp.read().decode())


def try_get(url: str, timeout: float) -> str | None:
    try:
        return http_get(url, timeout)
    except (urllib.error.URLError, OSError):
        return None


def events_for(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    items = cluster.get("events")["items"]
    return [e for e in items if (e.get("involvedObject") or {}).get("name") == name]


def lb_ip_of(cluster: Cluster, *svc: str) -> str | None:
    ingress = ((cluster.get("svc", *svc).get("status") or {}).get("loadBalancer") or {}).get(
        "ingress"
    ) or []
    return str(ingress[0]["ip"]) if ingress and ingress[0].get("ip") else None


def eth0_addresses(cluster: Cluster, node: str) -> set[str]:
    out = subprocess.run(
        ["ip", "-n", node_netns(cluster, node), "-j", "addr", "show", "dev", "eth0"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {a["local"] for e in json.loads(out) for a in e.get("addr_info", [])}


UDP_QUERY = r"""
import collections, json, socket, sys
ip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
seen, fails = collections.Counter(), 0
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a new source port: a new flow
    s.settimeout(1)
    try:
        s.sendto(b"hostname", (ip, port))
        seen[s.recv(200).decode().strip()] += 1
    except OSError:
        fails += 1
    finally:
        s.close()
print(json.dumps({"answers": seen, "failed": fails}))
"""

CONNECT_TIMING = r"""
import json, socket, sys, time
ip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = []
for _ in range(n):
    s = socket.socket()
    s.settimeout(2)
    t0 = time.monotonic()
    try:
        s.connect((ip, port))
        what = "connected"
    except ConnectionRefusedError:
        what = "refused"
    except TimeoutError:
        what = "timeout"
    except OSError as e:
        what = f"error {e.errno}"
    out.append([what, time.monotonic() - t0])
    s.close()
print(json.dumps(out))
"""


# -- the applied tutorial ----------------------------------------------------------------------


@dataclass(frozen=True)
class Tutorial:
    cluster: Cluster
    web_pods: list[str]
    lb_ip: str


@pytest.fixture(scope="module")
def tutorial(cluster: Cluster) -> Tutorial:
    """Every manifest of examples/services applied, plus clients and the extra Services."""
    # The ingress add-on's Service holds a pool address from the start; the pool keeps it, so
    # that Service is not moved, and offers exactly one other address to the test's Services.
    ingress_ip = eventually(
        "the ingress Service's address", lambda: lb_ip_of(cluster, *INGRESS), 60
    )
    lb_ip = next(ip for h in LB_HOSTS if (ip := underlay_host(cluster, h)) != ingress_ip)
    cluster.apply(
        f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: svcnet-lb-pools, namespace: kube-system}}
data: {{default: "{ingress_ip}-{ingress_ip},{lb_ip}-{lb_ip}"}}
"""
    )
    for example in ("web.yaml", "backend-api.yaml", "nodeport.yaml", "externalname.yaml"):
        cluster.kubectl("apply", "-f", str(EXAMPLES / example))
    cluster.kubectl("apply", "-f", str(EXAMPLES / "loadbalancer.yaml"))
    cluster.apply(client_pod("client-1", "node-1") + "---" + client_pod("client-2", "node-2"))
    cluster.apply(EXTRAS)
    web = wait_ready(cluster, "app=web", 3)
    wait_ready(cluster, "app=backend-api", 2)
    wait_ready(cluster, "role=client", 2)
    wait_ready(cluster, "app=echo", 1)
    wait_ready(cluster, "app=udp-echo", 2)
    return Tutorial(cluster, web, lb_ip)


def test_every_example_is_applied_as_its_kind(tutorial: Tutorial) -> None:
    c = tutorial.cluster
    kinds = {
        s["metadata"]["name"]: (s["spec"]["type"], s["spec"].get("clusterIP"))
        for s in c.get("svc")["items"]
    }
    assert kinds["web"][0] == "ClusterIP" and kinds["web"][1]
    assert kinds["backend-api"][0] == "ClusterIP"
    assert kinds["web-nodeport"][0] == "NodePort"
    assert node_port(c, "web-nodeport") == 30080
    assert kinds["web-lb"][0] == "LoadBalancer"
    assert kinds["my-database"] == ("ExternalName", None)


def test_cluster_ip_reaches_all_three_web_pods(tutorial: Tutorial) -> None:
    c = tutorial.cluster
    got = load(c, "client-1", f"http://{cluster_ip(c, 'web')}/hostname", rate=100, duration=1.5)
    assert got["failed"] == 0, got
    assert set(got["bodies"]) == set(tutorial.web_pods), got


def test_backend_api_answers_on_its_cluster_ip(tutorial: Tutorial) -> None:
    c = tutorial.cluster
    pods = wait_ready(c, "app=backend-api", 2)
    got = load(c, "client-2", f"http://{cluster_ip(c, 'backend-api')}/hostname", 50, 1)
    assert got["failed"] == 0 and set(got["bodies"]) == set(pods), got


def test_nodeport_answers_on_every_node_from_the_machine(tutorial: Tutorial) -> None:
    c = tutorial.cluster
    for node in NODES:
        answers = {http_get(f"http://{node_ip(c, node)}:30080/hostname") for _ in range(12)}
        assert answers <= set(tutorial.web_pods) and answers, (node, answers)


def test_loadbalancer_ip_is_announced_by_one_node_and_answers_from_the_machine(
    tutorial: Tutorial,
) -> None:
    c = tutorial.cluster
    ip = eventually("web-lb's address", lambda: lb_ip_of(c, "web-lb"), 15)
    assert ip == tutorial.lb_ip
    announcer = eventually(
        "announcing node",
        lambda: (
            c.get("svc", "web-lb")["metadata"]
            .get("annotations", {})
            .get("svcnet.io/announcing-node")
        ),
        15,
    )
    holders = eventually(
        "the address on the announcing node's eth0",
        lambda: [n for n in NODES if ip in eth0_addresses(c, n)] == [announcer] or None,
        10,
    )
    assert holders
    assert http_get(f"http://{ip}/hostname") in tutorial.web_pods


def test_local_policy_keeps_the_client_ip_and_cluster_policy_works_from_any_node(
    tutorial: Tutorial,
) -> None:
    c = tutorial.cluster
    machine = underlay_host(c, 1)  # the machine's address on the underlay
    local, cluster_np = node_port(c, "echo-local"), node_port(c, "echo-cluster")
    # the echo pod runs on node-1: Local on node-1 sees the machine itself
    seen = http_get(f"http://{node_ip(c, 'node-1')}:{local}/clientip")
    assert seen.rsplit(":", 1)[0] == machine, seen
    # node-2 has no echo pod: Cluster policy still answers there (masqueraded to node-2) ...
    seen = http_get(f"http://{node_ip(c, 'node-2')}:{cluster_np}/clientip")
    assert seen.rsplit(":", 1)[0] == node_ip(c, "node-2"), seen
    # ... and Local policy does not forward to another node (kube-proxy drops it)
    assert try_get(f"http://{node_ip(c, 'node-2')}:{local}/clientip", timeout=1.0) is None


def test_session_affinity_client_ip_sticks_to_one_pod(tutorial: Tutorial) -> None:
    c = tutorial.cluster
    got = load(c, "client-2", f"http://{cluster_ip(c, 'web-sticky')}/hostname", 50, 1)
    assert got["failed"] == 0 and got["ok"] >= 45, got
    assert len(got["bodies"]) == 1, got


def test_udp_service_answers_from_its_pods(tutorial: Tutorial) -> None:
    c = tutorial.cluster
    pods = wait_ready(c, "app=udp-echo", 2)
    out = in_pod(c, "client-1", PY, "-c", UDP_QUERY, cluster_ip(c, "udp-echo"), "53", "30")
    got = json.loads(out.strip().splitlines()[-1])
    assert got["failed"] == 0, got
    assert set(got["answers"]) <= set(pods) and len(got["answers"]) == 2, got


def test_service_without_endpoints_refuses(tutorial: Tutorial) -> None:
    c = tutorial.cluster
    out = in_pod(c, "client-1", PY, "-c", CONNECT_TIMING, cluster_ip(c, "no-backends"), "80", "5")
    got = json.loads(out.strip().splitlines()[-1])
    # Refused (a reset), not dropped: a drop ends in the client's 2 s timeout instead.
    assert all(what == "refused" for what, _ in got), got


# -- bad input: each says why, and nothing else is disturbed ----------------------------------


def test_selector_matching_nothing_shows_no_endpoints(tutorial: Tutorial) -> None:
    c = tutorial.cluster
    slices = c.get("endpointslices", "-l", "kubernetes.io/service-name=no-backends")["items"]
    assert slices and all(not s.get("endpoints") for s in slices), slices
    out = c.kubectl("get", "endpoints", "no-backends").stdout
    assert "<none>" in out, out


def test_target_port_name_no_pod_defines_gets_an_event(tutorial: Tutorial) -> None:
    c = tutorial.cluster
    c.apply(
        """
apiVersion: v1
kind: Service
metadata: {name: web-badport}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: no-such-port}]
"""
    )
    event = eventually(
        "FailedToResolvePort event",
        lambda: [e for e in events_for(c, "web-badport") if e["reason"] == "FailedToResolvePort"],
        15,
    )
    assert '"no-such-port"' in event[0]["message"], event
    out = in_pod(c, "client-1", PY, "-c", CONNECT_TIMING, cluster_ip(c, "web-badport"), "80", "2")
    assert all(what == "refused" for what, _ in json.loads(out.splitlines()[-1])), out


def test_node_port_already_taken_is_rejected_with_422(tutorial: Tutorial) -> None:
    c = tutorial.cluster
    res = c.kubectl(
        "apply", "-f", "-", check=False,
        input="""
apiVersion: v1
kind: Service
metadata: {name: np-duplicate}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
""",
    )  # fmt: skip
    assert res.returncode != 0
    assert "provided port is already allocated" in res.stderr, res.stderr
    assert "is invalid" in res.stderr, res.stderr  # kubectl's rendering of a 422 Invalid
    assert c.kubectl("get", "svc", "np-duplicate", check=False).returncode != 0


def test_exhausted_pool_leaves_the_service_pending_with_an_event(tutorial: Tutorial) -> None:
    c = tutorial.cluster
    c.apply(
        """
apiVersion: v1
kind: Service
metadata: {name: lb-starved}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""
    )
    event = eventually(
        "AllocationFailed event",
        lambda: [e for e in events_for(c, "lb-starved") if e["reason"] == "AllocationFailed"],
        15,
    )
    assert event[0]["type"] == "Warning", event
    assert lb_ip_of(c, "lb-starved") is None
    assert lb_ip_of(c, "web-lb") == tutorial.lb_ip


def test_other_services_unaffected_by_the_bad_input(tutorial: Tutorial) -> None:
    c = tutorial.cluster
    got = load(c, "client-2", f"http://{cluster_ip(c, 'web')}/hostname", 100, 1)
    assert got["failed"] == 0 and set(got["bodies"]) == set(tutorial.web_pods), got
    assert http_get(f"http://{tutorial.lb_ip}/hostname") in tutorial.web_pods
    assert http_get(f"http://{node_ip(c, 'node-1')}:30080/hostname") in tutorial.web_pods


GET_FROM_POD = r"""
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])) as r:
        print("answered", r.read().decode().strip())
except OSError as e:
    print("failed", type(e).__name__)
"""


def test_load_balancer_source_ranges_admit_only_their_sources(tutorial: Tutorial) -> None:
    c = tutorial.cluster
    url = f"http://{tutorial.lb_ip}/hostname"
    machine = underlay_host(c, 1)

    def source_ranges(ranges: list[str] | None) -> None:
        patch = json.dumps({"spec": {"loadBalancerSourceRanges": ranges}})
        c.kubectl("patch", "svc", "web-lb", "--type", "merge", "-p", patch)

    def from_pod() -> str:
        return in_pod(c, "client-2", PY, "-c", GET_FROM_POD, url, "1").split()[0]

    try:
        source_ranges([f"{machine}/32"])
        # the pod's address is outside the ranges: dropped (kube-proxy filters pods as well)
        eventually("the pod dropped", lambda: from_pod() == "failed" or None, 15)
        assert try_get(url, timeout=2) in tutorial.web_pods  # the machine is inside
        source_ranges(["192.0.2.0/24"])  # now the machine is outside too
        eventually("the machine dropped", lambda: try_get(url, timeout=0.5) is None or None, 15)
    finally:
        source_ranges(None)
    eventually("the machine answered again", lambda: try_get(url, timeout=1), 15)
    assert from_pod() == "answered"


# -- churn -----------------------------------------------------------------------------------


def test_deleted_pod_is_replaced_and_the_service_answers_from_the_new_set(
    tutorial: Tutorial,
) -> None:
    c = tutorial.cluster
    before = wait_ready(c, "app=web", 3)
    c.kubectl("delete", "pod", before[0], "--wait=false")
    after = eventually(
        "a replacement web pod",
        lambda: (lambda ps: ps if len(ps) == 3 and before[0] not in ps else None)(
            wait_ready(c, "app=web", 3)
        ),
        60,
        0.5,
    )
    got = load(c, "client-1", f"http://{cluster_ip(c, 'web')}/hostname", 100, 1.5)
    assert got["failed"] == 0, got
    assert set(got["bodies"]) == set(after), got


def deployment_rolled_out(c: Cluster, name: str, replicas: int) -> bool:
    d = c.get("deploy", name)
    st = d.get("status") or {}
    return (
        st.get("observedGeneration", 0) >= d["metadata"]["generation"]
        and st.get("updatedReplicas") == replicas
        and st.get("replicas") == replicas
        and st.get("readyReplicas") == replicas
        and st.get("availableReplicas") == replicas
    )


def test_rolling_update_of_ten_replicas_under_load_fails_no_request(
    tutorial: Tutorial, tmp_path: Path
) -> None:
    c = tutorial.cluster
    # Graceful termination: the endpoint is withdrawn while preStop waits, then SIGTERM.
    c.kubectl(
        "patch", "deployment", "web", "--type=strategic", "-p",
        json.dumps({"spec": {"replicas": 10, "template": {"spec": {
            "terminationGracePeriodSeconds": 10,
            "containers": [{"name": "web", "lifecycle": {"preStop": {"sleep": {"seconds": 2}}}}],
        }}}}),
    )  # fmt: skip
    eventually("web at 10 replicas", lambda: deployment_rolled_out(c, "web", 10), 120, 0.5)
    out = tmp_path / "loadgen.json"
    url = f"http://{cluster_ip(c, 'web')}/hostname"
    c.apply(
        f"""
apiVersion: v1
kind: Pod
metadata: {{name: loadgen}}
spec:
  nodeName: node-1
  terminationGracePeriodSeconds: 10
  restartPolicy: Never
  containers:
  - name: loadgen
    image: {AGNHOST}
    command: ["{PY}", "-m", "svcnet.testing.loadgen", "{url}", "--rate", "250",
              "--duration", "600", "--timeout", "2", "--out", "{out}"]
    volumeMounts: [{{name: report, mountPath: "{tmp_path}"}}]
  volumes: [{{name: report, hostPath: {{path: "{tmp_path}", type: Directory}}}}]
"""
    )
    try:
        eventually(
            "loadgen running",
            lambda: (c.get("pod", "loadgen").get("status") or {}).get("phase") == "Running",
            30,
        )
        time.sleep(2)  # steady load before the rollout starts
        old_pods = set(wait_ready(c, "app=web", 10))
        started = time.monotonic()
        c.kubectl("rollout", "restart", "deployment/web")
        time.sleep(1)
        eventually("the rollout", lambda: deployment_rolled_out(c, "web", 10), 150, 0.5)
        rollout_s = time.monotonic() - started
        assert not old_pods & set(wait_ready(c, "app=web", 10)), "every pod was replaced"
        time.sleep(2)  # and steady load after it
    finally:
        c.kubectl("delete", "pod", "loadgen", "--wait=false", check=False)  # SIGTERM: report
    summary = json.loads(
        eventually("loadgen's report", lambda: out.exists() and out.read_text(), 30)
    )
    assert summary["failed"] == 0, summary
    assert summary["elapsed_s"] >= rollout_s
    assert summary["ok"] / summary["elapsed_s"] >= 200, summary
    print(
        f"rolling update: {rollout_s:.1f}s, {summary['ok']} requests, "
        f"{summary['ok'] / summary['elapsed_s']:.0f}/s, p99 {summary['latency_ms']['p99']} ms"
    )


def test_node_stop_moves_the_lb_address_within_5s_and_service_answers_from_replacements(
    tutorial: Tutorial,
) -> None:
    c = tutorial.cluster
    c.kubectl("scale", "deployment", "web", "--replicas=3")
    eventually("web at 3 replicas", lambda: deployment_rolled_out(c, "web", 3), 60, 0.5)
    lb_ip = tutorial.lb_ip
    svc = c.get("svc", "web-lb")
    stopped = svc["metadata"]["annotations"]["svcnet.io/announcing-node"]
    survivor = next(n for n in NODES if n != stopped)
    client = f"client-{survivor.rsplit('-', 1)[1]}"
    assert lb_ip in eth0_addresses(c, stopped)
    t0 = time.monotonic()
    c.svcnet("node", "stop", stopped, *c.cluster_args())
    try:
        eventually(
            "the LB address answering from the surviving node",
            lambda: (
                lb_ip in eth0_addresses(c, survivor)
                and try_get(f"http://{lb_ip}/hostname", 0.3) is not None
            ),
            15,
            0.05,
        )
        takeover = time.monotonic() - t0
        assert takeover < 5.0, f"LB takeover took {takeover:.2f}s"
        assert lb_ip not in eth0_addresses(c, stopped)
        # The stopped node's web pods are replaced on the survivor; the ClusterIP answers
        # from them only.
        replacements = eventually(
            "3 ready web pods on the surviving node",
            lambda: (lambda ps: ps if len(ps) == 3 else None)(
                [p for p in ready_pods(c, "app=web") if p["spec"].get("nodeName") == survivor]
            ),
            90,
            0.5,
        )
        names = {p["metadata"]["name"] for p in replacements}
        got = load(c, client, f"http://{cluster_ip(c, 'web')}/hostname", 100, 1.5)
        assert got["failed"] == 0, got
        assert set(got["bodies"]) <= names, got
        assert http_get(f"http://{lb_ip}/hostname") in names
        print(f"LB takeover {takeover:.2f}s")
    finally:
        c.svcnet("node", "start", stopped, *c.cluster_args(), check=False)
