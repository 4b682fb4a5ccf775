"""examples/netpol applied as a user would (``kubectl apply -f examples/netpol/``), and the
claims of its README's tour checked by real connections and by ``svcnet policy``.

Two nodes; the example's Deployments are scheduled wherever the scheduler puts them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cluster_fixture import Cluster
from netpol_example_fixture import connects, example_cluster, pod_of


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with example_cluster(tmp_path_factory.mktemp("svcnet-netpol-example")) as c:
        yield c


def explain(c: Cluster, app: str, *to: str) -> tuple[int, str]:
    res = c.svcnet(
        "policy", "explain", *c.cluster_args(), "--from", f"production/{pod_of(c, app)}", *to,
        check=False,
    )  # fmt: skip
    return res.returncode, res.stdout + res.stderr


def test_frontend_reaches_backend_through_its_service_and_explain_names_both_policies(
    cluster: Cluster,
) -> None:
    svc = cluster.get("service", "backend-api", "-n", "production")["spec"]["clusterIP"]
    assert connects(cluster, "frontend", f"{svc}:80") == "ok"
    rc, out = explain(cluster, "frontend", "--to-service", "production/backend-api:80")
    assert rc == 0, out
    assert out.count("allowed by production/frontend-egress-to-backend egress[0]") == 2, out
    assert out.count("allowed by production/backend-allow-from-frontend-only ingress[0]") == 2


def test_worker_is_dropped_and_explain_names_the_isolating_policies(cluster: Cluster) -> None:
    svc = cluster.get("service", "backend-api", "-n", "production")["spec"]["clusterIP"]
    assert connects(cluster, "worker", f"{svc}:80") == "timeout"
    rc, out = explain(cluster, "worker", "--to-service", "production/backend-api:80")
    assert rc == 1, out
    assert (
        "egress of production/worker-" in out
        and "DROPPED: isolated by production/allow-dns-egress, production/default-deny-all" in out
    ), out


def test_every_pod_reaches_the_cluster_dns_and_nothing_else_outside(cluster: Cluster) -> None:
    dns_pods = cluster.get("pods", "-n", "kube-system", "-l", "k8s-app=kube-dns")["items"]
    dns = cluster.get("service", "kube-dns", "-n", "kube-system")["spec"]["clusterIP"]
    api = cluster.get("service", "kubernetes", "-n", "default")["spec"]["clusterIP"]
    for app in ("frontend", "worker", "backend-api"):
        assert connects(cluster, app, f"{dns}:53") == "ok", app
        # The DNS pods' other ports, and the API server's Service, are not allowed.
        assert connects(cluster, app, f"{dns_pods[0]['status']['podIP']}:8181") == "timeout"
        assert connects(cluster, app, f"{api}:443") == "timeout"


def test_matrix_probe_agrees_with_the_model(cluster: Cluster) -> None:
    res = cluster.svcnet(
        "policy", "matrix", *cluster.cluster_args(), "-n", "production", "--port", "8080",
        "--probe", "-o", "json", timeout=180,
    )  # fmt: skip
    cells = json.loads(res.stdout)["cells"]
    assert len(cells) == 16 and all(c["probed"] == c["allowed"] for c in cells)
    allowed = {(c["from"].split("/")[1].rsplit("-", 2)[0], c["to"].split("/")[1].rsplit("-", 2)[0])
               for c in cells if c["allowed"] and c["from"] != c["to"]}  # fmt: skip
    assert allowed == {("frontend", "backend-api")}
