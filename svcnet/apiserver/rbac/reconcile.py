"""What the API server does with the policy it owns: the defaults at start, aggregation after.

At every start the bootstrap roles and bindings (:mod:`policy`) are created when missing and
given back what they lost (upstream's ``storage_rbac`` post-start hook). The
:class:`Aggregator` is the clusterrole-aggregation controller run in the API server: woken
after any ClusterRole write, it applies :func:`~svcnet.apiserver.rbac.aggregation.plan_aggregation`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from svcnet.api.errors import AlreadyExists, Conflict, NotFound
from svcnet.api.registry import CLUSTERROLEBINDINGS, CLUSTERROLES, ResourceType
from svcnet.apiserver import request as req
from svcnet.apiserver.handlers import ResourceHandlers
from svcnet.apiserver.rbac import policy
from svcnet.apiserver.rbac.aggregation import plan_aggregation
from svcnet.apiserver.storage import decode

log = logging.getLogger(__name__)

MANAGER = "kube-apiserver"
AGGREGATOR = "clusterrole-aggregation-controller"


async def _replace(
    handlers: ResourceHandlers,
    rt: ResourceType,
    name: str,
    mutate: Callable[[dict[str, Any]], dict[str, Any]],
    manager: str,
) -> None:
    info = req.RequestInfo(rt.group, rt.version, rt.plural, None, name, "", req.Verb.UPDATE)
    await handlers.update_object(rt, info, mutate, req.WriteOptions(field_manager=manager))


async def reconcile_policy(handlers: ResourceHandlers) -> None:
    """Create or repair every default ClusterRole and ClusterRoleBinding."""
    opts = req.WriteOptions(field_manager=MANAGER)
    for rt, wanted, fix in (
        (CLUSTERROLES, policy.cluster_roles(), policy.reconcile_role),
        (CLUSTERROLEBINDINGS, policy.cluster_role_bindings(), policy.reconcile_binding),
    ):
        for want in wanted:
            name = want["metadata"]["name"]
            current = await handlers.objects.get(rt, None, name)
            if current is None:
                with contextlib.suppress(AlreadyExists):
                    await handlers.create_object(rt, want, opts)
                continue
            repaired = fix(current, want)
            if repaired is not None:
                log.info("reconciling default %s %s", rt.kind, name)

                def mutate(cur: dict[str, Any], new: dict[str, Any] = repaired) -> dict[str, Any]:
                    for key in ("rules", "aggregationRule", "subjects"):
                        if key in new:
                            cur[key] = new[key]
                    cur["metadata"]["labels"] = new["metadata"]["labels"]
                    return cur

                await _replace(handlers, rt, name, mutate, MANAGER)


class Aggregator:
    """Keeps aggregated ClusterRoles' rules the union of what their selectors match."""

    def __init__(self, handlers: ResourceHandlers) -> None:
        self.handlers = handlers
        self._wake = asyncio.Event()

    def kick(self) -> None:
        self._wake.set()

    async def sync(self) -> None:
        listed = await self.handlers.objects.list(CLUSTERROLES, None)
        roles = [decode(kv) for kv in listed.items]
        for name, rules in plan_aggregation(roles).items():

            def mutate(cur: dict[str, Any], rules: list[dict[str, Any]] = rules) -> dict[str, Any]:
                cur["rules"] = rules
                return cur

            with contextlib.suppress(NotFound, Conflict):
                await _replace(self.handlers, CLUSTERROLES, name, mutate, AGGREGATOR)

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.sync()
            except Exception:
                log.exception("clusterrole aggregation failed; retrying")
                await asyncio.sleep(1.0)
                self._wake.set()
