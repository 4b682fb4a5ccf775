"""RBAC decisions (pure): rule matching, subjects and scopes of bindings, missing roles, the
403 message, and the privileged group. Tables of (rule, request, expected)."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.apiserver.rbac.authorizer import RbacAuthorizer, attributes, denial
from svcnet.apiserver.rbac.index import PolicyIndex
from svcnet.apiserver.rbac.rules import Attributes, Rule
from svcnet.apiserver.satoken import UserInfo

SA = "system:serviceaccount:ns:sa"
SA_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated")


def res(
    verb: str,
    resource: str,
    group: str = "",
    sub: str = "",
    ns: str = "ns",
    name: str = "",
    user: str = SA,
    groups: tuple[str, ...] = SA_GROUPS,
) -> Attributes:
    return Attributes(user, groups, verb, True, group, "v1", resource, sub, ns, name)


def url(verb: str, path: str) -> Attributes:
    return Attributes(SA, SA_GROUPS, verb, False, path=path)


def rule(**kw: Any) -> Rule:
    return Rule.from_dict(kw)


RULE_CASES = [
    # (rule, request, allowed)
    (rule(verbs=["get"], apiGroups=[""], resources=["pods"]), res("get", "pods"), True),
    (rule(verbs=["get"], apiGroups=[""], resources=["pods"]), res("list", "pods"), False),
    (rule(verbs=["*"], apiGroups=[""], resources=["pods"]), res("watch", "pods"), True),
    (rule(verbs=["get"], apiGroups=["apps"], resources=["pods"]), res("get", "pods"), False),
    (rule(verbs=["get"], apiGroups=["*"], resources=["deployments"]), res("get", "deployments", "apps"), True),
    (rule(verbs=["get"], apiGroups=[""], resources=["*"]), res("get", "secrets"), True),
    # Subresources are resources of their own...
    (rule(verbs=["get"], apiGroups=[""], resources=["pods"]), res("get", "pods", sub="log"), False),
    (rule(verbs=["get"], apiGroups=[""], resources=["pods/log"]), res("get", "pods", sub="log"), True),
    (rule(verbs=["get"], apiGroups=[""], resources=["pods/log"]), res("get", "pods"), False),
    # ...but "*" covers them, and "*/log" is the log of everything.
    (rule(verbs=["get"], apiGroups=[""], resources=["*"]), res("get", "pods", sub="log"), True),
    (rule(verbs=["get"], apiGroups=[""], resources=["*/log"]), res("get", "pods", sub="log"), True),
    (rule(verbs=["get"], apiGroups=[""], resources=["*/log"]), res("get", "pods", sub="exec"), False),
    # resourceNames restrict to those objects (a list has no name: not allowed).
    (rule(verbs=["get"], apiGroups=[""], resources=["cm"], resourceNames=["a"]), res("get", "cm", name="a"), True),
    (rule(verbs=["get"], apiGroups=[""], resources=["cm"], resourceNames=["a"]), res("get", "cm", name="b"), False),
    (rule(verbs=["list"], apiGroups=[""], resources=["cm"], resourceNames=["a"]), res("list", "cm"), False),
    # Non-resource URLs: exact, prefix with a trailing "*", or everything.
    (rule(verbs=["get"], nonResourceURLs=["/healthz"]), url("get", "/healthz"), True),
    (rule(verbs=["get"], nonResourceURLs=["/healthz"]), url("get", "/healthz/ping"), False),
    (rule(verbs=["get"], nonResourceURLs=["/apis/*"]), url("get", "/apis/apps/v1"), True),
    (rule(verbs=["get"], nonResourceURLs=["*"]), url("get", "/metrics"), True),
    (rule(verbs=["get"], nonResourceURLs=["/healthz"]), url("post", "/healthz"), False),
    # Resource rules never match URLs and the other way round.
    (rule(verbs=["*"], apiGroups=["*"], resources=["*"]), url("get", "/healthz"), False),
    (rule(verbs=["*"], nonResourceURLs=["*"]), res("get", "pods"), False),
]  # fmt: skip


@pytest.mark.parametrize(("r", "a", "allowed"), RULE_CASES)
def test_rule_matching(r: Rule, a: Attributes, allowed: bool) -> None:
    assert r.allows(a) is allowed


def role(name: str, *rules: dict[str, Any], ns: str = "") -> dict[str, Any]:
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"metadata": meta, "rules": list(rules)}


def binding(
    name: str, kind: str, role_name: str, *subjects: dict[str, Any], ns: str = ""
) -> dict[str, Any]:
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {
        "metadata": meta,
        "roleRef": {"kind": kind, "name": role_name},
        "subjects": list(subjects),
    }


PODS_READ = {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}


def sa(name: str, ns: str = "") -> dict[str, Any]:
    return {"kind": "ServiceAccount", "name": name, **({"namespace": ns} if ns else {})}


SUBJECT_CASES = [
    # (binding subjects, allowed for system:serviceaccount:ns:sa)
    ([sa("sa", "ns")], True),
    ([sa("sa")], True),  # a RoleBinding's own namespace
    ([sa("sa", "other")], False),
    ([sa("other", "ns")], False),
    ([{"kind": "User", "name": SA}], True),
    ([{"kind": "Group", "name": "system:serviceaccounts:ns"}], True),
    ([{"kind": "Group", "name": "system:serviceaccounts:other"}], False),
    ([{"kind": "Group", "name": "system:authenticated"}], True),
    ([{"kind": "User", "name": "alice"}], False),
    ([], False),
]


@pytest.mark.parametrize(("subjects", "allowed"), SUBJECT_CASES)
def test_role_binding_subjects(subjects: list[dict[str, Any]], allowed: bool) -> None:
    index = PolicyIndex(
        roles=[role("r", PODS_READ, ns="ns")],
        role_bindings=[binding("b", "Role", "r", *subjects, ns="ns")],
    )
    assert index.authorize(res("list", "pods"))[0] is allowed


def test_role_binding_applies_in_its_namespace_only() -> None:
    index = PolicyIndex(
        cluster_roles=[role("reader", PODS_READ)],
        role_bindings=[binding("b", "ClusterRole", "reader", sa("sa", "ns"), ns="ns")],
    )
    assert index.authorize(res("list", "pods", ns="ns"))[0]
    assert not index.authorize(res("list", "pods", ns="other"))[0]
    assert not index.authorize(res("list", "pods", ns=""))[0]  # all namespaces


def test_cluster_role_binding_applies_everywhere() -> None:
    index = PolicyIndex(
        cluster_roles=[role("reader", PODS_READ)],
        cluster_role_bindings=[binding("b", "ClusterRole", "reader", sa("sa", "ns"))],
    )
    assert index.authorize(res("list", "pods", ns="other"))[0]
    assert index.authorize(res("list", "pods", ns=""))[0]


def test_a_role_of_another_namespace_is_not_found() -> None:
    index = PolicyIndex(
        roles=[role("r", PODS_READ, ns="elsewhere")],
        role_bindings=[binding("b", "Role", "r", sa("sa"), ns="ns")],
    )
    assert index.authorize(res("list", "pods")) == (
        False,
        ['role.rbac.authorization.k8s.io "r" not found'],
    )


def test_denial_message_names_the_missing_role() -> None:
    authz = RbacAuthorizer(None)
    authz.use(
        PolicyIndex(cluster_role_bindings=[binding("b", "ClusterRole", "gone", sa("sa", "ns"))])
    )
    a = res("list", "pods")
    decision = authz.decide(a)
    assert not decision.allowed
    assert denial(a, decision.reason).message == (
        'pods is forbidden: User "system:serviceaccount:ns:sa" cannot list resource "pods" in'
        ' API group "" in the namespace "ns": RBAC: clusterrole.rbac.authorization.k8s.io'
        ' "gone" not found'
    )


DENIAL_CASES = [
    (
        res("get", "deployments", "apps", name="web"),
        'deployments.apps "web" is forbidden: User "system:serviceaccount:ns:sa" cannot get'
        ' resource "deployments" in API group "apps" in the namespace "ns"',
    ),
    (
        res("get", "pods", sub="log", name="p"),
        'pods "p" is forbidden: User "system:serviceaccount:ns:sa" cannot get resource'
        ' "pods/log" in API group "" in the namespace "ns"',
    ),
    (
        res("list", "nodes", ns=""),
        'nodes is forbidden: User "system:serviceaccount:ns:sa" cannot list resource "nodes"'
        ' in API group "" at the cluster scope',
    ),
    (
        url("get", "/metrics"),
        'forbidden: User "system:serviceaccount:ns:sa" cannot get path "/metrics"',
    ),
]


@pytest.mark.parametrize(("a", "message"), DENIAL_CASES)
def test_denial_messages(a: Attributes, message: str) -> None:
    err = denial(a, "")
    assert (err.code, err.message) == (403, message)


def test_system_masters_bypasses_an_empty_policy() -> None:
    authz = RbacAuthorizer(None)
    a = res("delete", "nodes", ns="", user="admin", groups=("system:masters",))
    assert authz.decide(a).allowed
    assert not authz.decide(res("delete", "nodes", ns="")).allowed


ATTRIBUTE_CASES = [
    # (method, path, query, verb, resource, subresource, namespace, name)
    ("GET", "/api/v1/namespaces/ns/pods", {}, "list", "pods", "", "ns", ""),
    ("GET", "/api/v1/namespaces/ns/pods", {"watch": "true"}, "watch", "pods", "", "ns", ""),
    ("GET", "/api/v1/namespaces/ns/pods/p/log", {}, "get", "pods", "log", "ns", "p"),
    ("POST", "/api/v1/namespaces/ns/pods/p/exec", {}, "create", "pods", "exec", "ns", "p"),
    ("DELETE", "/api/v1/namespaces/ns/pods", {}, "deletecollection", "pods", "", "ns", ""),
    # A namespace is its own namespace; a name pinned by a field selector is the name.
    ("GET", "/api/v1/namespaces/ns", {}, "get", "namespaces", "", "ns", "ns"),
    ("GET", "/api/v1/namespaces/ns/pods", {"fieldSelector": "metadata.name=p"}, "list", "pods", "", "ns", "p"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "query", "verb", "resource", "sub", "ns", "name"), ATTRIBUTE_CASES
)
def test_request_attributes(
    method: str,
    path: str,
    query: dict[str, str],
    verb: str,
    resource: str,
    sub: str,
    ns: str,
    name: str,
) -> None:
    a = attributes(UserInfo("u"), method, path, query)
    assert (a.verb, a.resource, a.subresource, a.namespace, a.name) == (
        verb, resource, sub, ns, name,
    )  # fmt: skip


def test_non_resource_request_verb_is_the_method() -> None:
    a = attributes(UserInfo("u"), "GET", "/healthz", {})
    assert (a.resource_request, a.verb, a.path) == (False, "get", "/healthz")
