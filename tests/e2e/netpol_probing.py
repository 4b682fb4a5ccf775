"""What the NetworkPolicy fail-closed e2e tests share: pods serving on 80, a default deny,
the programmed revision every node reports, and ``reachability --watch`` run in a prober pod.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import textwrap
import time
from typing import Any

from cluster_fixture import SVCNET, Cluster

from svcnet.api.wellknown import NETPOL_PROGRAMMED_ANNOTATION

PY = sys.executable
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"


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


def programmed(c: Cluster) -> dict[str, int]:
    """Each node's reported NetworkPolicy revision (-1: none yet)."""
    return {
        n["metadata"]["name"]: int(
            (n["metadata"].get("annotations") or {}).get(NETPOL_PROGRAMMED_ANNOTATION, -1)
        )
        for n in c.get("nodes")["items"]
    }


def wait_programmed(c: Cluster, revision: int, nodes: int = 2, timeout: float = 120) -> None:
    """Until every node reports a NetworkPolicy revision at least ``revision``."""
    deadline = time.monotonic() + timeout
    values = programmed(c)
    while len(values) < nodes or min(values.values()) < revision:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"revision {revision} not on every node: {values}\nagent logs:\n{netpol_log(c)}"
            )
        time.sleep(0.1)
        values = programmed(c)


def netpol_log(c: Cluster) -> str:
    lines = []
    for f in sorted((c.data_dir / "logs").glob("*")):
        if f.is_file():
            lines += [f"{f.name}: {x}" for x in f.read_text(errors="replace").splitlines()
                      if "netpol" in x or "Traceback" in x or " W " in x or " E " in x]  # fmt: skip
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


def free_addresses(c: Cluster, node: str) -> list[str]:
    block = ipaddress.IPv4Network(c.get("node", node)["spec"]["podCIDR"])
    used = {
        p["status"].get("podIP")
        for p in c.get("pods", "-A")["items"]
        if p["spec"].get("nodeName") == node
    }
    hosts = [str(h) for h in block.hosts()][1:]  # .1 is the node's bridge
    return [h for h in hosts if h not in used]
