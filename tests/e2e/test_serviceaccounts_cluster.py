"""ServiceAccounts on a real 2-node cluster (cluster_fixture: its own underlay /24, pod and
service /16s, API port and kubeconfig; ``svcnet down`` and a leak check at the end).

A new namespace gets its ``default`` ServiceAccount and ``kube-root-ca.crt``; a pod admitted
with the ``kube-api-access-*`` volume runs and becomes Ready (what the agent mounts from it is
tested in test_pod_volumes.py); from inside that pod, a client that trusts only the
published ``ca.crt`` reaches ``https://kubernetes.default.svc`` (cluster DNS, the
``kubernetes`` Service's ClusterIP, the serving certificate's SANs) and authenticates with a
token bound to the pod; once the pod is deleted the token is refused.
"""

from __future__ import annotations

import base64
import json
import sys
import textwrap
import uuid
from collections.abc import Iterator

import pytest
import yaml
from cluster_fixture import Cluster
from cluster_fixture import svcnet_cluster as svcnet_cluster

pytestmark = pytest.mark.e2e

PY = sys.executable  # pods run the venv's python from the node's filesystem
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"
# Asks the API server who the bearer is (a SelfSubjectReview), trusting only the given CA.
WHOAMI = textwrap.dedent("""\
    import json, ssl, sys, urllib.request
    ctx = ssl.create_default_context(cadata=sys.argv[1])
    req = urllib.request.Request(
        "https://kubernetes.default.svc/apis/authentication.k8s.io/v1/selfsubjectreviews",
        data=b'{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}',
        headers={"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"},
    )
    print(json.load(urllib.request.urlopen(req, context=ctx, timeout=10))["status"]["userInfo"]["username"])
""")


@pytest.fixture
def namespace(svcnet_cluster: Cluster) -> Iterator[str]:
    name = "sa-" + uuid.uuid4().hex[:6]
    svcnet_cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        svcnet_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def ready(pod: dict[str, object]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []  # type: ignore[attr-defined]
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def test_in_cluster_client_reaches_the_api_with_a_pod_bound_token(
    svcnet_cluster: Cluster, namespace: str
) -> None:
    c = svcnet_cluster
    c.wait_for("serviceaccount/default", bool, 20.0, "-n", namespace)
    cm = c.wait_for("configmap/kube-root-ca.crt", bool, 20.0, "-n", namespace)
    ca = cm["data"]["ca.crt"]
    kubeconfig = yaml.safe_load(c.kubeconfig.read_text())
    ca_data = kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"]
    assert ca == base64.b64decode(ca_data).decode()  # the CA kubectl trusts

    c.kubectl("run", "client", "-n", namespace, f"--image={AGNHOST}", "--", "netexec")
    pod = c.wait_for("pod/client", ready, 60.0, "-n", namespace)
    assert any(v["name"].startswith("kube-api-access-") for v in pod["spec"]["volumes"])

    token = c.kubectl(
        "create", "token", "default", "-n", namespace,
        "--bound-object-kind", "Pod", "--bound-object-name", "client",
    ).stdout.strip()  # fmt: skip
    res = c.kubectl("exec", "-n", namespace, "client", "--", PY, "-c", WHOAMI, ca, token)
    assert res.stdout.strip() == f"system:serviceaccount:{namespace}:default"

    c.kubectl("delete", "pod", "client", "-n", namespace, "--wait=true", "--timeout=30s")
    refused = c.kubectl("get", "pods", "-n", namespace, "--token", token, check=False)
    assert refused.stderr.strip() == "error: You must be logged in to the server (Unauthorized)"


def test_default_service_account_comes_back(svcnet_cluster: Cluster, namespace: str) -> None:
    c = svcnet_cluster
    first = c.wait_for("serviceaccount/default", bool, 20.0, "-n", namespace)
    c.kubectl("delete", "serviceaccount", "default", "-n", namespace)
    c.wait_for(
        "serviceaccount/default",
        lambda sa: sa["metadata"]["uid"] != first["metadata"]["uid"],
        20.0,
        "-n",
        namespace,
    )
    # The ServiceAccount controller's account, as kubectl shows it.
    out = json.loads(c.kubectl("get", "sa", "-n", namespace, "-o", "json").stdout)
    assert [sa["metadata"]["name"] for sa in out["items"]] == ["default"]
