"""The authorizer on every request: request attributes, the decision, the 403.

Upstream's chain is the privileged-group authorizer (``system:masters`` may do everything,
whatever the stored policy says) and then RBAC (:class:`~svcnet.apiserver.rbac.index.PolicyIndex`).
The index is rebuilt from the store after an RBAC object was written (:class:`RbacHooks` marks
it stale as the write ends), so a request after a ``kubectl create rolebinding`` sees the
binding — upstream's informer-fed authorizer lags a little; this one does not need to.

Denials answer upstream's ``responsewriters.Forbidden``: ``pods is forbidden: User "u" cannot
list resource "pods" in API group "" in the namespace "ns"``, with ``: RBAC: …`` and the role
resolution errors when a binding named a missing role.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from svcnet.api.errors import Forbidden
from svcnet.api.registry import CLUSTERROLEBINDINGS, CLUSTERROLES, ROLEBINDINGS, ROLES
from svcnet.apiserver import request as req
from svcnet.apiserver.rbac.index import PolicyIndex
from svcnet.apiserver.rbac.rules import Attributes
from svcnet.apiserver.satoken import UserInfo
from svcnet.apiserver.storage import ObjectStore, decode

PRIVILEGED_GROUP = "system:masters"

# The user of the request being served (upstream's request context): storage hooks that
# check escalation read it. Unset for the API server's own writes (bootstrap, aggregation),
# which act as upstream's loopback client in system:masters.
CURRENT_USER: contextvars.ContextVar[UserInfo | None] = contextvars.ContextVar(
    "svcnet_rbac_user", default=None
)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


def _name_from_field_selector(query: Mapping[str, str]) -> str:
    """upstream's RequestInfoFactory: a list or watch whose field selector pins
    ``metadata.name`` is authorized as that one object."""
    selector = query.get("fieldSelector", "")
    if not selector or "," in selector:
        return ""
    key, sep, value = selector.partition("=")
    if sep and key == "metadata.name" and not value.startswith("="):
        return value
    if key == "metadata.name=" and value:
        return value
    return ""


def attributes(user: UserInfo, method: str, path: str, query: Mapping[str, str]) -> Attributes:
    """What a request asks (upstream's RequestInfoFactory + authorizer.AttributesRecord)."""
    info = req.parse_resource_path(path, method, query)
    if info is None:
        return Attributes(user.username, user.groups, method.lower(), False, path=path)
    namespace = info.namespace or ""
    name = info.name
    if info.group == "" and info.resource == "namespaces" and name:
        namespace = name
    if not name and info.verb in (req.Verb.LIST, req.Verb.WATCH):
        name = _name_from_field_selector(query)
    return Attributes(
        user.username,
        user.groups,
        info.verb.value,
        True,
        info.group,
        info.version,
        info.resource,
        info.subresource,
        namespace,
        name,
    )


def forbidden_message(a: Attributes) -> str:
    """upstream's responsewriters.forbiddenMessage."""
    if not a.resource_request:
        return f'User "{a.user}" cannot {a.verb} path "{a.path}"'
    resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    head = f'User "{a.user}" cannot {a.verb} resource "{resource}" in API group "{a.api_group}"'
    if a.namespace:
        return f'{head} in the namespace "{a.namespace}"'
    return f"{head} at the cluster scope"


def forbidden(group: str, resource: str, name: str, message: str) -> Forbidden:
    """upstream's errors.NewForbidden: the message and details name the resource."""
    if not resource:
        text = f"forbidden: {message}"
    else:
        qualified = f"{resource}.{group}" if group else resource
        text = (
            f'{qualified} "{name}" is forbidden: {message}'
            if name
            else f"{qualified} is forbidden: {message}"
        )
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if resource:
        details["kind"] = resource
    return Forbidden(text, details)


def denial(a: Attributes, reason: str) -> Forbidden:
    """upstream's responsewriters.Forbidden for a denied request."""
    message = forbidden_message(a)
    if reason:
        message = f"{message}: {reason}"
    return forbidden(a.api_group, a.resource, a.name, message)


ALLOW = Decision(True)
DECISION_CACHE_SIZE = 8192


class RbacAuthorizer:
    """Decisions over the stored policy, the index rebuilt only after RBAC writes."""

    def __init__(self, objects: ObjectStore | None) -> None:
        self._objects = objects
        self.policy = PolicyIndex()
        self._stale = objects is not None
        self._lock = asyncio.Lock()
        # Decisions of the current index, by request attributes: clients repeat the same few
        # requests (a controller's list, a writer's creates into one namespace). Dropped with
        # the index; bounded, cleared when full.
        self._decisions: dict[Attributes, Decision] = {}

    def use(self, policy: PolicyIndex) -> None:
        """Decide on ``policy`` from now on (tests and benchmarks build one directly)."""
        self.policy = policy
        self._decisions = {}

    def invalidate(self) -> None:
        self._stale = True

    async def refresh(self) -> PolicyIndex:
        if self._objects is None or not (self._stale or self._lock.locked()):
            return self.policy
        # A request that arrives while the index is being rebuilt waits for it: the rebuild
        # may be the one that holds the write this request follows.
        async with self._lock:
            while self._stale:
                self._stale = False
                self.use(await self._load(self._objects))
        return self.policy

    @staticmethod
    async def _load(objects: ObjectStore) -> PolicyIndex:
        async def items(rt: Any) -> list[dict[str, Any]]:
            listed = await objects.list(rt, None)
            return [decode(kv) for kv in listed.items]

        return PolicyIndex(
            await items(ROLES),
            await items(CLUSTERROLES),
            await items(ROLEBINDINGS),
            await items(CLUSTERROLEBINDINGS),
        )

    def decide(self, a: Attributes) -> Decision:
        """The decision on the current index (call :meth:`refresh` first)."""
        if PRIVILEGED_GROUP in a.groups:
            return ALLOW
        found = self._decisions.get(a)
        if found is not None:
            return found
        allowed, errors = self.policy.authorize(a)
        if allowed:
            decision = ALLOW
        else:
            decision = Decision(False, f"RBAC: {aggregate_errors(errors)}" if errors else "")
        if len(self._decisions) >= DECISION_CACHE_SIZE:
            self._decisions.clear()
        self._decisions[a] = decision
        return decision

    async def authorize(self, a: Attributes) -> Decision:
        await self.refresh()
        return self.decide(a)


def aggregate_errors(errors: list[str]) -> str:
    """utilerrors.NewAggregate's text: one error as is, several as ``[a, b]``."""
    unique = list(dict.fromkeys(errors))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"
