"""examples/ingress applied as its README does, on a cluster of its own (its Services carry the
seed's names, which tests/e2e/test_ingress.py's echo backends also use): the Ingress with TLS,
the same as a Gateway at its own address, the canary split.

Certificates are made here with ``cryptography`` (the README uses openssl).
"""

from __future__ import annotations

import ssl
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_fixture import Cluster, running_cluster
from test_ingress import Ingress, _secret, _SniConnection

from svcnet.testing.polling import eventually_sync

EXAMPLES = Path(__file__).parents[2] / "examples" / "ingress"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("ingress-examples"), nodes=2) as c:
        yield c


def answers(address: str, host: str, n: int = 1) -> list[str]:
    """The Deployments whose pods answer ``/hostname`` for ``host`` over HTTPS with its SNI,
    ``n`` requests on one keep-alive connection."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = _SniConnection(address, 443, host, ctx, timeout=5)
    out = []
    try:
        for _ in range(n):
            conn.request("GET", "/hostname", headers={"Host": host})
            resp = conn.getresponse()
            body = resp.read().decode()
            out.append(deployment_of(body) if resp.status == 200 else str(resp.status))
    finally:
        conn.close()
    return out


def serves_both_hosts(address: str, timeout: float) -> None:
    def api() -> bool:
        try:
            return answers(address, "api.example.com") == ["backend-api"]
        except OSError:
            return False

    eventually_sync(api, timeout, what=f"api.example.com through {address}")
    assert answers(address, "app.example.com") == ["frontend"]


def deployment_of(pod: str) -> str:
    return pod.rsplit("-", 2)[0]


def test_examples_as_the_readme_applies_them(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", str(EXAMPLES / "00-backends.yaml"))
    cluster.apply(_secret("api-example-tls", "api.example.com"))
    cluster.apply(_secret("app-example-tls", "app.example.com"))
    for d in ("backend-api", "backend-api-canary", "frontend"):
        cluster.kubectl("rollout", "status", f"deployment/{d}", "--timeout=90s", timeout=100)

    cluster.kubectl("apply", "-f", str(EXAMPLES / "10-main-ingress-tls.yaml"))
    ing = cluster.wait_for(
        "ingress/main-ingress", lambda o: o.get("status", {}).get("loadBalancer", {}).get("ingress"),
        60,
    )  # fmt: skip
    via_ingress = Ingress(cluster, ing["status"]["loadBalancer"]["ingress"][0]["ip"])
    serves_both_hosts(via_ingress.address, 60)
    assert via_ingress.certificate_cn("app.example.com") == "app.example.com"
    status, _, resp = via_ingress.get("api.example.com", "/hostname")
    assert (status, resp.getheader("Location")) == (308, "https://api.example.com/hostname")

    cluster.kubectl("apply", "-f", str(EXAMPLES / "20-gateway.yaml"))
    gw = cluster.wait_for(
        "gateway/main",
        lambda o: any(c["type"] == "Programmed" and c["status"] == "True"
                      for c in o.get("status", {}).get("conditions") or []),
        60,
    )  # fmt: skip
    via_gw = Ingress(cluster, gw["status"]["addresses"][0]["value"])
    assert via_gw.address != via_ingress.address
    serves_both_hosts(via_gw.address, 30)
    assert via_gw.certificate_cn("api.example.com") == "api.example.com"
    status, _, resp = via_gw.get("app.example.com", "/x")
    assert (status, resp.getheader("Location")) == (301, "https://app.example.com/x")

    cluster.kubectl("apply", "-f", str(EXAMPLES / "30-canary.yaml"))
    eventually_sync(
        lambda: "backend-api-canary" in answers(via_gw.address, "api.example.com", 50),
        30, what="the canary answering",
    )  # fmt: skip
    got = Counter(answers(via_gw.address, "api.example.com", 400))
    # Binomial(400, 0.1): a standard deviation of 6; within 5 of them.
    assert set(got) == {"backend-api", "backend-api-canary"}, got
    assert 10 <= got["backend-api-canary"] <= 70, got
