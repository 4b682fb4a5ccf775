"""The default roles and bindings (upstream's ``rbac/bootstrappolicy``), as data.

Every ClusterRole and ClusterRoleBinding upstream creates that matters to what svcnet
serves: ``cluster-admin`` bound to ``system:masters`` (the admin kubeconfig's group), the
user-facing ``admin``/``edit``/``view`` built by aggregation from the
``system:aggregate-to-*`` roles, discovery, basic-user (the self reviews) and
public-info-viewer (health and version). Each carries upstream's label
``kubernetes.io/bootstrapping: rbac-defaults`` and annotation
``rbac.authorization.kubernetes.io/autoupdate: "true"``: the API server adds back what is
missing at every start, unless a user set autoupdate to false.
"""

from __future__ import annotations

from typing import Any

GROUP = "rbac.authorization.k8s.io"
API_VERSION = f"{GROUP}/v1"
BOOTSTRAP_LABEL = "kubernetes.io/bootstrapping"
AUTOUPDATE_ANNOTATION = "rbac.authorization.kubernetes.io/autoupdate"
AGGREGATE_TO = "rbac.authorization.k8s.io/aggregate-to-"

READ = ["get", "list", "watch"]
READ_WRITE = ["create", "delete", "deletecollection", "patch", "update"]


def _rule(verbs: list[str], groups: list[str], resources: list[str]) -> dict[str, Any]:
    return {"verbs": list(verbs), "apiGroups": list(groups), "resources": list(resources)}


def _urls(verbs: list[str], urls: list[str]) -> dict[str, Any]:
    return {"verbs": list(verbs), "nonResourceURLs": list(urls)}


def _meta(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "labels": {BOOTSTRAP_LABEL: "rbac-defaults", **(labels or {})},
        "annotations": {AUTOUPDATE_ANNOTATION: "true"},
    }


def _cluster_role(
    name: str,
    rules: list[dict[str, Any]],
    labels: dict[str, str] | None = None,
    aggregate_from: str = "",
) -> dict[str, Any]:
    role: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "ClusterRole",
        "metadata": _meta(name, labels),
        "rules": rules,
    }
    if aggregate_from:
        role["aggregationRule"] = {
            "clusterRoleSelectors": [{"matchLabels": {AGGREGATE_TO + aggregate_from: "true"}}]
        }
    return role


_VIEW = [
    _rule(READ, [""], ["pods", "replicationcontrollers", "replicationcontrollers/scale",
                       "serviceaccounts", "services", "services/status", "endpoints",
                       "persistentvolumeclaims", "persistentvolumeclaims/status", "configmaps"]),
    _rule(READ, [""], ["limitranges", "resourcequotas", "bindings", "events", "pods/status",
                       "resourcequotas/status", "namespaces/status",
                       "replicationcontrollers/status", "pods/log"]),
    _rule(READ, [""], ["namespaces"]),
    _rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
    _rule(READ, ["apps"], ["controllerrevisions", "statefulsets", "statefulsets/scale",
                           "statefulsets/status", "daemonsets", "daemonsets/status",
                           "deployments", "deployments/scale", "deployments/status",
                           "replicasets", "replicasets/scale", "replicasets/status"]),
    _rule(READ, ["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
    _rule(READ, ["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
    _rule(READ, ["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
    _rule(READ, ["networking.k8s.io"], ["networkpolicies", "ingresses", "ingresses/status"]),
]  # fmt: skip

_EDIT = [
    _rule(["impersonate"], [""], ["serviceaccounts"]),
    _rule(READ_WRITE, [""], ["pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"]),
    _rule(["create"], [""], ["pods/eviction"]),
    _rule(READ_WRITE, [""], ["replicationcontrollers", "replicationcontrollers/scale",
                             "serviceaccounts", "services", "services/proxy",
                             "persistentvolumeclaims", "configmaps", "secrets", "events"]),
    _rule(["create"], [""], ["serviceaccounts/token"]),
    _rule(READ_WRITE, ["apps"], ["statefulsets", "statefulsets/scale", "daemonsets",
                                 "deployments", "deployments/scale", "deployments/rollback",
                                 "replicasets", "replicasets/scale"]),
    _rule(READ_WRITE, ["autoscaling"], ["horizontalpodautoscalers"]),
    _rule(READ_WRITE, ["batch"], ["cronjobs", "jobs"]),
    _rule(READ_WRITE, ["policy"], ["poddisruptionbudgets"]),
    _rule(READ_WRITE, ["networking.k8s.io"], ["networkpolicies", "ingresses"]),
    _rule(READ_WRITE, ["coordination.k8s.io"], ["leases"]),
    _rule(READ, [""], ["pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets",
                       "services/proxy"]),
]  # fmt: skip

_ADMIN = [
    _rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
    _rule([*READ, *READ_WRITE], [GROUP], ["rolebindings", "roles"]),
]

_HEALTH = ["/healthz", "/livez", "/readyz", "/version", "/version/"]


def cluster_roles() -> list[dict[str, Any]]:
    return [
        _cluster_role(
            "cluster-admin",
            [_rule(["*"], ["*"], ["*"]), _urls(["*"], ["*"])],
        ),
        _cluster_role(
            "system:discovery",
            [
                _urls(
                    ["get"],
                    [
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                        "/healthz",
                        "/livez",
                        "/openapi",
                        "/openapi/*",
                        "/readyz",
                        "/version",
                        "/version/",
                    ],
                )
            ],
        ),
        _cluster_role(
            "system:basic-user",
            [
                _rule(
                    ["create"],
                    ["authorization.k8s.io"],
                    ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                _rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"]),
            ],
        ),
        _cluster_role("system:public-info-viewer", [_urls(["get"], _HEALTH)]),
        _cluster_role(
            "system:service-account-issuer-discovery",
            [
                _urls(
                    ["get"],
                    [
                        "/.well-known/openid-configuration",
                        "/.well-known/openid-configuration/",
                        "/openid/v1/jwks",
                        "/openid/v1/jwks/",
                    ],
                )
            ],
        ),
        _cluster_role("admin", [], aggregate_from="admin"),
        _cluster_role("edit", [], {AGGREGATE_TO + "admin": "true"}, aggregate_from="edit"),
        _cluster_role("view", [], {AGGREGATE_TO + "edit": "true"}, aggregate_from="view"),
        _cluster_role("system:aggregate-to-admin", _ADMIN, {AGGREGATE_TO + "admin": "true"}),
        _cluster_role("system:aggregate-to-edit", _EDIT, {AGGREGATE_TO + "edit": "true"}),
        _cluster_role("system:aggregate-to-view", _VIEW, {AGGREGATE_TO + "view": "true"}),
        _cluster_role(
            "system:auth-delegator",
            [
                _rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
                _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
            ],
        ),
    ]


def _binding(name: str, *groups: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterRoleBinding",
        "metadata": _meta(name),
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": GROUP, "kind": "Group", "name": g} for g in groups],
    }


def cluster_role_bindings() -> list[dict[str, Any]]:
    return [
        _binding("cluster-admin", "system:masters"),
        _binding("system:discovery", "system:authenticated"),
        _binding("system:basic-user", "system:authenticated"),
        _binding("system:public-info-viewer", "system:authenticated", "system:unauthenticated"),
        _binding("system:service-account-issuer-discovery", "system:serviceaccounts"),
    ]


def reconcile_role(current: dict[str, Any], want: dict[str, Any]) -> dict[str, Any] | None:
    """The ClusterRole to write back when a stored default lost something, else None
    (upstream's ``reconciliation.ReconcileClusterRole``: rules and labels are added, never
    removed; autoupdate "false" leaves the role alone)."""
    meta = current.get("metadata") or {}
    if (meta.get("annotations") or {}).get(AUTOUPDATE_ANNOTATION) == "false":
        return None
    out = dict(current)
    changed = False
    labels = dict(meta.get("labels") or {})
    for k, v in want["metadata"]["labels"].items():
        if labels.get(k) != v:
            labels[k] = v
            changed = True
    if "aggregationRule" in want:
        if current.get("aggregationRule") != want["aggregationRule"]:
            out["aggregationRule"] = want["aggregationRule"]
            changed = True
    else:
        rules = list(current.get("rules") or [])
        for r in want["rules"]:
            if r not in rules:
                rules.append(r)
                changed = True
        out["rules"] = rules
    if not changed:
        return None
    out["metadata"] = {**meta, "labels": labels}
    return out


def reconcile_binding(current: dict[str, Any], want: dict[str, Any]) -> dict[str, Any] | None:
    """A default binding with its missing subjects added back, else None."""
    meta = current.get("metadata") or {}
    if (meta.get("annotations") or {}).get(AUTOUPDATE_ANNOTATION) == "false":
        return None
    subjects = list(current.get("subjects") or [])
    missing = [s for s in want["subjects"] if s not in subjects]
    if not missing:
        return None
    return {**current, "subjects": subjects + missing}
