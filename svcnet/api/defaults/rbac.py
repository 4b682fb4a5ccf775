"""rbac.authorization.k8s.io/v1 defaults (``pkg/apis/rbac/v1/defaults.go``)."""

from __future__ import annotations

from typing import Any

GROUP = "rbac.authorization.k8s.io"


def default_binding(binding: dict[str, Any]) -> None:
    """SetDefaults_RoleBinding / ClusterRoleBinding and SetDefaults_Subject: the roleRef's
    apiGroup, and User and Group subjects' apiGroup, default to the RBAC group."""
    ref = binding.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = GROUP
    for subject in binding.get("subjects") or ():
        if (
            isinstance(subject, dict)
            and not subject.get("apiGroup")
            and subject.get("kind") in ("User", "Group")
        ):
            subject["apiGroup"] = GROUP
