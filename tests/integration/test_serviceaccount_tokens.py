"""Service-account tokens with the real kubectl: ``kubectl create token`` (the TokenRequest
subresource, sent as protobuf), the token authenticating as the ServiceAccount
(``kubectl auth whoami``, a SelfSubjectReview), and tokens refused once what they are bound to
is gone."""

from __future__ import annotations

import json
from pathlib import Path

from apiserver_harness import Http, Kubectl, start_in_thread, stop_in_thread
from cryptography import x509

from svcnet.apiserver.server import ApiServerConfig

POD = """
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  serviceAccountName: builder
  automountServiceAccountToken: false
  containers: [{name: c, image: registry.k8s.io/pause:3.10}]
"""
UNAUTHORIZED = "error: You must be logged in to the server (Unauthorized)"


def whoami(kubectl: Kubectl, token: str) -> dict[str, object]:
    out = json.loads(kubectl("auth", "whoami", "--token", token, "-o", "json"))
    assert out["kind"] == "SelfSubjectReview"
    return out["status"]["userInfo"]  # type: ignore[no-any-return]


def test_create_token_authenticates_as_the_service_account(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl("create", "serviceaccount", "builder")
    token = kubectl("create", "token", "builder").strip()
    user = whoami(kubectl, token)
    assert user["username"] == f"system:serviceaccount:{namespace}:builder"
    assert user["groups"] == [
        "system:serviceaccounts",
        f"system:serviceaccounts:{namespace}",
        "system:authenticated",
    ]
    uid = kubectl("get", "sa", "builder", "-o", "jsonpath={.metadata.uid}")
    assert user["uid"] == uid
    # Authenticated, but RBAC grants a fresh ServiceAccount nothing in its namespace.
    proc = kubectl.run("get", "serviceaccounts", "--token", token, check=False)
    assert "(Forbidden): serviceaccounts is forbidden" in proc.stderr


def test_token_of_a_deleted_service_account_is_refused(kubectl: Kubectl) -> None:
    kubectl("create", "serviceaccount", "builder")
    token = kubectl("create", "token", "builder").strip()
    kubectl("delete", "serviceaccount", "builder")
    proc = kubectl.run("get", "pods", "--token", token, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == UNAUTHORIZED
    # Recreated under the same name, it is another account (another uid): still refused.
    kubectl("create", "serviceaccount", "builder")
    assert kubectl.run("get", "pods", "--token", token, check=False).returncode == 1


def test_pod_bound_token_dies_with_its_pod(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "serviceaccount", "builder")
    kubectl("apply", "-f", "-", input=POD)
    token = kubectl(
        "create", "token", "builder", "--bound-object-kind", "Pod", "--bound-object-name", "web"
    ).strip()
    pod_uid = kubectl("get", "pod", "web", "-o", "jsonpath={.metadata.uid}")
    extra = whoami(kubectl, token)["extra"]
    assert extra["authentication.kubernetes.io/pod-name"] == ["web"]  # type: ignore[index]
    assert extra["authentication.kubernetes.io/pod-uid"] == [pod_uid]  # type: ignore[index]
    # Never scheduled: the delete removes it at once.
    kubectl("delete", "pod", "web", "--wait=false")
    proc = kubectl.run("auth", "whoami", "--token", token, check=False)
    assert proc.stderr.strip() == UNAUTHORIZED


def test_create_token_errors_as_upstream(kubectl: Kubectl) -> None:
    missing = kubectl.run("create", "token", "nobody", check=False)
    assert missing.stderr.strip() == (
        'error: failed to create token: serviceaccounts "nobody" not found'
    )
    kubectl("create", "serviceaccount", "builder")
    short = kubectl.run("create", "token", "builder", "--duration", "5m", check=False)
    assert short.stderr.strip() == (
        'error: failed to create token: TokenRequest.authentication.k8s.io "" is invalid: '
        "spec.expirationSeconds: Invalid value: 300: may not specify a duration less than "
        "10 minutes"
    )
    kubectl("apply", "-f", "-", input=POD.replace("builder", "default"))
    other = kubectl.run(
        "create",
        "token",
        "builder",
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        "web",
        check=False,
    )
    assert other.stderr.strip() == (
        'error: failed to create token: cannot bind token for serviceaccount "builder" to pod '
        'running with serviceaccount "default"'
    )


def test_discovery_lists_the_token_subresource(http: Http) -> None:
    status, _, body = http.request("GET", "/api/v1")
    assert status == 200
    token = [r for r in json.loads(body)["resources"] if r["name"] == "serviceaccounts/token"]
    assert token == [
        {
            "name": "serviceaccounts/token",
            "singularName": "",
            "namespaced": True,
            "group": "authentication.k8s.io",
            "version": "v1",
            "kind": "TokenRequest",
            "verbs": ["create"],
        }
    ]


def test_pods_get_the_kube_api_access_volume(kubectl: Kubectl, namespace: str) -> None:
    kubectl("run", "web", "--image=registry.k8s.io/pause:3.10", "--restart=Never")
    pod = json.loads(kubectl("get", "pod", "web", "-o", "json"))
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "default"
    [volume] = spec["volumes"]
    assert volume["name"].startswith("kube-api-access-") and len(volume["name"]) == 21
    assert volume["projected"]["sources"][0] == {
        "serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}
    }
    assert spec["containers"][0]["volumeMounts"] == [
        {
            "name": volume["name"],
            "readOnly": True,
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
        }
    ]
    # What the node agent asks for the volume's token: pod-bound, 3607 s (a year in truth).
    proc = kubectl.run(
        "create",
        "token",
        "default",
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        "web",
        "--duration",
        "3607s",
    )
    user = whoami(kubectl, proc.stdout.strip())
    assert user["username"] == f"system:serviceaccount:{namespace}:default"


def test_pod_of_a_missing_service_account_is_forbidden(kubectl: Kubectl, namespace: str) -> None:
    proc = kubectl.run(
        "run",
        "web",
        "--image=registry.k8s.io/pause:3.10",
        "--restart=Never",
        "--overrides",
        '{"spec":{"serviceAccountName":"nobody"}}',
        check=False,
    )
    assert proc.stderr.strip() == (
        f'Error from server (Forbidden): pods "web" is forbidden: error looking up service '
        f'account {namespace}/nobody: serviceaccount "nobody" not found'
    )


def test_serving_cert_names_the_kubernetes_service_and_tokens_survive_a_restart(
    tmp_path: Path,
) -> None:
    config = ApiServerConfig(data_dir=tmp_path / "s", port=0, service_cidr="10.100.0.0/16")
    running, thread = start_in_thread(config)
    try:
        k = Kubectl(running.kubeconfig, "default")
        k("create", "serviceaccount", "builder")
        token = k("create", "token", "builder").strip()
    finally:
        stop_in_thread(running, thread)
    cert = x509.load_pem_x509_certificate((tmp_path / "s" / "apiserver.crt").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    } <= set(sans.get_values_for_type(x509.DNSName))
    assert "10.100.0.1" in {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    # The signing key is kept in the data dir: a token issued before a restart still works.
    running, thread = start_in_thread(ApiServerConfig(data_dir=tmp_path / "s", port=0))
    try:
        user = whoami(Kubectl(running.kubeconfig, "default"), token)
        assert user["username"] == "system:serviceaccount:default:builder"
    finally:
        stop_in_thread(running, thread)


def test_node_bound_token_dies_with_its_node(kubectl: Kubectl, namespace: str) -> None:
    node = f"{namespace}-node"
    kubectl(
        "create",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}),
    )
    try:
        kubectl("create", "serviceaccount", "builder")
        token = kubectl(
            "create", "token", "builder", "--bound-object-kind", "Node", "--bound-object-name", node
        ).strip()
        extra = whoami(kubectl, token)["extra"]
        assert extra["authentication.kubernetes.io/node-name"] == [node]  # type: ignore[index]
    finally:
        kubectl("delete", "node", node)
    proc = kubectl.run("auth", "whoami", "--token", token, check=False)
    assert proc.stderr.strip() == UNAUTHORIZED
