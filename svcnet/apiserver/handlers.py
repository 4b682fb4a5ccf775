"""The verbs on resources: thin orchestration of parsing, strategy, admission and storage.

Each public coroutine of :class:`ResourceHandlers` serves one verb for one resource path, the
same way for every kind (upstream's generic registry store). The work is done elsewhere:
:mod:`request` parses, ``svcnet.api.strategy`` defaults and validates, admission
(:mod:`lifecycle`) checks creates, :mod:`hooks` holds what a kind does around a write (and
gives a write's allocations back unless it happened), :mod:`deletion` plans deletes,
:mod:`subresources` serves the subresources with a body of their own, :mod:`storage` reads
and writes, :mod:`response` and :mod:`table` render, :mod:`status` maps errors.
"""

from __future__ import annotations

import builtins
import copy
import datetime
import logging
from collections.abc import Callable
from typing import Any

import orjson

from svcnet.api import fieldvalidation
from svcnet.api.apply import server_side_apply, track_update
from svcnet.api.defaults import autoscaling as autoscaling_defaults
from svcnet.api.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    Invalid,
    MethodNotAllowed,
    NotFound,
    UnsupportedMediaType,
)
from svcnet.api.patch import apply_json_patch, apply_merge_patch, apply_strategic_merge_patch
from svcnet.api.registry import HORIZONTALPODAUTOSCALERS, Registry, ResourceType
from svcnet.api.strategy import strategy_for
from svcnet.apiserver import customtable, deletion, eviction, subresources, table
from svcnet.apiserver import request as req
from svcnet.apiserver import response as resp
from svcnet.apiserver.hooks import CreateAdmission, HookTable, finish_nothing
from svcnet.apiserver.http1 import Request
from svcnet.apiserver.prepare import (
    check_type_meta,
    field_check,
    prepare_create,
    prepare_new,
    set_namespace,
)
from svcnet.apiserver.preparepool import PreparePool
from svcnet.apiserver.response import Response
from svcnet.apiserver.selection import Selection, selection_for
from svcnet.apiserver.status import gone_for_revision, success_status
from svcnet.apiserver.storage import ObjectStore, as_served, decode, object_bytes
from svcnet.store.interface import KeyValue
from svcnet.util.clock import now_rfc3339

log = logging.getLogger(__name__)

Clock = Callable[[], datetime.datetime]

_UPDATE_RETRIES = 16


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class ResourceHandlers:
    def __init__(
        self,
        registry: Registry,
        objects: ObjectStore,
        hooks: HookTable,
        admission: CreateAdmission,
        clock: Clock = utcnow,
        prepare_pool: PreparePool | None = None,
    ) -> None:
        self.registry = registry
        self.objects = objects
        self.hooks = hooks
        self.clock = clock
        # Worker processes that prepare POSTed objects (None: prepared in this process).
        self.prepare_pool = prepare_pool
        self.admission = admission

    # -- entry ---------------------------------------------------------------------------

    def resolve(self, info: req.RequestInfo) -> ResourceType:
        rt = self.registry.by_plural(info.group, info.version, info.resource)
        if rt is None:
            raise NotFound("the server could not find the requested resource")
        # ``proxy/<path>``: the rest of the path is the proxied one (nodes/proxy, services/proxy)
        sub = "proxy" if info.subresource.startswith("proxy/") else info.subresource
        if sub and sub not in rt.subresources:
            raise NotFound("the server could not find the requested resource")
        if info.namespace is not None and not rt.namespaced:
            raise NotFound("the server could not find the requested resource")
        if (
            rt.namespaced
            and info.namespace is None
            and info.verb not in (req.Verb.LIST, req.Verb.WATCH)
        ):
            raise NotFound("the server could not find the requested resource")
        return rt

    # -- reads ---------------------------------------------------------------------------

    async def get(self, request: Request, info: req.RequestInfo, rt: ResourceType) -> Response:
        obj = await self._must_get(rt, info.namespace, info.name)
        if info.subresource == "scale":
            return resp.respond_object(subresources.scale_of(obj, rt))
        return self._render_one(request, rt, obj)

    def _render_one(self, request: Request, rt: ResourceType, obj: dict[str, Any]) -> Response:
        rendering = resp.negotiate(request.headers.get("Accept", ""))
        if rendering is resp.Rendering.TABLE:
            t = table.table(
                rt.group,
                rt.kind,
                [obj],
                self.clock(),
                request.query.get("includeObject", "Metadata"),
                obj["metadata"].get("resourceVersion", ""),
                printer=customtable.printer_for(rt),
            )
            return resp.respond_object(t)
        if rendering is resp.Rendering.METADATA:
            return resp.respond_object(resp.partial_metadata(obj))
        return resp.respond_object(obj)

    async def list(self, request: Request, info: req.RequestInfo, rt: ResourceType) -> Response:
        opts = req.list_options(request.query)
        selection = selection_for(rt, opts.label_selector, opts.field_selector)
        if info.name:
            selection = selection.with_name(info.name)
        kvs, revision, token, remaining = await self._list_kvs(rt, info.namespace, opts, selection)
        rendering = resp.negotiate(request.headers.get("Accept", ""))
        rv = str(revision)
        if rendering is resp.Rendering.OBJECT and rt.custom is None:
            body = resp.list_bytes(
                rt.group_version,
                rt.list_kind,
                [object_bytes(kv) for kv in kvs],
                rv,
                token,
                remaining,
            )
            return resp.respond(body)
        objs = [as_served(rt, decode(kv)) for kv in kvs]
        if rendering is resp.Rendering.OBJECT:
            items = [orjson.dumps(o) for o in objs]
            return resp.respond(
                resp.list_bytes(rt.group_version, rt.list_kind, items, rv, token, remaining)
            )
        if rendering is resp.Rendering.TABLE:
            t = table.table(
                rt.group,
                rt.kind,
                objs,
                self.clock(),
                request.query.get("includeObject", "Metadata"),
                rv,
                token,
                printer=customtable.printer_for(rt),
            )
            return resp.respond_object(t)
        meta: dict[str, Any] = {"resourceVersion": rv}
        if token:
            meta["continue"] = token
        return resp.respond_object(
            {
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
                "items": [resp.partial_metadata(o) for o in objs],
            }
        )

    async def _list_kvs(
        self, rt: ResourceType, namespace: str | None, opts: req.ListOptions, selection: Selection
    ) -> tuple[builtins.list[KeyValue], int, str, int | None]:
        """The matching items of one page, the list revision, the continue token, remaining."""
        start_after = ""
        if opts.continue_token:
            start_after = req.decode_continue(opts.continue_token).start_after
        store = self.objects.store
        if opts.resource_version_match == "Exact" and opts.resource_version not in (
            "0",
            str(store.revision),
        ):
            # The store serves the newest state only; an exact older snapshot is gone.
            raise gone_for_revision(int(opts.resource_version), store.revision)
        prefix = rt.store_prefix(namespace)
        limit = opts.limit
        out: builtins.list[KeyValue] = []
        revision = store.revision
        while True:
            want = 0 if not limit else max(limit - len(out), 1)
            page = await store.list(
                prefix, limit=want if not selection.empty or limit else 0, start_after=start_after
            )
            revision = page.revision
            for kv in page.items:
                if selection.empty or selection.matches_kv(kv):
                    out.append(kv)
            if page.items:
                start_after = page.items[-1].key
            if not page.more or (limit and len(out) >= limit):
                more = page.more
                break
        if limit and len(out) > limit:
            out = out[:limit]
            more = True
            start_after = out[-1].key
        token = req.encode_continue(revision, start_after) if (limit and more) else ""
        remaining = None
        if token and selection.empty:
            remaining = page.remaining
        return out, revision, token, remaining

    # -- create --------------------------------------------------------------------------

    async def create(self, request: Request, info: req.RequestInfo, rt: ResourceType) -> Response:
        if info.subresource == "binding":
            return await subresources.bind(self.update_object, request, info, rt)
        if info.subresource == "eviction" and rt.kind == "Pod":
            return await eviction.evict(self, request, info, rt)
        if info.subresource or info.name:
            raise MethodNotAllowed(
                "the server does not allow this method on the requested resource"
            )
        raw, content_type = request.body, request.content_type
        opts = req.write_options(request.query, request.headers.get("User-Agent", ""))
        # Worker processes know the built-in kinds only, not the CRDs this server serves.
        if self.prepare_pool is not None and rt.custom is None:
            warnings, obj = await self.prepare_pool.prepare_create(
                rt, raw, content_type, opts, info.namespace
            )
        else:
            warnings, obj = prepare_create(rt, raw, content_type, opts, info.namespace)
        created, encoded = await self._admit_and_store(rt, obj, opts)
        if encoded is None:
            return resp.respond_object(created, 201, warnings)
        return resp.respond(encoded, 201, warnings)

    async def create_hpa_v1(self, request: Request, info: req.RequestInfo) -> Response:
        """An autoscaling/v1 HorizontalPodAutoscaler, created as the v2 object it is stored as
        and answered in v1 (what kubectl autoscale sends and reads back)."""
        if info.namespace is None or info.name or info.subresource:
            raise NotFound("the server could not find the requested resource")
        body = req.decode_body(request.body, request.content_type)
        opts = req.write_options(request.query, request.headers.get("User-Agent", ""))
        obj = autoscaling_defaults.v1_to_v2(body)
        obj.setdefault("metadata", {})["namespace"] = info.namespace
        created = await self.create_object(HORIZONTALPODAUTOSCALERS, obj, opts)
        return resp.respond_object(autoscaling_defaults.v2_to_v1(created), 201)

    async def create_object(
        self, rt: ResourceType, obj: dict[str, Any], opts: req.WriteOptions, managed: bool = True
    ) -> dict[str, Any]:
        """Default, validate, admit and store a new object (also used by apply and bootstrap)."""
        return (await self._create(rt, obj, opts, managed))[0]

    async def _create(
        self, rt: ResourceType, obj: dict[str, Any], opts: req.WriteOptions, managed: bool
    ) -> tuple[dict[str, Any], bytes | None]:
        """``create_object``, and the JSON of what was stored (None for a dry run)."""
        prepare_new(rt, obj, opts.field_manager, managed)
        return await self._admit_and_store(rt, obj, opts)

    async def _admit_and_store(
        self, rt: ResourceType, obj: dict[str, Any], opts: req.WriteOptions
    ) -> tuple[dict[str, Any], bytes | None]:
        """Admit (admission, the kind's begin-create hook) and store a prepared
        object; what the hook reserved is kept only if the object was written."""
        await self.admission.admit_create(rt, obj)
        finish = self.hooks.for_resource(rt).begin_create(obj)
        written = False
        try:
            if opts.dry_run:
                # Checked and reserved like a real create, then given back (upstream's dryRun).
                return obj, None
            created, encoded = await self.objects.create_encoded(rt, obj)
            written = True
            return created, encoded
        finally:
            finish(written)

    # -- update and patch ----------------------------------------------------------------

    async def update(self, request: Request, info: req.RequestInfo, rt: ResourceType) -> Response:
        raw, content_type = request.body, request.content_type
        body = req.decode_body(raw, content_type)
        opts = req.write_options(
            request.query, request.headers.get("User-Agent", ""), "UpdateOptions"
        )
        if info.subresource == "scale":
            return await subresources.update_scale(self.update_object, info, rt, body, opts, None)
        if info.subresource not in ("", "status", "finalize", "ephemeralcontainers"):
            raise MethodNotAllowed(
                "the server does not allow this method on the requested resource"
            )
        check_type_meta(body, rt)
        warnings, body = field_check(body, rt, opts, raw, content_type)
        set_namespace(body, rt, info.namespace)
        bmeta = body["metadata"]
        if bmeta.get("name") and bmeta["name"] != info.name:
            raise BadRequest(
                f"the name of the object ({bmeta['name']}) does not match the name on the URL "
                f"({info.name})"
            )
        bmeta["name"] = info.name
        user_rv = str(bmeta.get("resourceVersion") or "")

        existing = await self.objects.get_kv(rt, info.namespace, info.name)
        if existing is None:
            if not info.subresource and strategy_for(rt).allow_create_on_update:
                created = await self.create_object(rt, body, opts)
                return resp.respond_object(created, 201, warnings)
            raise NotFound.for_object(rt.plural, info.name, rt.group)

        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            return copy.deepcopy(body)

        obj, _ = await self.update_object(rt, info, mutate, opts, user_rv, info.subresource)
        return resp.respond_object(obj, 200, warnings)

    async def patch(self, request: Request, info: req.RequestInfo, rt: ResourceType) -> Response:
        raw, content_type = request.body, request.content_type
        mt = req.media_type(content_type)
        patch_doc = req.decode_patch(raw, content_type)
        opts = req.write_options(
            request.query, request.headers.get("User-Agent", ""), "PatchOptions"
        )
        if mt == "application/apply-patch+yaml":
            if not request.query.get("fieldManager"):
                raise BadRequest(
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                    "is required for apply patch"
                )
            return await self._apply(info, rt, patch_doc, opts)
        if mt not in (
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
        ):
            raise UnsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml, application/strategic-merge-patch+json"
            )

        def apply_patch(current: dict[str, Any], gvk: Any) -> dict[str, Any]:
            if mt == "application/json-patch+json":
                return apply_json_patch(current, patch_doc)
            if mt == "application/merge-patch+json":
                return apply_merge_patch(current, patch_doc)
            return apply_strategic_merge_patch(current, patch_doc, gvk)

        if info.subresource == "scale":
            return await subresources.update_scale(
                self.update_object, info, rt, None, opts, apply_patch
            )
        if info.subresource not in ("", "status", "ephemeralcontainers"):
            raise MethodNotAllowed(
                "the server does not allow this method on the requested resource"
            )
        user_rv = ""
        if isinstance(patch_doc, dict):
            user_rv = str(
                (
                    (patch_doc.get("metadata") or {})
                    if isinstance(patch_doc.get("metadata"), dict)
                    else {}
                ).get("resourceVersion")
                or ""
            )
        warnings: builtins.list[str] = []

        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            patched = apply_patch(current, rt)
            if not isinstance(patched, dict):
                raise BadRequest("the patched object is not an object")
            if opts.field_validation != fieldvalidation.IGNORE:
                found = fieldvalidation.check_unknown_fields(
                    patched,
                    rt,
                    opts.field_validation,
                    patch=orjson.dumps(patched).decode()
                    if mt != "application/strategic-merge-patch+json"
                    else _go_map_text(patch_doc),
                )
                warnings[:] = found
            return fieldvalidation.prune_unknown(patched, rt)

        obj, _ = await self.update_object(rt, info, mutate, opts, user_rv, info.subresource)
        return resp.respond_object(obj, 200, warnings)

    async def _apply(
        self, info: req.RequestInfo, rt: ResourceType, applied: Any, opts: req.WriteOptions
    ) -> Response:
        if not isinstance(applied, dict):
            raise BadRequest("the apply patch must be an object")
        check_type_meta(applied, rt)
        set_namespace(applied, rt, info.namespace)
        ameta = applied["metadata"]
        if ameta.get("name") and ameta["name"] != info.name:
            raise BadRequest(
                f"the name of the object ({ameta['name']}) does not match the name on the URL "
                f"({info.name})"
            )
        ameta["name"] = info.name
        warnings, _ = field_check(applied, rt, opts, b"", "")
        existing = await self.objects.get(rt, info.namespace, info.name)
        if existing is None and not info.subresource:
            obj = server_side_apply(
                None, applied, opts.field_manager, opts.force, rt, now=now_rfc3339()
            )
            obj = fieldvalidation.prune_unknown(obj, rt)
            set_namespace(obj, rt, info.namespace)
            try:
                created = await self.create_object_applied(rt, obj, opts)
            except AlreadyExists:
                pass  # raced with another writer: apply onto what is there now
            else:
                return resp.respond_object(created, 201, warnings)

        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            merged = server_side_apply(
                current,
                applied,
                opts.field_manager,
                opts.force,
                rt,
                subresource=info.subresource,
                now=now_rfc3339(),
            )
            return fieldvalidation.prune_unknown(merged, rt)

        obj, _ = await self.update_object(
            rt,
            info,
            mutate,
            opts,
            str(ameta.get("resourceVersion") or ""),
            # An apply to scale writes the workload itself, as a PUT of its scale does.
            "" if info.subresource == "scale" else info.subresource,
            managed=False,
        )
        return resp.respond_object(obj, 200, warnings)

    async def create_object_applied(
        self, rt: ResourceType, obj: dict[str, Any], opts: req.WriteOptions
    ) -> dict[str, Any]:
        # server_side_apply already recorded the manager's fields.
        return await self.create_object(rt, obj, opts, managed=False)

    async def update_object(
        self,
        rt: ResourceType,
        info: req.RequestInfo,
        mutate: Callable[[dict[str, Any]], dict[str, Any]],
        opts: req.WriteOptions,
        user_rv: str = "",
        subresource: str = "",
        managed: bool = True,
    ) -> tuple[dict[str, Any], bool]:
        """Read, mutate, prepare, validate and write with optimistic concurrency (retried when
        the caller gave no resourceVersion). Returns the object and whether it was removed."""
        strategy = strategy_for(rt)
        hooks = self.hooks.for_resource(rt)
        for _ in range(_UPDATE_RETRIES):
            kv = await self.objects.get_kv(rt, info.namespace, info.name)
            if kv is None:
                raise NotFound.for_object(rt.plural, info.name, rt.group)
            old = decode(kv)
            if user_rv and user_rv != str(kv.mod_revision):
                raise Conflict.modified(rt.plural, info.name, rt.group)
            # A second decode is the cheapest independent copy of the stored object.
            new = mutate(decode(kv))
            new.setdefault("metadata", {})
            self._keep_system_meta(new, old, rt, info)
            errors = strategy.prepare_update(new, old, subresource)
            if errors:
                raise Invalid(rt.kind, info.name, errors, rt.group)
            if managed:
                track_update(
                    old,
                    new,
                    opts.field_manager,
                    "Update",
                    rt,
                    subresource=subresource if subresource == "status" else "",
                    now=now_rfc3339(),
                )
            # Subresources are stores of their own upstream, without the kind's hooks.
            finish = hooks.begin_update(new, old) if subresource == "" else finish_nothing
            written = False
            try:
                if _same(new, old):
                    return old, False
                if opts.dry_run:
                    return new, False
                if hooks.should_delete_during_update(new, subresource):
                    # The last finalizer went away: the object goes (upstream's
                    # deleteWithoutFinalizers on update).
                    removed = await self._remove(rt, info.namespace, info.name, kv.mod_revision)
                    return removed, True
                stored = await self.objects.update(rt, new, kv.mod_revision)
                written = True
                return stored, False
            except Conflict:
                if user_rv:
                    raise
            finally:
                finish(written)
        raise Conflict.modified(rt.plural, info.name, rt.group)

    @staticmethod
    def _keep_system_meta(
        new: dict[str, Any], old: dict[str, Any], rt: ResourceType, info: req.RequestInfo
    ) -> None:
        """Fields clients cannot change through an update (upstream: ResetObjectMetaForStatus /
        metadata accessor rules in BeforeUpdate)."""
        nm, om = new["metadata"], old["metadata"]
        new["apiVersion"], new["kind"] = rt.group_version, rt.kind
        nm["name"] = info.name
        if rt.namespaced:
            nm["namespace"] = info.namespace
        for k in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if k in om:
                nm[k] = om[k]
            else:
                nm.pop(k, None)
        nm.pop("selfLink", None)
        nm["resourceVersion"] = om.get("resourceVersion")

    # -- delete --------------------------------------------------------------------------

    async def delete(self, request: Request, info: req.RequestInfo, rt: ResourceType) -> Response:
        if info.subresource:
            raise MethodNotAllowed(
                "the server does not allow this method on the requested resource"
            )
        opts = await self._delete_options(request)
        obj, removed = await self.delete_object(rt, info.namespace, info.name, opts)
        if removed and not self.hooks.for_resource(rt).returns_deleted_object:
            uid = obj["metadata"].get("uid", "")
            details = {"name": info.name, "group": rt.group, "kind": rt.plural, "uid": uid}
            return resp.respond_object(success_status(details))
        return resp.respond_object(obj, 200)

    async def _delete_options(self, request: Request) -> deletion.DeleteOptions:
        raw, content_type = request.body, request.content_type
        body = req.decode_body(raw, content_type) if raw.strip() else None
        return deletion.delete_options(body, dict(request.query))

    async def delete_object(
        self, rt: ResourceType, namespace: str | None, name: str, opts: deletion.DeleteOptions
    ) -> tuple[dict[str, Any], bool]:
        for _ in range(_UPDATE_RETRIES):
            kv = await self.objects.get_kv(rt, namespace, name)
            if kv is None:
                raise NotFound.for_object(rt.plural, name, rt.group)
            obj = decode(kv)
            deletion.check_preconditions(rt, obj, opts)
            plan = await self.hooks.for_resource(rt).plan_delete(obj, opts, self.clock())
            if plan.outcome is deletion.Outcome.UNCHANGED:
                return obj, False
            if opts.dry_run:
                return (plan.updated or obj), plan.outcome is deletion.Outcome.REMOVE
            try:
                if plan.outcome is deletion.Outcome.REMOVE:
                    return await self._remove(rt, namespace, name, kv.mod_revision), True
                assert plan.updated is not None
                return await self.objects.update(rt, plan.updated, kv.mod_revision), False
            except Conflict:
                continue
        raise Conflict.modified(rt.plural, name, rt.group)

    async def _remove(
        self, rt: ResourceType, namespace: str | None, name: str, revision: int
    ) -> dict[str, Any]:
        removed = await self.objects.delete(rt, namespace, name, revision)
        self.hooks.for_resource(rt).after_delete(removed)
        return removed

    async def delete_collection(
        self, request: Request, info: req.RequestInfo, rt: ResourceType
    ) -> Response:
        opts = await self._delete_options(request)
        lopts = req.list_options(request.query)
        selection = selection_for(rt, lopts.label_selector, lopts.field_selector)
        kvs, _, _, _ = await self._list_kvs(rt, info.namespace, req.ListOptions(), selection)
        items = []
        for kv in kvs:
            obj = decode(kv)
            meta = obj["metadata"]
            try:
                done, _ = await self.delete_object(rt, meta.get("namespace"), meta["name"], opts)
            except NotFound:
                continue
            items.append(done)
        return resp.respond_object(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.group_version,
                "metadata": {"resourceVersion": str(self.objects.store.revision)},
                "items": items,
            }
        )

    # -- helpers -------------------------------------------------------------------------

    async def _must_get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        obj = await self.objects.get(rt, namespace, name)
        if obj is None:
            raise NotFound.for_object(rt.plural, name, rt.group)
        return obj


# -- pure helpers ----------------------------------------------------------------------------


def _same(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """An update that changes nothing is not written (upstream skips no-op updates)."""
    return new == old


def _go_map_text(patch: Any) -> str:
    from svcnet.api.patch import go_map_string

    return go_map_string(patch)


__all__ = ["ApiError", "ResourceHandlers"]
