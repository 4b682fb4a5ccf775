"""Escalation prevention on RBAC writes (upstream's ``registry/rbac/*/policybased``).

A user may write a Role or ClusterRole only with rules they already hold (or the ``escalate``
verb on it), and a binding only to a role whose rules they hold (or the ``bind`` verb on it);
``system:masters`` and the API server's own writes are exempt. The checks are decisions on
the authorizer's current index; :class:`RbacHooks` runs them as the write's begin hook and
marks the index stale when the write ends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from svcnet.api.objects import Obj
from svcnet.api.registry import ResourceType
from svcnet.apiserver.hooks import Finish, ResourceHooks
from svcnet.apiserver.rbac.authorizer import (
    CURRENT_USER,
    PRIVILEGED_GROUP,
    RbacAuthorizer,
    aggregate_errors,
    forbidden,
)
from svcnet.apiserver.rbac.index import GROUP, PolicyIndex, RoleRef
from svcnet.apiserver.rbac.rules import (
    Attributes,
    Rule,
    compact,
    compact_string,
    go_quote,
    rules_of,
    uncovered,
)
from svcnet.apiserver.satoken import UserInfo

FULL_AUTHORITY = (Rule(("*",), ("*",), ("*",)), Rule(("*",), non_resource_urls=("*",)))


def escalation_error(
    user: UserInfo, owner: Sequence[Rule], errors: Sequence[str], wanted: Sequence[Rule]
) -> str | None:
    """upstream's ConfirmNoEscalation: None when ``owner`` covers ``wanted``, else the
    message naming what is missing."""
    missing = uncovered(owner, wanted)
    if not missing:
        return None
    lines = sorted({compact_string(r) for r in compact(missing)})
    groups = "[" + " ".join(go_quote(g) for g in user.groups) + "]"
    msg = (
        f"user {go_quote(user.username)} (groups={groups}) is attempting to grant RBAC "
        "permissions not currently held:\n" + "\n".join(lines)
    )
    if errors:
        msg += f"; resolution errors: [{aggregate_errors(list(errors))}]"
    return msg


def _meta(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class RbacHooks(ResourceHooks):
    """Escalation checks before a write of a role or binding; the index goes stale after."""

    def __init__(
        self,
        resource: ResourceType,
        authorizer: RbacAuthorizer,
        on_written: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(resource)
        self.authorizer = authorizer
        # ClusterRole writes wake the aggregation.
        self.on_written = on_written

    def _finish(self, success: bool) -> None:
        self.authorizer.invalidate()
        if success and self.on_written is not None:
            self.on_written()

    def begin_create(self, obj: Obj) -> Finish:
        self.check(obj, None)
        return self._finish

    def begin_update(self, new: Obj, old: Obj) -> Finish:
        self.check(new, old)
        return self._finish

    def after_delete(self, obj: Obj) -> None:
        self._finish(True)

    def _allowed(self, user: UserInfo, verb: str, resource: str, ns: str, name: str) -> bool:
        a = Attributes(user.username, user.groups, verb, True, GROUP, "v1", resource, "", ns, name)
        return self.authorizer.decide(a).allowed

    def check(self, obj: Obj, old: Obj | None) -> None:
        user = CURRENT_USER.get()
        if user is None or PRIVILEGED_GROUP in user.groups:
            return
        rt = self.resource
        ns, name = _meta(obj)
        policy = self.authorizer.policy
        if rt.kind in ("Role", "ClusterRole"):
            self._check_role(user, policy, obj, old, ns, name)
        else:
            self._check_binding(user, policy, obj, ns, name)

    def _check_role(
        self, user: UserInfo, policy: PolicyIndex, obj: Obj, old: Obj | None, ns: str, name: str
    ) -> None:
        rt = self.resource
        rules = rules_of(obj.get("rules"))
        if old is not None and rules == rules_of(old.get("rules")):
            return  # unchanged rules: no new grant
        if self._allowed(user, "escalate", rt.plural, ns, name):
            return
        owner, errors = policy.rules_for(user.username, user.groups, ns)
        msg = escalation_error(user, owner, errors, rules)
        if msg is not None:
            raise forbidden(GROUP, rt.plural, name, msg)
        # An aggregationRule can gather anything: it needs every permission.
        if (
            rt.kind == "ClusterRole"
            and obj.get("aggregationRule") is not None
            and escalation_error(user, owner, errors, FULL_AUTHORITY) is not None
        ):
            raise forbidden(
                GROUP,
                rt.plural,
                name,
                "must have cluster-admin privileges to use the aggregationRule",
            )

    def _check_binding(
        self, user: UserInfo, policy: PolicyIndex, obj: Obj, ns: str, name: str
    ) -> None:
        rt = self.resource
        raw = obj.get("roleRef") or {}
        ref = RoleRef(str(raw.get("kind", "")), str(raw.get("name", "")))
        ref_resource = "roles" if ref.kind == "Role" else "clusterroles"
        if self._allowed(user, "bind", ref_resource, ns, ref.name):
            return
        rules = policy.role_rules(ref, ns)
        if isinstance(rules, str):
            # The registry's getter names the resource in the plural.
            raise forbidden(
                GROUP, rt.plural, name, f'{ref_resource}.{GROUP} "{ref.name}" not found'
            )
        owner, errors = policy.rules_for(user.username, user.groups, ns)
        msg = escalation_error(user, owner, errors, rules)
        if msg is not None:
            raise forbidden(GROUP, rt.plural, name, msg)
