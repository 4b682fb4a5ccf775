"""NetworkPolicy fail-closed, by real connections: no window for a new pod, none for a new deny.

Two nodes; prober pods in namespace ``probe`` on each node run ``svcnet.testing.reachability
--watch`` (TCP connects, all targets at once, again and again; an attempt counts when the
target's kernel answered it, by accepting or refusing).

- A pod created into a default-deny namespace on node-1, probed from both nodes at every free
  address of node-1's pod block from before it exists until it is Ready, never answers; the
  same pod in a namespace without policies answers (the probes can see a pod).
- A deny applied under constant traffic: no connection started after every node's
  ``svcnet.io/netpol-programmed-revision`` reached the policy's resourceVersion gets through.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cluster_fixture import SVCNET, Cluster, running_cluster

from svcnet.api.wellknown import NETPOL_PROGRAMMED_ANNOTATION

PY = sys.executable
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"
PROBERS = {"p1": "node-1", "p2": "node-2"}


def server(ns: str, name: str, node: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: Pod
        metadata: {{name: {name}, namespace: {ns}, labels: {{app: {name}}}}}
        spec:
          nodeName: {node}
          terminationGracePeriodSeconds: 0
          containers:
          - name: serve
            image: {AGNHOST}
            args: ["netexec", "--http-port=80", "--udp-port=80"]
            readinessProbe: {{tcpSocket: {{port: 80}}, periodSeconds: 1}}
        """)


def namespace(name: str) -> str:
    return f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n"


def deny_ingress(ns: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: deny-ingress, namespace: {ns}}}
        spec: {{podSelector: {{}}, policyTypes: [Ingress]}}
        """)


def ready(pod: dict[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def wait_ready(c: Cluster, ns: str, name: str) -> str:
    pod = c.wait_for(f"pod/{name}", ready, 120, "-n", ns)
    return str(pod["status"]["podIP"])


def wait_programmed(c: Cluster, revision: int) -> None:
    """Until every node reports a NetworkPolicy revision at least ``revision``."""

    def done(nodes: dict[str, Any]) -> bool:
        values = [
            int((n["metadata"].get("annotations") or {}).get(NETPOL_PROGRAMMED_ANNOTATION, -1))
            for n in nodes["items"]
        ]
        return len(values) == len(PROBERS) and min(values) >= revision

    try:
        c.wait_for("nodes", done, 60)
    except AssertionError as e:
        raise AssertionError(f"{e}\nagent logs (netpol):\n{netpol_log(c)}") from None


def netpol_log(c: Cluster) -> str:
    lines = []
    for f in sorted((c.data_dir / "logs").glob("*")):
        if f.is_file():
            lines += [f"{f.name}: {x}" for x in f.read_text(errors="replace").splitlines()
                      if "netpol" in x or "Traceback" in x or "Error" in x]  # fmt: skip
    return "\n".join(lines[-60:])


def create_policy(c: Cluster, manifest: str) -> int:
    res = c.kubectl("create", "-f", "-", "-o", "json", input=manifest)
    return int(json.loads(res.stdout)["metadata"]["resourceVersion"])


class Watch:
    """``reachability --watch`` running in a prober pod."""

    def __init__(self, c: Cluster, prober: str, seconds: float, addrs: list[str]) -> None:
        argv = [*SVCNET, "exec", *c.cluster_args(), "-n", "probe", prober, "--",
                PY, "-m", "svcnet.testing.reachability", "--watch", str(seconds), "80", *addrs]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=c.env())
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "watching"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def result(self) -> dict[str, list[float]]:
        out, _ = self.proc.communicate(timeout=120)
        answered: dict[str, list[float]] = json.loads(out.strip().splitlines()[-1])
        return answered


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("svcnet-failclosed"), nodes=2) as c:
        c.apply(namespace("probe"))
        for name, node in PROBERS.items():
            c.apply(server("probe", name, node))
        for name in PROBERS:
            wait_ready(c, "probe", name)
        yield c


def free_addresses(c: Cluster, node: str) -> list[str]:
    block = ipaddress.IPv4Network(c.get("node", node)["spec"]["podCIDR"])
    used = {
        p["status"].get("podIP")
        for p in c.get("pods", "-A")["items"]
        if p["spec"].get("nodeName") == node
    }
    hosts = [str(h) for h in block.hosts()][1:]  # .1 is the node's bridge
    return [h for h in hosts if h not in used]


@pytest.mark.parametrize(("ns", "denied"), [("fc-deny", True), ("fc-open", False)])
def test_new_pod_in_default_deny_namespace_never_answers(
    cluster: Cluster, ns: str, denied: bool
) -> None:
    c = cluster
    c.apply(namespace(ns))
    watches: list[Watch] = []
    try:
        if denied:
            wait_programmed(c, create_policy(c, deny_ingress(ns)))
        watches += [Watch(c, p, 25, free_addresses(c, "node-1")) for p in PROBERS]
        c.apply(server(ns, "new", "node-1"))
        ip = wait_ready(c, ns, "new")
        answered = {p: w.result()[ip] for p, w in zip(PROBERS, watches, strict=True)}
        if denied:
            assert answered == {p: [] for p in PROBERS}
        else:
            assert all(answered.values()), answered
    finally:
        for w in watches:
            w.stop()
        c.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_deny_under_traffic_lets_nothing_through_once_programmed(cluster: Cluster) -> None:
    c = cluster
    ns = "fc-traffic"
    c.apply(namespace(ns))
    watches: list[Watch] = []
    try:
        c.apply(server(ns, "srv", "node-1"))
        ip = wait_ready(c, ns, "srv")
        watches += [Watch(c, p, 12, [ip]) for p in PROBERS]
        time.sleep(3)
        revision = create_policy(c, deny_ingress(ns))
        wait_programmed(c, revision)
        programmed = time.time()
        for p, w in zip(PROBERS, watches, strict=True):
            starts = w.result()[ip]
            assert any(t < programmed for t in starts), f"{p}: no traffic before the deny"
            late = [t - programmed for t in starts if t > programmed]
            assert not late, f"{p}: connections through after programmed: {late}"
    finally:
        for w in watches:
            w.stop()
        c.kubectl("delete", "namespace", ns, "--wait=false", check=False)
