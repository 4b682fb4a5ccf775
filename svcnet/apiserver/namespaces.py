"""Namespace deletion: empty a Terminating namespace, then remove its ``kubernetes`` finalizer.

Upstream runs this as the namespace controller in kube-controller-manager; svcnet keeps it
beside the API server so that ``kubectl delete namespace`` completes with the API server
alone. It is level-triggered: every pass looks at each Terminating namespace, deletes what is
left in it (Background propagation), and finalizes it once nothing is left.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from svcnet.api.errors import ApiError, NotFound
from svcnet.api.registry import NAMESPACES, Registry
from svcnet.apiserver import deletion
from svcnet.apiserver import request as req
from svcnet.apiserver.handlers import ResourceHandlers
from svcnet.apiserver.storage import decode

log = logging.getLogger(__name__)

FINALIZER = "kubernetes"


class NamespaceFinalizer:
    def __init__(
        self, registry: Registry, handlers: ResourceHandlers, interval: float = 1.0
    ) -> None:
        self.registry = registry
        self.handlers = handlers
        self.interval = interval

    async def run(self) -> None:
        while True:
            try:
                await self.sync_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("namespace finalization pass failed")
            await asyncio.sleep(self.interval)

    async def sync_once(self) -> None:
        page = await self.handlers.objects.list(NAMESPACES, None)
        for kv in page.items:
            ns = decode(kv)
            if (ns.get("metadata") or {}).get("deletionTimestamp"):
                await self.finalize(ns)

    async def finalize(self, ns: dict[str, Any]) -> None:
        name = ns["metadata"]["name"]
        objects = self.handlers.objects
        left = 0
        opts = deletion.DeleteOptions(propagation=deletion.Propagation.BACKGROUND)
        for rt in self.registry.resources:
            if not rt.namespaced:
                continue
            page = await objects.list(rt, name)
            for kv in page.items:
                left += 1
                obj = decode(kv)
                if (obj.get("metadata") or {}).get("deletionTimestamp"):
                    continue
                try:
                    _, removed = await self.handlers.delete_object(
                        rt, name, obj["metadata"]["name"], opts
                    )
                except NotFound:
                    removed = True
                if removed:
                    left -= 1
        finalizers = (ns.get("spec") or {}).get("finalizers") or []
        if left or FINALIZER not in finalizers:
            return
        info = req.RequestInfo("", "v1", "namespaces", None, name, "finalize", req.Verb.UPDATE)

        def mutate(cur: dict[str, Any]) -> dict[str, Any]:
            spec = cur.setdefault("spec", {})
            spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != FINALIZER]
            return cur

        try:
            await self.handlers.update_object(
                NAMESPACES,
                info,
                mutate,
                req.WriteOptions(field_manager="namespace-controller"),
                subresource="finalize",
            )
        except NotFound:
            pass
        except ApiError as exc:
            log.warning("finalizing namespace %s: %s", name, exc)
