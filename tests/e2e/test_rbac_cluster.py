"""RBAC on a real 2-node cluster (cluster_fixture: its own ranges, API port and kubeconfig).

A pod runs as a ServiceAccount granted ``get,list`` on pods by a Role and RoleBinding; with
the token its kube-api-access volume mounts, an in-cluster client (the built-in python image,
urllib trusting only the mounted ``ca.crt``, as ``load_incluster_config()`` does) lists the
pods of its namespace through ``https://kubernetes.default.svc`` and is refused secrets with
upstream's 403. The default ServiceAccount of the namespace, bound to nothing, is refused
pods too.
"""

from __future__ import annotations

import json
import textwrap
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cluster_fixture import Cluster
from cluster_fixture import svcnet_cluster as svcnet_cluster

pytestmark = pytest.mark.e2e

# GET each path with the mounted token; print one JSON line per answer (code, body). A
# connection that fails (cluster DNS still starting with the cluster) is retried, as client
# libraries do; an HTTP answer is final.
CLIENT = textwrap.dedent("""\
    import json, ssl, sys, time, urllib.error, urllib.request
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    ns = open(sa + "/namespace").read()
    token = open(sa + "/token").read()
    ctx = ssl.create_default_context(cafile=sa + "/ca.crt")
    for what in sys.argv[1:]:
        req = urllib.request.Request(
            f"https://kubernetes.default.svc/api/v1/namespaces/{ns}/{what}",
            headers={"Authorization": "Bearer " + token},
        )
        for attempt in range(30):
            try:
                with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                    print(json.dumps([r.status, json.load(r)]))
            except urllib.error.HTTPError as e:
                print(json.dumps([e.code, json.load(e)]))
            except OSError as e:
                print("retrying:", e, file=sys.stderr)
                time.sleep(1)
                continue
            break
""")


@pytest.fixture
def namespace(svcnet_cluster: Cluster) -> Iterator[str]:
    name = "rbac-" + uuid.uuid4().hex[:6]
    svcnet_cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        svcnet_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def run_client(c: Cluster, namespace: str, name: str, sa: str) -> list[tuple[int, Any]]:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "serviceAccountName": sa,
            "restartPolicy": "Never",
            "containers": [{
                "name": "c", "image": "python",
                "command": ["python3", "-c", CLIENT, "pods", "secrets"],
            }],
        },
    }  # fmt: skip
    c.kubectl("apply", "-f", "-", input=json.dumps(pod))
    c.wait_for(
        f"pod/{name}",
        lambda p: p["status"].get("phase") in ("Succeeded", "Failed"),
        90.0,
        "-n",
        namespace,
    )
    out = c.kubectl("logs", name, "-n", namespace).stdout
    answers = [line for line in out.splitlines() if line.startswith("[")]
    assert len(answers) == 2, out
    return [tuple(json.loads(line)) for line in answers]  # type: ignore[misc]


def test_service_account_lists_pods_and_is_refused_secrets(
    svcnet_cluster: Cluster, namespace: str
) -> None:
    c = svcnet_cluster
    c.kubectl("create", "serviceaccount", "lister", "-n", namespace)
    c.kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", namespace)
    c.kubectl(
        "create", "rolebinding", "lister", "--role=pod-reader",
        f"--serviceaccount={namespace}:lister", "-n", namespace,
    )  # fmt: skip
    user = f"system:serviceaccount:{namespace}:lister"
    (pods_code, pods), (secrets_code, secrets) = run_client(c, namespace, "lister", "lister")
    assert pods_code == 200
    assert pods["kind"] == "PodList"
    assert "lister" in [p["metadata"]["name"] for p in pods["items"]]
    assert secrets_code == 403
    assert secrets["reason"] == "Forbidden"
    assert secrets["message"] == (
        f'secrets is forbidden: User "{user}" cannot list resource "secrets" in API group ""'
        f' in the namespace "{namespace}"'
    )
    # The same answers from kubectl auth can-i, impersonating the account.
    assert (
        c.kubectl("auth", "can-i", "list", "pods", "-n", namespace, f"--as={user}").stdout
        == "yes\n"
    )
    denied = c.kubectl(
        "auth", "can-i", "list", "secrets", "-n", namespace, f"--as={user}", check=False
    )
    assert denied.stdout == "no\n"


def test_an_unbound_service_account_is_refused(svcnet_cluster: Cluster, namespace: str) -> None:
    c = svcnet_cluster
    c.wait_for("serviceaccount/default", bool, 20.0, "-n", namespace)
    (pods_code, pods), _ = run_client(c, namespace, "nobody", "default")
    assert pods_code == 403
    assert pods["message"] == (
        f'pods is forbidden: User "system:serviceaccount:{namespace}:default" cannot list'
        f' resource "pods" in API group "" in the namespace "{namespace}"'
    )
