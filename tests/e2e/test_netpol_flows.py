"""``svcnet flows`` on examples/netpol (a default deny of production, then the allows): real
connections, then the flows the nodes' agents recorded, as a user reads them.

The frontend reaches backend-api through its ClusterIP (allowed: pod names and the Service);
the worker's connection to the same Service is dropped by its own node (egress), naming the
policies that isolate it; filters and JSON as documented. Two nodes; ranges from
cluster_fixture.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from cluster_fixture import SVCNET, Cluster
from netpol_example_fixture import connects, example_cluster, pod_of

from svcnet.testing.polling import eventually_sync

WORKER_POLICIES = ["production/allow-dns-egress", "production/default-deny-all"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with example_cluster(tmp_path_factory.mktemp("svcnet-netpol-flows")) as c:
        yield c


def flows(c: Cluster, *args: str) -> list[dict[str, Any]]:
    res = c.svcnet("flows", *c.cluster_args(), "-o", "json", *args)
    found: list[dict[str, Any]] = json.loads(res.stdout)["flows"]
    return found


def service_ip(c: Cluster) -> str:
    return str(c.get("service", "backend-api", "-n", "production")["spec"]["clusterIP"])


def to_service(f: dict[str, Any]) -> bool:
    svc = f["service"] or {}
    return svc.get("service") == "backend-api" and svc.get("namespace") == "production"


@pytest.fixture(scope="module")
def traffic(cluster: Cluster) -> dict[str, str]:
    """One allowed and one dropped connection to backend-api's ClusterIP."""
    vip = service_ip(cluster)
    assert connects(cluster, "frontend", f"{vip}:80") == "ok"
    assert connects(cluster, "worker", f"{vip}:80") == "timeout"
    return {"frontend": pod_of(cluster, "frontend"), "worker": pod_of(cluster, "worker")}


def from_pod(f: dict[str, Any], name: str) -> bool:
    return f["from"].get("pod") == name and f["from"].get("namespace") == "production"


def test_allowed_connection_shows_pod_names_and_the_service(
    cluster: Cluster, traffic: dict[str, str]
) -> None:
    backends = {
        p["metadata"]["name"]
        for p in cluster.get("pods", "-n", "production", "-l", "app=backend-api")["items"]
    }

    def seen() -> list[dict[str, Any]]:
        return [
            f
            for f in flows(cluster, "--verdict", "allowed")
            if from_pod(f, traffic["frontend"]) and to_service(f)
        ]

    (f, *_) = eventually_sync(seen, 30, interval=0.5, what="the frontend's flow")
    assert f["verdict"] == "allowed" and f["droppedBy"] is None
    assert f["to"]["pod"] in backends and f["to"]["port"] == 8080
    assert f["service"]["ip"] == service_ip(cluster) and f["service"]["port"] == 80
    assert f["protocol"] == "TCP"


def test_dropped_connection_names_the_isolating_policies(
    cluster: Cluster, traffic: dict[str, str]
) -> None:
    def seen() -> list[dict[str, Any]]:
        return [
            f
            for f in flows(cluster, "--verdict", "dropped")
            if from_pod(f, traffic["worker"]) and to_service(f)
        ]

    (f, *_) = eventually_sync(seen, 30, interval=0.5, what="the worker's dropped flow")
    assert f["verdict"] == "dropped"
    assert f["droppedBy"]["direction"] == "egress"
    assert f["droppedBy"]["policies"] == WORKER_POLICIES
    assert f["to"]["namespace"] == "production" and f["to"]["port"] == 8080


def test_verdict_filter(cluster: Cluster, traffic: dict[str, str]) -> None:
    del traffic
    for verdict in ("dropped", "allowed"):
        found = flows(cluster, "--verdict", verdict)
        assert found and {f["verdict"] for f in found} == {verdict}


def test_pod_and_namespace_filters(cluster: Cluster, traffic: dict[str, str]) -> None:
    worker = traffic["worker"]
    mine = flows(cluster, "-n", "production", "--pod", worker)
    assert mine and all(worker in (f["from"].get("pod"), f["to"].get("pod")) for f in mine)
    assert not any(from_pod(f, traffic["frontend"]) for f in mine)
    assert flows(cluster, "-n", "no-such-namespace") == []
    everything = flows(cluster, "-n", "production")
    assert any(from_pod(f, traffic["frontend"]) for f in everything)
    assert any(from_pod(f, worker) for f in everything)


def test_table_names_the_policy(cluster: Cluster, traffic: dict[str, str]) -> None:
    res = cluster.svcnet(
        "flows", *cluster.cluster_args(), "--pod", traffic["worker"], "--verdict", "dropped"
    )
    assert f"production/{traffic['worker']}" in res.stdout
    assert "production/backend-api" in res.stdout
    assert "egress: production/allow-dns-egress, production/default-deny-all" in res.stdout


def test_follow_prints_a_new_drop(cluster: Cluster, traffic: dict[str, str]) -> None:
    """``-f`` prints what is already there, then each new connection: a drop to the
    frontend's pod IP (no policy lets the worker out to it) shows up while following."""
    frontend_ip = cluster.get("pod", traffic["frontend"], "-n", "production")["status"]["podIP"]
    proc = subprocess.Popen(
        [*SVCNET, "flows", *cluster.cluster_args(), "-f", "-o", "json", "--pod", traffic["worker"]],
        stdout=subprocess.PIPE,
        text=True,
        env=cluster.env(),
    )
    lines: list[dict[str, Any]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert connects(cluster, "worker", f"{frontend_ip}:8080") == "timeout"

        def seen() -> list[dict[str, Any]]:
            return [
                f
                for f in list(lines)
                if f["verdict"] == "dropped" and f["to"].get("pod") == traffic["frontend"]
            ]

        (f, *_) = eventually_sync(seen, 30, interval=0.2, what="the followed drop")
        assert f["service"] is None and f["droppedBy"]["policies"] == WORKER_POLICIES
    finally:
        proc.terminate()
        proc.wait(10)
