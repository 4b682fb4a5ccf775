"""The RBAC authorizer's view of the policy: roles by name, bindings by subject (pure).

Upstream's ``plugin/pkg/auth/authorizer/rbac`` visits every ClusterRoleBinding, then every
RoleBinding of the request's namespace, and asks of each whether it applies to the user; with
thousands of bindings that walk dominates a decision. Here a :class:`PolicyIndex` is built
once from the stored objects (after any RBAC write) and files each binding under the subjects
it names — a user name (a ServiceAccount subject becomes its ``system:serviceaccount:NS:NAME``
user) or a group — so a decision looks at only the bindings of the requester's name and groups.
Its answers are upstream's: the same rules, the same "not found" resolution errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from svcnet.apiserver.rbac.rules import Attributes, Rule, rules_of

GROUP = "rbac.authorization.k8s.io"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class RoleRef:
    kind: str  # "Role" or "ClusterRole"
    name: str


@dataclass(frozen=True)
class Binding:
    name: str
    namespace: str  # "" for a ClusterRoleBinding
    role: RoleRef


@dataclass
class _Bindings:
    """Bindings of one scope (the cluster, or one namespace), by subject key."""

    by_user: dict[str, list[Binding]] = field(default_factory=dict)
    by_group: dict[str, list[Binding]] = field(default_factory=dict)

    def add(self, kind: str, key: str, binding: Binding) -> None:
        table = self.by_group if kind == "Group" else self.by_user
        table.setdefault(key, []).append(binding)

    def for_user(self, user: str, groups: Iterable[str]) -> list[Binding]:
        found = list(self.by_user.get(user, ()))
        for g in groups:
            found.extend(self.by_group.get(g, ()))
        return found


def subject_key(subject: Mapping[str, Any], binding_namespace: str) -> tuple[str, str] | None:
    """(``User``/``Group``, key) a subject is filed under; None for an unknown kind.

    A ServiceAccount subject without a namespace takes its RoleBinding's (upstream's
    appliesToUser with the binding's namespace)."""
    kind = subject.get("kind", "")
    name = str(subject.get("name", ""))
    if kind == "User":
        return "User", name
    if kind == "Group":
        return "Group", name
    if kind == "ServiceAccount":
        ns = str(subject.get("namespace") or binding_namespace)
        return "User", f"{SERVICE_ACCOUNT_PREFIX}{ns}:{name}"
    return None


def not_found(kind: str, name: str) -> str:
    """The lister's error for a missing role: ``clusterrole.rbac.authorization.k8s.io "x"
    not found`` (listers name the resource in the singular)."""
    return f'{kind.lower()}.{GROUP} "{name}" not found'


class PolicyIndex:
    """Roles, ClusterRoles and their bindings, indexed for decisions."""

    def __init__(
        self,
        roles: Iterable[Mapping[str, Any]] = (),
        cluster_roles: Iterable[Mapping[str, Any]] = (),
        role_bindings: Iterable[Mapping[str, Any]] = (),
        cluster_role_bindings: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        self.roles: dict[tuple[str, str], tuple[Rule, ...]] = {
            (_ns(r), _name(r)): rules_of(r.get("rules")) for r in roles
        }
        self.cluster_roles: dict[str, tuple[Rule, ...]] = {
            _name(r): rules_of(r.get("rules")) for r in cluster_roles
        }
        self.cluster = _Bindings()
        self.namespaces: dict[str, _Bindings] = {}
        for b in cluster_role_bindings:
            self._file(b, "", self.cluster)
        for b in role_bindings:
            ns = _ns(b)
            self._file(b, ns, self.namespaces.setdefault(ns, _Bindings()))

    @staticmethod
    def _file(obj: Mapping[str, Any], namespace: str, scope: _Bindings) -> None:
        ref = obj.get("roleRef") or {}
        binding = Binding(_name(obj), namespace, RoleRef(ref.get("kind", ""), ref.get("name", "")))
        seen: set[tuple[str, str]] = set()
        for subject in obj.get("subjects") or ():
            key = subject_key(subject, namespace)
            if key is not None and key not in seen:
                seen.add(key)
                scope.add(*key, binding)

    def role_rules(self, ref: RoleRef, namespace: str) -> tuple[Rule, ...] | str:
        """A role reference's rules, or the error upstream's resolver reports for it."""
        if ref.kind == "ClusterRole":
            rules = self.cluster_roles.get(ref.name)
        elif ref.kind == "Role":
            rules = self.roles.get((namespace, ref.name))
        else:
            return f"unsupported role reference kind: {ref.kind!r}"
        return not_found(ref.kind, ref.name) if rules is None else rules

    def _bindings(self, user: str, groups: Iterable[str], namespace: str) -> list[Binding]:
        groups = tuple(groups)
        found = self.cluster.for_user(user, groups)
        if namespace:
            scope = self.namespaces.get(namespace)
            if scope is not None:
                found.extend(scope.for_user(user, groups))
        return found

    def authorize(self, a: Attributes) -> tuple[bool, list[str]]:
        """Whether a binding of the user allows the request; else the resolution errors met
        (upstream puts them in the denial's reason as ``RBAC: …``)."""
        errors: list[str] = []
        for binding in self._bindings(a.user, a.groups, a.namespace):
            rules = self.role_rules(binding.role, binding.namespace)
            if isinstance(rules, str):
                errors.append(rules)
                continue
            for rule in rules:
                if rule.allows(a):
                    return True, errors
        return False, errors

    def rules_for(
        self, user: str, groups: Iterable[str], namespace: str
    ) -> tuple[list[Rule], list[str]]:
        """Every rule the user holds in ``namespace`` (cluster-wide ones included), and the
        resolution errors (upstream's RulesFor)."""
        rules: list[Rule] = []
        errors: list[str] = []
        for binding in self._bindings(user, groups, namespace):
            found = self.role_rules(binding.role, binding.namespace)
            if isinstance(found, str):
                errors.append(found)
            else:
                rules.extend(found)
        return rules, errors


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _ns(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace", ""))
