"""RBAC with the real kubectl: roles and bindings created with ``kubectl create``, decisions
asked with ``kubectl auth can-i`` (also ``--as`` impersonation and ``--list``), requests with
a ServiceAccount's token answered 403 with upstream's message, escalation refused, and an
unauthenticated request still 401."""

from __future__ import annotations

import json
import time

import pytest
from apiserver_harness import Http, Kubectl, RunningServer

RBAC = "rbac.authorization.k8s.io"
SAR_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


def sa_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def can_i(kubectl: Kubectl, *args: str) -> str:
    proc = kubectl.run("auth", "can-i", *args, check=False)
    return proc.stdout.strip()


def test_role_and_rolebinding_grant_what_they_name(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "serviceaccount", "reader")
    kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods")
    kubectl(
        "create", "rolebinding", "read-pods", "--role=pod-reader",
        f"--serviceaccount={namespace}:reader",
    )  # fmt: skip
    who = f"--as={sa_user(namespace, 'reader')}"
    assert can_i(kubectl, "list", "pods", who) == "yes"
    assert can_i(kubectl, "get", "pods", who) == "yes"
    assert can_i(kubectl, "delete", "pods", who) == "no"
    assert can_i(kubectl, "list", "secrets", who) == "no"
    # Only in the namespace of the binding.
    assert can_i(kubectl, "list", "pods", "-n", "default", who) == "no"
    # pods/log is a subresource of its own.
    assert can_i(kubectl, "get", "pods", "--subresource=log", who) == "no"


def test_table_columns_as_kubectl_shows_them(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "role", "r", "--verb=get", "--resource=pods")
    kubectl("create", "rolebinding", "rb", "--role=r", "--user=alice", "--group=devs")
    header = kubectl("get", "role", "r").splitlines()[0].split()
    assert header == ["NAME", "CREATED", "AT"]
    wide = kubectl("get", "rolebinding", "rb", "-o", "wide").splitlines()
    assert wide[0].split() == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    cells = wide[1].split()
    assert cells[0:2] == ["rb", "Role/r"] and cells[3:5] == ["alice", "devs"]


def test_service_account_token_is_forbidden_with_upstreams_message(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl("create", "serviceaccount", "nobody")
    token = kubectl("create", "token", "nobody").strip()
    proc = kubectl.run("get", "pods", "--token", token, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f'Error from server (Forbidden): pods is forbidden: User "{sa_user(namespace, "nobody")}"'
        f' cannot list resource "pods" in API group "" in the namespace "{namespace}"'
    )
    # Once bound, the same token lists.
    kubectl(
        "create",
        "rolebinding",
        "view",
        "--clusterrole=view",
        f"--serviceaccount={namespace}:nobody",
    )
    assert kubectl.run("get", "pods", "--token", token, check=False).returncode == 0


def test_binding_to_a_missing_role_says_so_in_the_reason(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "serviceaccount", "lost")
    kubectl(
        "create", "rolebinding", "dangling", "--role=absent", f"--serviceaccount={namespace}:lost"
    )
    token = kubectl("create", "token", "lost").strip()
    proc = kubectl.run("get", "configmaps", "--token", token, check=False)
    assert proc.stderr.strip().endswith(f': RBAC: role.{RBAC} "absent" not found')


def test_a_role_cannot_grant_what_its_creator_lacks(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "serviceaccount", "lead")
    kubectl(
        "create",
        "role",
        "manage-roles",
        "--verb=create,get,list",
        f"--resource=roles.{RBAC},rolebindings.{RBAC}",
    )
    kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods")
    kubectl(
        "create",
        "rolebinding",
        "lead-roles",
        "--role=manage-roles",
        f"--serviceaccount={namespace}:lead",
    )
    kubectl(
        "create",
        "rolebinding",
        "lead-pods",
        "--role=pod-reader",
        f"--serviceaccount={namespace}:lead",
    )
    token = kubectl("create", "token", "lead").strip()
    user = sa_user(namespace, "lead")
    groups = (
        f'["system:serviceaccounts" "system:serviceaccounts:{namespace}" "system:authenticated"]'
    )
    # What it holds, it may grant.
    kubectl("create", "role", "sub-reader", "--verb=get", "--resource=pods", "--token", token)
    # Secrets it cannot read: refused, naming what is missing.
    proc = kubectl.run(
        "create", "role", "secret-reader", "--verb=get", "--resource=secrets", "--token", token,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f'Error from server (Forbidden): roles.{RBAC} "secret-reader" is forbidden: user "{user}"'
        f" (groups={groups}) is attempting to grant RBAC permissions not currently held:\n"
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}'
    )
    # Binding a role it does not hold the rules of: refused too.
    proc = kubectl.run(
        "create", "rolebinding", "grab", "--clusterrole=edit", f"--serviceaccount={namespace}:lead",
        "--token", token, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert f'rolebindings.{RBAC} "grab" is forbidden: user "{user}"' in proc.stderr
    # With the bind verb on that role, the binding is allowed.
    kubectl(
        "create",
        "role",
        "bind-edit",
        "--verb=bind",
        f"--resource=clusterroles.{RBAC}",
        "--resource-name=edit",
    )
    kubectl(
        "create",
        "rolebinding",
        "lead-bind",
        "--role=bind-edit",
        f"--serviceaccount={namespace}:lead",
    )
    kubectl(
        "create", "rolebinding", "grab", "--clusterrole=edit", f"--serviceaccount={namespace}:lead",
        "--token", token,
    )  # fmt: skip


def test_impersonation_needs_the_impersonate_verb(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "serviceaccount", "plain")
    token = kubectl("create", "token", "plain").strip()
    proc = kubectl.run("get", "pods", "--as=alice", "--token", token, check=False)
    assert proc.stderr.strip() == (
        f'Error from server (Forbidden): users "alice" is forbidden: User '
        f'"{sa_user(namespace, "plain")}" cannot impersonate resource "users" in API group ""'
        " at the cluster scope"
    )
    # The admin (system:masters) may impersonate anyone; the impersonated user is refused.
    proc = kubectl.run("get", "pods", "--as=alice", check=False)
    assert proc.stderr.strip() == (
        'Error from server (Forbidden): pods is forbidden: User "alice" cannot list resource'
        f' "pods" in API group "" in the namespace "{namespace}"'
    )
    # --as-group system:masters makes anyone all-powerful.
    assert can_i(kubectl, "delete", "nodes", "--as=alice", "--as-group=system:masters") == "yes"


def test_can_i_list_shows_the_rules(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "serviceaccount", "lister")
    kubectl(
        "create", "role", "cm", "--verb=get,watch", "--resource=configmaps", "--resource-name=app"
    )
    kubectl("create", "rolebinding", "cm", "--role=cm", f"--serviceaccount={namespace}:lister")
    out = kubectl("auth", "can-i", "--list", f"--as={sa_user(namespace, 'lister')}")
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}
    assert rows["configmaps"] == ["[]", "[app]", "[get", "watch]"]
    # The default roles every authenticated user holds.
    assert "selfsubjectaccessreviews.authorization.k8s.io" in rows


def test_subject_access_review(http: Http, namespace: str, kubectl: Kubectl) -> None:
    kubectl("create", "role", "r", "--verb=get", "--resource=pods")
    kubectl("create", "rolebinding", "rb", "--role=r", "--user=bob")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": "bob",
            "resourceAttributes": {"namespace": namespace, "verb": "get", "resource": "pods"},
        },
    }
    status, _, body = http.request("POST", SAR_PATH, json.dumps(review).encode())
    assert status == 201
    assert json.loads(body)["status"] == {"allowed": True}
    review["spec"] = {"resourceAttributes": {"verb": "get"}}
    status, _, body = http.request("POST", SAR_PATH, json.dumps(review).encode())
    assert status == 422
    assert json.loads(body)["message"] == (
        'SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Invalid value: "":'
        " at least one of user or group must be specified"
    )


def test_unauthenticated_is_401(kubectl: Kubectl) -> None:
    proc = kubectl.run("get", "pods", "--token", "not-a-token", check=False)
    assert proc.stderr.strip() == "error: You must be logged in to the server (Unauthorized)"


@pytest.mark.parametrize("role", ["cluster-admin", "admin", "edit", "view", "system:discovery"])
def test_default_roles_exist(kubectl: Kubectl, role: str) -> None:
    assert kubectl("get", "clusterrole", role, "-o", "name") == f"clusterrole.{RBAC}/{role}\n"


def test_view_is_aggregated_into_edit_and_admin(kubectl: Kubectl) -> None:
    def rules(name: str) -> list[dict[str, object]]:
        return json.loads(kubectl("get", "clusterrole", name, "-o", "json"))["rules"]  # type: ignore[no-any-return]

    view, edit, admin = rules("view"), rules("edit"), rules("admin")
    assert view and all(r in edit for r in view) and all(r in admin for r in edit)


def test_a_labelled_cluster_role_is_aggregated_into_view_at_once(
    fresh_apiserver: RunningServer,
) -> None:
    k = Kubectl(fresh_apiserver.kubeconfig, "")
    manifest = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": "widget-viewer",
            "labels": {f"{RBAC}/aggregate-to-view": "true"},
        },
        "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]}],
    }
    k("apply", "-f", "-", input=json.dumps(manifest))
    want = manifest["rules"][0]

    def aggregated(name: str) -> bool:
        return want in json.loads(k("get", "clusterrole", name, "-o", "json"))["rules"]

    # The aggregation runs after the write, in the API server: wait for it (bounded).
    deadline = time.monotonic() + 20
    while not all(aggregated(n) for n in ("view", "edit", "admin")):
        assert time.monotonic() < deadline, "view/edit/admin never gained the rule"
        time.sleep(0.2)
    k("delete", "clusterrole", "widget-viewer")
    deadline = time.monotonic() + 20
    while aggregated("view"):
        assert time.monotonic() < deadline, "view kept the rule of a deleted role"
        time.sleep(0.2)
