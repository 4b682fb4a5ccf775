"""Serving CustomResourceDefinitions: the API server's CRD controller.

Upstream's apiextensions-apiserver runs the naming, establishing and finalizer controllers
and a CRD handler that serves what is established. Here one level-triggered loop does it:
every pass reads all CRDs, computes the plan (:func:`svcnet.api.customresource.
plan_custom_resources`, pure) and applies it — the server's registry gets the rows of the
established versions (so routing, discovery, tables, watch and the OpenAPI documents serve
them from the next request on), each CRD's status gets its conditions, and a deleted CRD's
custom resources are deleted before its cleanup finalizer goes.

A CRD write wakes the loop (its hooks); a periodic pass repairs anything a wake missed.
``sync`` runs once before the server listens, so stored CRDs are served at once after a
restart.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import orjson

from svcnet.api.customresource import CLEANUP_FINALIZER, plan_custom_resources, rows_of
from svcnet.api.errors import ApiError, NotFound
from svcnet.api.objects import Obj
from svcnet.api.registry import CUSTOMRESOURCEDEFINITIONS as CRDS
from svcnet.api.registry import Registry, ResourceType
from svcnet.apiserver import deletion, openapi
from svcnet.apiserver import request as req
from svcnet.apiserver.handlers import ResourceHandlers
from svcnet.apiserver.hooks import WakeOnWrite
from svcnet.apiserver.passloop import PassLoop
from svcnet.apiserver.storage import decode
from svcnet.util.clock import now_rfc3339

log = logging.getLogger(__name__)

MANAGER = "apiextensions-apiserver"


class CustomResourceController(PassLoop):
    what = "CustomResourceDefinition pass"

    def __init__(
        self, registry: Registry, handlers: ResourceHandlers, interval: float = 2.0
    ) -> None:
        super().__init__(interval)
        self.registry = registry
        self.handlers = handlers
        self.documents: openapi.CustomDocuments | None = None
        self._fingerprint = b""
        handlers.hooks.add(CRDS, WakeOnWrite(CRDS, self.wake))

    async def sync(self) -> None:
        page = await self.handlers.objects.list(CRDS, None)
        crds = [decode(kv) for kv in page.items]
        plan = plan_custom_resources(crds, self.registry.serves_builtin, now_rfc3339())
        fingerprint = orjson.dumps(
            [(r.group, r.version, r.plural, r.custom.crd if r.custom else "") for r in plan.rows]
            + [_served_part(c) for c in crds],
            option=orjson.OPT_SORT_KEYS,
        )
        if fingerprint != self._fingerprint:
            self.registry.set_custom(plan.rows)
            self.documents = openapi.custom_documents(list(self.registry.custom))
            self._fingerprint = fingerprint
        for crd in crds:
            name = crd["metadata"]["name"]
            status = plan.statuses.get(name)
            if status is not None and _status_differs(crd.get("status") or {}, status):
                await self._write_status(name, status)
        for crd in plan.terminating:
            await self._finalize(crd)

    async def _write_status(self, name: str, status: Obj) -> None:
        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            current["status"] = {**(current.get("status") or {}), **status}
            return current

        info = _info(name, "status")
        with contextlib.suppress(NotFound):
            await self.handlers.update_object(
                CRDS, info, mutate, req.WriteOptions(field_manager=MANAGER), subresource="status"
            )

    async def _finalize(self, crd: Obj) -> None:
        """Delete the custom resources of a deleted CRD, then let the CRD go."""
        meta = crd["metadata"]
        if CLEANUP_FINALIZER not in (meta.get("finalizers") or ()):
            return
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        rows = rows_of(crd)
        builtin = self.registry.serves_builtin(
            str(spec.get("group") or ""), str(names.get("plural") or "")
        )
        if rows and not builtin and await self._delete_all(rows[0]):
            return  # some are still going (finalizers of their own): the next pass looks again

        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            m = current["metadata"]
            m["finalizers"] = [f for f in m.get("finalizers") or () if f != CLEANUP_FINALIZER]
            return current

        with contextlib.suppress(NotFound):
            await self.handlers.update_object(
                CRDS, _info(meta["name"], ""), mutate, req.WriteOptions(field_manager=MANAGER)
            )

    async def _delete_all(self, rt: ResourceType) -> int:
        """Delete every object of ``rt`` (all versions share one store prefix): how many
        were still there."""
        page = await self.handlers.objects.store.list(rt.store_prefix())
        opts = deletion.DeleteOptions(propagation=deletion.Propagation.BACKGROUND)
        for kv in page.items:
            obj = decode(kv)
            m = obj["metadata"]
            try:
                await self.handlers.delete_object(rt, m.get("namespace"), m["name"], opts)
            except ApiError as exc:
                log.debug("deleting %s %s: %s", rt.kind, m["name"], exc)
        return len(page.items)


def _info(name: str, subresource: str) -> req.RequestInfo:
    return req.RequestInfo(
        CRDS.group, CRDS.version, CRDS.plural, None, name, subresource, req.Verb.UPDATE
    )


def _served_part(crd: Obj) -> Any:
    """What of a CRD decides what is served (not its status, not its resourceVersion)."""
    meta = crd.get("metadata") or {}
    return [meta.get("name"), meta.get("creationTimestamp"), meta.get("deletionTimestamp"),
            crd.get("spec")]  # fmt: skip


def _status_differs(current: Obj, wanted: Obj) -> bool:
    return any(current.get(k) != v for k, v in wanted.items())
