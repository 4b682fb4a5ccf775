"""ClusterRole aggregation (pure plan) and the bootstrap policy it builds admin/edit/view
from."""

from __future__ import annotations

from typing import Any

from svcnet.apiserver.rbac import policy
from svcnet.apiserver.rbac.aggregation import plan_aggregation

R1 = {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}
R2 = {"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}


def cr(
    name: str, rules: list[Any], labels: dict[str, str] | None = None, select: str = ""
) -> dict[str, Any]:
    role: dict[str, Any] = {"metadata": {"name": name, "labels": labels or {}}, "rules": rules}
    if select:
        role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {select: "true"}}]}
    return role


def test_union_of_matching_roles_in_name_order_without_repeats() -> None:
    roles = [
        cr("agg", [], select="x"),
        cr("b", [R2, R1], {"x": "true"}),
        cr("a", [R1], {"x": "true"}),
        cr("c", [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]),
    ]
    assert plan_aggregation(roles) == {"agg": [R1, R2]}


def test_nothing_to_do_when_rules_already_match() -> None:
    assert plan_aggregation([cr("agg", [R1], select="x"), cr("a", [R1], {"x": "true"})]) == {}


def test_a_role_no_longer_matched_drops_out() -> None:
    assert plan_aggregation([cr("agg", [R1], select="x"), cr("a", [R1])]) == {"agg": []}


def test_default_policy_aggregates_view_into_edit_into_admin() -> None:
    plan = plan_aggregation(policy.cluster_roles())
    view, edit, admin = plan["view"], plan["edit"], plan["admin"]
    assert view and all(r in edit for r in view) and all(r in admin for r in edit)
    assert len(view) < len(edit) < len(admin)
    # view reads no secrets; edit does.
    secret_get = [r for r in view if "secrets" in r["resources"]]
    assert not secret_get
    assert any("secrets" in r["resources"] and "get" in r["verbs"] for r in edit)


def test_reconcile_adds_back_a_lost_rule_unless_autoupdate_is_off() -> None:
    want = next(r for r in policy.cluster_roles() if r["metadata"]["name"] == "system:discovery")
    stripped = {**want, "rules": []}
    assert policy.reconcile_role(stripped, want) is not None
    assert policy.reconcile_role(want, want) is None
    off = {
        **stripped,
        "metadata": {**want["metadata"], "annotations": {policy.AUTOUPDATE_ANNOTATION: "false"}},
    }
    assert policy.reconcile_role(off, want) is None
