"""Escalation checks (pure): which owner rules cover which requested rules, and the message
upstream's ConfirmNoEscalation gives; the hook's decisions on a policy index."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.api.errors import Forbidden
from svcnet.api.registry import CLUSTERROLES, ROLEBINDINGS, ROLES
from svcnet.apiserver.rbac.authorizer import CURRENT_USER, RbacAuthorizer
from svcnet.apiserver.rbac.escalation import RbacHooks, escalation_error
from svcnet.apiserver.rbac.index import PolicyIndex
from svcnet.apiserver.rbac.rules import Rule, uncovered
from svcnet.apiserver.satoken import UserInfo


def rule(**kw: Any) -> Rule:
    return Rule.from_dict(kw)


COVER_CASES = [
    # (owner rules, requested rule, covered)
    ([rule(verbs=["get", "list"], apiGroups=[""], resources=["pods"])],
     rule(verbs=["get"], apiGroups=[""], resources=["pods"]), True),
    ([rule(verbs=["get"], apiGroups=[""], resources=["pods"])],
     rule(verbs=["get", "list"], apiGroups=[""], resources=["pods"]), False),
    ([rule(verbs=["*"], apiGroups=["*"], resources=["*"])],
     rule(verbs=["delete"], apiGroups=["apps"], resources=["deployments/scale"]), True),
    # Covered piecewise by two owner rules.
    ([rule(verbs=["get"], apiGroups=[""], resources=["pods"]),
      rule(verbs=["list"], apiGroups=[""], resources=["pods"])],
     rule(verbs=["get", "list"], apiGroups=[""], resources=["pods"]), True),
    # "*/status" covers every status subresource, not the resource.
    ([rule(verbs=["get"], apiGroups=[""], resources=["*/status"])],
     rule(verbs=["get"], apiGroups=[""], resources=["pods/status"]), True),
    ([rule(verbs=["get"], apiGroups=[""], resources=["*/status"])],
     rule(verbs=["get"], apiGroups=[""], resources=["pods"]), False),
    # Names: an owner limited to names does not cover all names; unlimited covers any.
    ([rule(verbs=["get"], apiGroups=[""], resources=["cm"], resourceNames=["a"])],
     rule(verbs=["get"], apiGroups=[""], resources=["cm"]), False),
    ([rule(verbs=["get"], apiGroups=[""], resources=["cm"], resourceNames=["a"])],
     rule(verbs=["get"], apiGroups=[""], resources=["cm"], resourceNames=["a"]), True),
    ([rule(verbs=["get"], apiGroups=[""], resources=["cm"])],
     rule(verbs=["get"], apiGroups=[""], resources=["cm"], resourceNames=["b"]), True),
    # URLs: prefix rules cover what they prefix.
    ([rule(verbs=["get"], nonResourceURLs=["/apis/*"])],
     rule(verbs=["get"], nonResourceURLs=["/apis/apps"]), True),
    ([rule(verbs=["get"], nonResourceURLs=["/apis"])],
     rule(verbs=["get"], nonResourceURLs=["/apis/*"]), False),
]  # fmt: skip


@pytest.mark.parametrize(("owner", "wanted", "covered"), COVER_CASES)
def test_covers(owner: list[Rule], wanted: Rule, covered: bool) -> None:
    assert (not uncovered(owner, [wanted])) is covered


def test_message_lists_missing_rules_compacted_and_sorted() -> None:
    user = UserInfo("bob", groups=("devs", "system:authenticated"))
    owner = [rule(verbs=["get"], apiGroups=[""], resources=["pods"])]
    wanted = [
        rule(verbs=["get", "list", "delete"], apiGroups=[""], resources=["pods", "secrets"]),
        rule(verbs=["get"], nonResourceURLs=["/metrics"]),
    ]
    assert escalation_error(user, owner, ["x not found"], wanted) == (
        'user "bob" (groups=["devs" "system:authenticated"]) is attempting to grant RBAC'
        " permissions not currently held:\n"
        '{APIGroups:[""], Resources:["pods"], Verbs:["list" "delete"]}\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list" "delete"]}\n'
        '{NonResourceURLs:["/metrics"], Verbs:["get"]}'
        "; resolution errors: [x not found]"
    )


BOB = UserInfo("bob", groups=("system:authenticated",))
PODS = {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}
SECRETS = {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}


def hooks_for(rt: Any, *bob_rules: dict[str, Any]) -> RbacHooks:
    authz = RbacAuthorizer(None)
    authz.use(
        PolicyIndex(
            roles=[
                {"metadata": {"name": "bob", "namespace": "ns"}, "rules": list(bob_rules)},
                {"metadata": {"name": "secrets", "namespace": "ns"}, "rules": [SECRETS]},
            ],
            role_bindings=[
                {
                    "metadata": {"name": "bob", "namespace": "ns"},
                    "roleRef": {"kind": "Role", "name": "bob"},
                    "subjects": [{"kind": "User", "name": "bob"}],
                }
            ],
        )
    )
    return RbacHooks(rt, authz)


def new_role(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "new", "namespace": "ns"}, "rules": list(rules)}


def new_binding(role: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "nb", "namespace": "ns"},
        "roleRef": {"kind": "Role", "name": role},
        "subjects": [{"kind": "User", "name": "eve"}],
    }


@pytest.mark.parametrize(
    ("rt", "bob_rules", "obj", "allowed"),
    [
        (ROLES, [PODS], new_role(PODS), True),
        (ROLES, [PODS], new_role(SECRETS), False),
        # The escalate verb on roles lifts the check.
        (ROLES, [PODS, {"verbs": ["escalate"], "apiGroups": ["rbac.authorization.k8s.io"],
                        "resources": ["roles"]}], new_role(SECRETS), True),
        (ROLEBINDINGS, [PODS, SECRETS], new_binding("secrets"), True),
        (ROLEBINDINGS, [PODS], new_binding("secrets"), False),
        # The bind verb on that one role lifts it.
        (ROLEBINDINGS, [PODS, {"verbs": ["bind"], "apiGroups": ["rbac.authorization.k8s.io"],
                               "resources": ["roles"], "resourceNames": ["secrets"]}],
         new_binding("secrets"), True),
        (ROLEBINDINGS, [PODS], new_binding("absent"), False),
    ],
)  # fmt: skip
def test_hook_allows_only_held_permissions(
    rt: Any, bob_rules: list[dict[str, Any]], obj: dict[str, Any], allowed: bool
) -> None:
    hooks = hooks_for(rt, *bob_rules)
    token = CURRENT_USER.set(BOB)
    try:
        if allowed:
            hooks.begin_create(obj)(True)
        else:
            with pytest.raises(Forbidden):
                hooks.begin_create(obj)
    finally:
        CURRENT_USER.reset(token)


def test_unchanged_rules_may_be_updated_by_anyone_allowed_to_update() -> None:
    hooks = hooks_for(ROLES, PODS)
    token = CURRENT_USER.set(BOB)
    try:
        old = new_role(SECRETS)
        hooks.begin_update({**old, "metadata": {**old["metadata"], "labels": {"a": "b"}}}, old)
    finally:
        CURRENT_USER.reset(token)


def test_aggregation_rule_needs_every_permission() -> None:
    hooks = hooks_for(CLUSTERROLES, PODS)
    role = {
        "metadata": {"name": "agg"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]},
    }
    token = CURRENT_USER.set(UserInfo("bob", groups=("system:authenticated",)))
    try:
        with pytest.raises(Forbidden, match="must have cluster-admin privileges"):
            hooks.begin_create(role)
    finally:
        CURRENT_USER.reset(token)


def test_the_api_servers_own_writes_are_not_checked() -> None:
    hooks = hooks_for(ROLES)
    assert CURRENT_USER.get() is None
    hooks.begin_create(new_role(SECRETS))(True)
