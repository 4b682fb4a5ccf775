"""NetworkPolicy enforced in the kernel, by real connections, in the model of upstream's tests.

Namespaces x, y, z (labelled ``ns``) with pods a, b, c (labelled ``pod``), each serving TCP and
UDP on 80 and 81 (agnhost netexec; containerPorts named ``serve-<port>-<proto>``); a and b on
node-1, c on node-2. Each test applies policies and probes the full 9 x 9 matrix from inside
every pod (svcnet.testing.reachability: parallel connects, 1 s timeout), retrying until the
matrix is the expected one or a deadline passes (policies are programmed asynchronously, as
upstream's tests allow). The policies are deleted after each test.

Then the seed's two policies, applied as written, in namespace ``production``.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cluster_fixture import Cluster, running_cluster

from svcnet.netpol.changetracker import ChangeTracker
from svcnet.netpol.compiler import judge
from svcnet.netpol.model import Direction, Protocol

PY = sys.executable  # pods run commands on the node's filesystem: the venv's python is there
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"
NAMESPACES = ("x", "y", "z")
POD_NAMES = ("a", "b", "c")
NODE_OF = {"a": "node-1", "b": "node-1", "c": "node-2"}
PODS = [f"{ns}/{p}" for ns in NAMESPACES for p in POD_NAMES]
PROBE_TIMEOUT = 1.0
SETTLE = 30.0  # how long a matrix may take to become the expected one

Expect = Callable[[str, str], bool]  # (from "ns/pod", to "ns/pod") -> connected


def _containers() -> str:
    out = []
    for port in (80, 81):
        out.append(
            textwrap.dedent(f"""\
            - name: cont-{port}
              image: {AGNHOST}
              args: ["netexec", "--http-port={port}", "--udp-port={port}"]
              ports:
              - {{name: serve-{port}-tcp, containerPort: {port}, protocol: TCP}}
              - {{name: serve-{port}-udp, containerPort: {port}, protocol: UDP}}
              readinessProbe: {{tcpSocket: {{port: {port}}}, periodSeconds: 1}}
            """)
        )
    return textwrap.indent("".join(out), "  ")


def layout_manifest() -> str:
    docs = [
        f'apiVersion: v1\nkind: Namespace\nmetadata: {{name: "{ns}", labels: {{ns: "{ns}"}}}}\n'
        for ns in NAMESPACES
    ]
    for ns in NAMESPACES:
        for name in POD_NAMES:
            docs.append(
                f"apiVersion: v1\nkind: Pod\n"
                f'metadata: {{name: {name}, namespace: "{ns}", labels: {{pod: {name}}}}}\n'
                f"spec:\n  nodeName: {NODE_OF[name]}\n  terminationGracePeriodSeconds: 0\n"
                f"  containers:\n{_containers()}"
            )
    return "---\n".join(docs)


def is_ready(pod: dict[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def eventually(what: str, fn: Callable[[], Any], timeout: float, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


class Matrix:
    """Probing from pods; addresses of pods and Services."""

    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster
        self.pool = ThreadPoolExecutor(max_workers=9)

    def pod_ips(self, namespaces: tuple[str, ...]) -> dict[str, str]:
        out = {}
        for ns in namespaces:
            for p in self.c.get("pods", "-n", ns)["items"]:
                out[f"{ns}/{p['metadata']['name']}"] = p["status"]["podIP"]
        return out

    def probe_from(self, src: str, targets: list[str]) -> dict[str, str]:
        ns, name = src.split("/")
        res = self.c.svcnet(
            "exec", *self.c.cluster_args(), "-n", ns, name, "--",
            PY, "-m", "svcnet.testing.reachability", "--timeout", str(PROBE_TIMEOUT), *targets,
            check=False, timeout=60,
        )  # fmt: skip
        lines = res.stdout.strip().splitlines()
        if not lines:
            raise AssertionError(f"probe from {src}: rc={res.returncode} {res.stderr}")
        result: dict[str, str] = json.loads(lines[-1])
        return result

    def probe(
        self, sources: list[str], targets: dict[str, str], proto: str, port: int
    ) -> set[tuple[str, str]]:
        """The (from, to) pairs that connected; ``targets`` maps a name to its address."""

        def one(src: str) -> set[tuple[str, str]]:
            wanted = {f"{proto}:{addr}:{port}": name for name, addr in targets.items()}
            got = self.probe_from(src, sorted(wanted))
            return {(src, wanted[t]) for t, outcome in got.items() if outcome == "ok"}

        out: set[tuple[str, str]] = set()
        for part in self.pool.map(one, sources):
            out |= part
        return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if os.environ.get("SVCNET_E2E_CLUSTER"):
        from test_services import _reuse

        yield _reuse(os.environ["SVCNET_E2E_CLUSTER"])
        return
    with running_cluster(tmp_path_factory.mktemp("svcnet-netpol"), nodes=2) as c:
        yield c


@pytest.fixture(scope="module")
def matrix(cluster: Cluster) -> Matrix:
    cluster.apply(layout_manifest())
    for ns in NAMESPACES:
        eventually(
            f"pods of {ns} ready",
            lambda ns=ns: (lambda items: len(items) == 3 and all(is_ready(p) for p in items))(
                cluster.get("pods", "-n", ns)["items"]
            ),
            120,
            0.5,
        )
    return Matrix(cluster)


@pytest.fixture
def policies(cluster: Cluster) -> Iterator[Callable[[str], None]]:
    """Apply policies; every NetworkPolicy of x, y, z is deleted after the test."""

    def apply(manifest: str) -> None:
        cluster.apply(textwrap.dedent(manifest))

    yield apply
    for ns in NAMESPACES:
        cluster.kubectl("delete", "networkpolicy", "--all", "-n", ns, "--wait=false")
    cluster.kubectl("label", "pod", "c", "-n", "x", "pod=c", "--overwrite", check=False)
    cluster.kubectl("label", "namespace", "z", "team-", check=False)


def expect_matrix(
    m: Matrix, expect: Expect, proto: str = "tcp", port: int = 80, settle: float = SETTLE
) -> None:
    """Probe until the matrix is ``expect`` (a pod always reaches itself) or ``settle`` passes."""
    ips = m.pod_ips(NAMESPACES)
    want = {(s, d) for s in PODS for d in PODS if s == d or expect(s, d)}
    deadline = time.monotonic() + settle
    while True:
        got = m.probe(PODS, ips, proto, port)
        if got == want or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    missing = sorted(want - got)
    extra = sorted(got - want)
    assert not missing and not extra, f"{proto}/{port}: blocked {missing}, open {extra}"
    # The compiled model the nodes run gives the verdict of every probed cell.
    computed = computed_matrix(m.c, proto, port)
    assert computed == got, f"model and probes disagree: {sorted(computed ^ got)}"
    # So does `svcnet policy matrix`, which the user runs.
    shown = cli_matrix(m.c, proto, port)
    assert shown == got, f"svcnet policy matrix and probes disagree: {sorted(shown ^ got)}"


def cli_matrix(c: Cluster, proto: str, port: int, *extra: str) -> set[tuple[str, str]]:
    res = c.svcnet(
        "policy", "matrix", *c.cluster_args(), *(a for ns in NAMESPACES for a in ("-n", ns)),
        "--port", str(port), "--protocol", proto, "-o", "json", *extra, timeout=180,
    )  # fmt: skip
    cells = json.loads(res.stdout)["cells"]
    return {(cell["from"], cell["to"]) for cell in cells if cell["allowed"]}


def computed_matrix(c: Cluster, proto: str, port: int) -> set[tuple[str, str]]:
    """The matrix as :func:`svcnet.netpol.compiler.judge` gives it from the API's objects."""
    tracker = ChangeTracker()
    for obj in c.get("pods", "-A")["items"]:
        tracker.upsert_pod(obj)
    for obj in c.get("namespaces")["items"]:
        tracker.upsert_namespace(obj)
    for obj in c.get("networkpolicies", "-A")["items"]:
        tracker.upsert_policy(obj)
    compiled = {node: tracker.compile(node) for node in set(NODE_OF.values())}
    ips = {f"{o['metadata']['namespace']}/{o['metadata']['name']}": o for o in
           c.get("pods", "-A")["items"]}  # fmt: skip
    out = set()
    for s in PODS:
        for d in PODS:
            src, dst = ips[s], ips[d]
            s_ip, d_ip = src["status"]["podIP"], dst["status"]["podIP"]
            protocol = Protocol(proto)
            eg = judge(
                compiled[src["spec"]["nodeName"]], Direction.EGRESS, s_ip, d_ip, protocol, port
            )
            ing = judge(
                compiled[dst["spec"]["nodeName"]], Direction.INGRESS, d_ip, s_ip, protocol, port
            )
            if s == d or (eg.allowed and ing.allowed):
                out.add((s, d))
    return out


def ns_of(p: str) -> str:
    return p.split("/")[0]


def name_of(p: str) -> str:
    return p.split("/")[1]


def netpol(name: str, spec: str) -> str:
    """A NetworkPolicy of namespace x."""
    body = textwrap.indent(textwrap.dedent(spec).strip(), "  ")
    return (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        f"metadata: {{name: {name}, namespace: x}}\nspec:\n{body}\n"
    )


def into_a(spec: str) -> str:
    """A policy spec selecting the pods a."""
    return "podSelector: {matchLabels: {pod: a}}\n" + textwrap.dedent(spec)


# (name, policies, [(protocol, port, expected matrix)]): the later probes of a case only wait a
# little, as the policies are in place once the first one matched.
CASES: list[tuple[str, str, list[tuple[str, int, Expect]]]] = [
    ("no policy", "", [("tcp", 80, lambda s, d: True), ("udp", 81, lambda s, d: True)]),
    (
        "deny all ingress",
        netpol("deny-ingress", "podSelector: {}\npolicyTypes: [Ingress]"),
        [("tcp", 80, lambda s, d: ns_of(d) != "x"), ("udp", 80, lambda s, d: ns_of(d) != "x")],
    ),
    (
        "deny all egress",
        netpol("deny-egress", "podSelector: {}\npolicyTypes: [Egress]"),
        [("tcp", 81, lambda s, d: ns_of(s) != "x")],
    ),
    (
        "allow from a podSelector",
        netpol("allow-b", into_a("ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]")),
        [("tcp", 80, lambda s, d: d != "x/a" or s == "x/b")],
    ),
    (
        "allow from a namespaceSelector with matchExpressions",
        netpol(
            "not-y",
            into_a("""\
            ingress:
            - from:
              - namespaceSelector:
                  matchExpressions:
                  - {key: kubernetes.io/metadata.name, operator: NotIn, values: ["y"]}
            """),
        ),
        [("tcp", 80, lambda s, d: d != "x/a" or ns_of(s) != "y")],
    ),
    (
        "both selectors in one peer (AND)",
        netpol(
            "and",
            into_a("""\
            ingress:
            - from:
              - {namespaceSelector: {matchLabels: {ns: "y"}}, podSelector: {matchLabels: {pod: c}}}
            """),
        ),
        [("tcp", 80, lambda s, d: d != "x/a" or s == "y/c")],
    ),
    (
        "selectors in two peers (OR)",
        netpol(
            "or",
            into_a("""\
            ingress:
            - from:
              - namespaceSelector: {matchLabels: {ns: "y"}}
              - podSelector: {matchLabels: {pod: c}}
            """),
        ),
        [("tcp", 80, lambda s, d: d != "x/a" or ns_of(s) == "y" or s == "x/c")],
    ),
    (
        # c runs on node-2: its address is in the except.
        "ipBlock with except",
        netpol(
            "block",
            into_a("ingress: [{from: [{ipBlock: {cidr: {pod_cidr}, except: [{node2_cidr}]}}]}]"),
        ),
        [("tcp", 80, lambda s, d: d != "x/a" or name_of(s) != "c")],
    ),
    (
        "named port",
        netpol(
            "named", "podSelector: {}\ningress: [{ports: [{port: serve-81-udp, protocol: UDP}]}]"
        ),
        [
            ("udp", 81, lambda s, d: True),
            ("udp", 80, lambda s, d: ns_of(d) != "x"),
            ("tcp", 81, lambda s, d: ns_of(d) != "x"),
        ],
    ),
    (
        "endPort range",
        netpol(
            "range", "podSelector: {}\ningress: [{ports: [{port: 81, endPort: 90, protocol: TCP}]}]"
        ),
        [("tcp", 81, lambda s, d: True), ("tcp", 80, lambda s, d: ns_of(d) != "x")],
    ),
    (
        "several policies combine",
        netpol("from-b", into_a("ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]"))
        + "---\n"
        + netpol(
            "from-z", into_a('ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "z"}}}]}]')
        ),
        [("tcp", 80, lambda s, d: d != "x/a" or s == "x/b" or ns_of(s) == "z")],
    ),
]


@pytest.mark.parametrize(("policy", "probes"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matrix(
    matrix: Matrix,
    policies: Callable[[str], None],
    cluster: Cluster,
    policy: str,
    probes: list[tuple[str, int, Expect]],
) -> None:
    if policy:
        node2 = cluster.get("node", "node-2")["spec"]["podCIDR"]
        policies(policy.replace("{pod_cidr}", cluster.pod_cidr).replace("{node2_cidr}", node2))
    for i, (proto, port, expect) in enumerate(probes):
        expect_matrix(matrix, expect, proto, port, settle=SETTLE if i == 0 else 5)


def test_policy_matrix_probe_marks_no_disagreement(
    matrix: Matrix, policies: Callable[[str], None], cluster: Cluster
) -> None:
    """`svcnet policy matrix --probe` probes every cell itself; exit code 0: no cell disagrees."""
    policies(netpol("deny-ingress", "podSelector: {}\npolicyTypes: [Ingress]"))
    expect_matrix(matrix, lambda s, d: ns_of(d) != "x")
    res = cluster.svcnet(
        "policy", "matrix", *cluster.cluster_args(), "-n", "x", "-n", "y", "--port", "80",
        "--probe", "-o", "json", timeout=180,
    )  # fmt: skip
    cells = json.loads(res.stdout)["cells"]
    assert len(cells) == 36
    assert all(c["probed"] == c["allowed"] for c in cells)
    assert {(c["from"], c["to"]) for c in cells if c["allowed"]} == {
        (s, d) for s in PODS[:6] for d in PODS[:6] if s == d or ns_of(d) != "x"
    }
    table = cluster.svcnet(
        "policy", "matrix", *cluster.cluster_args(), "-n", "x", "--port", "80", "--probe",
        timeout=180,
    )  # fmt: skip
    assert "x/a" in table.stdout and "✓" in table.stdout
    assert "✓!" not in table.stdout and "✗!" not in table.stdout


def test_deny_all_keeps_pods_ready(
    matrix: Matrix, policies: Callable[[str], None], cluster: Cluster
) -> None:
    policies(netpol("deny-all", "podSelector: {}\npolicyTypes: [Ingress, Egress]"))
    expect_matrix(matrix, lambda s, d: "x" not in (ns_of(s), ns_of(d)))
    # The node's readiness probes (every second) still reach the isolated pods.
    time.sleep(3)
    assert all(is_ready(p) for p in cluster.get("pods", "-n", "x")["items"])


def test_egress_only_dns(matrix: Matrix, policies: Callable[[str], None]) -> None:
    policies(
        netpol(
            "only-dns",
            """\
            podSelector: {}
            policyTypes: [Egress]
            egress:
            - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}]
              ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
            """,
        )
    )
    expect_matrix(matrix, lambda s, d: ns_of(s) != "x", "tcp", 80)
    # The cluster DNS still answers x's pods, through its ClusterIP (judged after DNAT).
    out = matrix.c.svcnet(
        "exec", *matrix.c.cluster_args(), "-n", "x", "a", "--", PY, "-c",
        "import socket; print(socket.gethostbyname('kubernetes.default.svc.cluster.local'))",
        check=False, timeout=60,
    )  # fmt: skip
    assert out.stdout.strip().count(".") == 3, out.stdout + out.stderr


def test_pod_and_namespace_labels_change_the_verdict(
    matrix: Matrix, policies: Callable[[str], None], cluster: Cluster
) -> None:
    policies(
        netpol(
            "from-b-or-blue",
            into_a("""\
            ingress:
            - from:
              - podSelector: {matchLabels: {pod: b}}
              - namespaceSelector: {matchLabels: {team: blue}}
            """),
        )
    )
    expect_matrix(matrix, lambda s, d: d != "x/a" or s == "x/b")
    cluster.kubectl("label", "pod", "c", "-n", "x", "pod=b", "--overwrite")
    expect_matrix(matrix, lambda s, d: d != "x/a" or s in ("x/b", "x/c"))
    cluster.kubectl("label", "namespace", "z", "team=blue")
    expect_matrix(matrix, lambda s, d: d != "x/a" or s in ("x/b", "x/c") or ns_of(s) == "z")


# -- the seed's policies, as written ------------------------------------------------------------

SEED = Path("/work/shared/seed")
ALLOW_FRONTEND = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: backend-allow-from-frontend-only
  namespace: production
spec:
  podSelector:
    matchLabels:
      app: backend-api          # this policy applies to Pods labeled app=backend-api
  policyTypes:
    - Ingress
  ingress:
    - from:
        - podSelector:
            matchLabels:
              app: frontend       # only allow traffic FROM pods labeled app=frontend
      ports:
        - protocol: TCP
          port: 8080
"""
DEFAULT_DENY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-all
  namespace: production
spec:
  podSelector: {}
  policyTypes:
    - Ingress
    - Egress
"""


def _server(name: str, app: str) -> str:
    return f"""\
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: production, labels: {{app: {app}}}}}
spec:
  nodeName: node-{2 if app == "frontend" else 1}
  terminationGracePeriodSeconds: 0
  containers:
  - name: c
    image: {AGNHOST}
    args: ["netexec", "--http-port=8080", "--udp-port=-1"]
    ports: [{{containerPort: 8080}}]
    readinessProbe: {{httpGet: {{path: /healthz, port: 8080}}, periodSeconds: 1}}
"""


SEED_WORLD = "---\n".join(
    [
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: production}\n",
        _server("backend-api", "backend-api"),
        _server("frontend", "frontend"),
        _server("worker", "worker"),
        """\
apiVersion: v1
kind: Service
metadata:
  name: backend-api
  namespace: production
spec:
  type: ClusterIP     # default; can be omitted
  selector:
    app: backend-api
  ports:
    - port: 80
      targetPort: 8080
""",
    ]
)


def test_seed_policies_give_the_reachability_the_seed_describes(
    matrix: Matrix, cluster: Cluster
) -> None:
    seed_text = "".join(p.read_text() for p in sorted(SEED.glob("*.txt")))
    assert "backend-allow-from-frontend-only" in seed_text and "default-deny-all" in seed_text
    cluster.apply(SEED_WORLD)
    try:
        eventually(
            "production pods ready",
            lambda: (lambda items: len(items) == 3 and all(is_ready(p) for p in items))(
                cluster.get("pods", "-n", "production")["items"]
            ),
            120,
            0.5,
        )
        ips = matrix.pod_ips(("production",))
        backend = ips["production/backend-api"]
        svc_ip = cluster.get("service", "backend-api", "-n", "production")["spec"]["clusterIP"]
        sources = ["production/frontend", "production/worker", "y/a"]

        def reach(targets: dict[str, str], port: int) -> set[tuple[str, str]]:
            return matrix.probe(sources, targets, "tcp", port)

        assert reach({"backend": backend}, 8080) == {(s, "backend") for s in sources}

        cluster.apply(ALLOW_FRONTEND)
        only_frontend = {("production/frontend", "backend")}
        eventually(
            "only the frontend reaches the backend",
            lambda: reach({"backend": backend}, 8080) == only_frontend,
            SETTLE,
        )
        # Through the Service: the same verdict, judged on the pod behind the ClusterIP.
        assert reach({"backend": svc_ip}, 80) == only_frontend
        # svcnet policy explain names what decides it.
        why = cluster.svcnet(
            "policy", "explain", *cluster.cluster_args(),
            "--from", "production/worker", "--to", "production/backend-api:8080", check=False,
        )  # fmt: skip
        assert why.returncode == 1, why.stdout + why.stderr
        assert "isolated by production/backend-allow-from-frontend-only" in why.stdout
        ok = cluster.svcnet(
            "policy", "explain", *cluster.cluster_args(),
            "--from", "production/frontend", "--to", "production/backend-api:8080/TCP",
        )  # fmt: skip
        assert "allowed by production/backend-allow-from-frontend-only ingress[0]" in ok.stdout
        # Through the Service, per backend, on the port DNAT sends it to.
        via = cluster.svcnet(
            "policy", "explain", *cluster.cluster_args(),
            "--from", "production/worker", "--to-service", "production/backend-api:80",
            check=False,
        )  # fmt: skip
        assert via.returncode == 1, via.stdout + via.stderr
        assert "production/backend-api (" in via.stdout and ":8080/TCP: DROPPED" in via.stdout
        via_ok = cluster.svcnet(
            "policy", "explain", *cluster.cluster_args(),
            "--from", "production/frontend", "--to-service", "production/backend-api:80",
        )  # fmt: skip
        assert "allowed by production/backend-allow-from-frontend-only ingress[0]" in via_ok.stdout
        # The backend is not isolated for egress, the frontend not for ingress.
        frontend = ips["production/frontend"]
        assert ("production/worker", "frontend") in reach({"frontend": frontend}, 8080)

        cluster.apply(DEFAULT_DENY)
        # A pod always reaches itself: its own traffic never leaves its namespace.
        itself = {("production/frontend", "frontend")}
        eventually(
            "nothing into production",
            lambda: reach({"backend": backend, "frontend": frontend}, 8080) == itself,
            SETTLE,
        )
        assert reach({"svc": svc_ip}, 80) == set()
        # Nothing out of it either; y's pods are not isolated.
        y_b = {"y/b": matrix.pod_ips(("y",))["y/b"]}
        assert matrix.probe(["production/frontend", "y/a"], y_b, "tcp", 80) == {("y/a", "y/b")}
        time.sleep(3)
        assert all(is_ready(p) for p in cluster.get("pods", "-n", "production")["items"])
    finally:
        cluster.kubectl("delete", "namespace", "production", "--wait=false", check=False)
