"""The verbs on resources: thin orchestration of parsing, strategy, admission and storage.

Each public coroutine of :class:`ResourceHandlers` serves one verb for one resource path. The
work is done elsewhere: :mod:`request` parses, ``svcnet.api.strategy`` defaults and validates,
:mod:`admission` allocates Service IPs and ports, :mod:`deletion` plans deletes, :mod:`storage`
reads and writes, :mod:`response` and :mod:`table` render, :mod:`status` maps errors.
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
from svcnet.api.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    MethodNotAllowed,
    NotFound,
    UnsupportedMediaType,
)
from svcnet.api.patch import apply_json_patch, apply_merge_patch, apply_strategic_merge_patch
from svcnet.api.registry import NAMESPACES, NODES, Registry, ResourceType
from svcnet.api.strategy import NamespaceStrategy, ephemeral_containers_update, strategy_for
from svcnet.api.validation.core import validate_ephemeral_containers_update
from svcnet.apiserver import deletion, table
from svcnet.apiserver import request as req
from svcnet.apiserver import response as resp
from svcnet.apiserver.admission import AllocationTxn, ServiceAllocator
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
from svcnet.apiserver.storage import ObjectStore, decode, object_bytes
from svcnet.store.interface import KeyValue, RevisionMismatchError
from svcnet.util.clock import now_rfc3339

log = logging.getLogger(__name__)

Clock = Callable[[], datetime.datetime]

# Kinds a PUT may create, as upstream's strategies allow (AllowCreateOnUpdate).
_CREATE_ON_UPDATE = frozenset({("", "Endpoints"), ("", "Event"), ("coordination.k8s.io", "Lease")})
_UPDATE_RETRIES = 16
# Kinds whose DELETE answers the deleted object instead of a Status (upstream's
# ReturnDeletedObject in their registries).
_RETURNS_DELETED_OBJECT = frozenset({"Pod", "Service", "Namespace"})


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _is(rt: ResourceType, group: str, kind: str) -> bool:
    return rt.group == group and rt.kind == kind


class ResourceHandlers:
    def __init__(
        self,
        registry: Registry,
        objects: ObjectStore,
        services: ServiceAllocator,
        clock: Clock = utcnow,
        prepare_pool: PreparePool | None = None,
    ) -> None:
        self.registry = registry
        self.objects = objects
        self.services = services
        self.clock = clock
        # Worker processes that prepare POSTed objects (None: prepared in this process).
        self.prepare_pool = prepare_pool
        self._ns_rt = NAMESPACES
        # namespace -> (mod revision of its stored object, whether it is terminating): every
        # create into a namespace checks it, and decoding the namespace each time costs more
        # than the rest of the check. Keyed by revision, so never stale.
        self._ns_terminating: dict[str, tuple[int, bool]] = {}

    # -- entry ---------------------------------------------------------------------------

    def resolve(self, info: req.RequestInfo) -> ResourceType:
        rt = self.registry.by_plural(info.group, info.version, info.resource)
        if rt is None:
            raise NotFound("the server could not find the requested resource")
        if info.subresource and info.subresource not in rt.subresources:
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
            return resp.respond_object(scale_of(rt, obj))
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
        if rendering is resp.Rendering.OBJECT:
            body = resp.list_bytes(
                rt.group_version,
                rt.list_kind,
                [object_bytes(kv) for kv in kvs],
                rv,
                token,
                remaining,
            )
            return resp.respond(body)
        objs = [decode(kv) for kv in kvs]
        if rendering is resp.Rendering.TABLE:
            t = table.table(
                rt.group,
                rt.kind,
                objs,
                self.clock(),
                request.query.get("includeObject", "Metadata"),
                rv,
                token,
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
        if info.subresource == "binding" and _is(rt, "", "Pod"):
            return await self.bind(request, info, rt)
        if info.subresource or info.name:
            raise MethodNotAllowed(
                "the server does not allow this method on the requested resource"
            )
        raw, content_type = request.body, request.content_type
        opts = req.write_options(request.query, request.headers.get("User-Agent", ""))
        if self.prepare_pool is not None:
            warnings, obj = await self.prepare_pool.prepare_create(
                rt, raw, content_type, opts, info.namespace
            )
        else:
            warnings, obj = prepare_create(rt, raw, content_type, opts, info.namespace)
        created, encoded = await self._admit_and_store(rt, obj, opts)
        if encoded is None:
            return resp.respond_object(created, 201, warnings)
        return resp.respond(encoded, 201, warnings)

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
        """Admit (namespace open, ClusterIP/NodePort allocation) and store a prepared object."""
        meta = obj["metadata"]
        if rt.namespaced:
            await self._check_namespace_open(rt, meta["namespace"], meta["name"])
        txn: AllocationTxn | None = None
        if _is(rt, "", "Service"):
            txn = self.services.admit_create(obj)
        if opts.dry_run:
            # Checked and allocated like a real create, then given back (upstream's dryRun).
            if txn is not None:
                txn.rollback()
            return obj, None
        try:
            created, encoded = await self.objects.create_encoded(rt, obj)
        except BaseException:
            if txn is not None:
                txn.rollback()
            raise
        if txn is not None:
            txn.commit()
        return created, encoded

    async def _check_namespace_open(self, rt: ResourceType, namespace: str, name: str) -> None:
        kv = await self.objects.get_kv(self._ns_rt, None, namespace)
        if kv is None:
            raise NotFound.for_object("namespaces", namespace)
        known = self._ns_terminating.get(namespace)
        if known is not None and known[0] == kv.mod_revision:
            terminating = known[1]
        else:
            ns = decode(kv)
            terminating = bool(
                (ns.get("metadata") or {}).get("deletionTimestamp")
                or (ns.get("status") or {}).get("phase") == "Terminating"
            )
            if len(self._ns_terminating) >= 10_000:
                self._ns_terminating.clear()
            self._ns_terminating[namespace] = (kv.mod_revision, terminating)
        if terminating:
            raise Forbidden(
                f'{rt.qualified_resource} "{name}" is forbidden: unable to create new content in '
                f"namespace {namespace} because it is being terminated",
                {"name": name, "group": rt.group, "kind": rt.plural}
                if rt.group
                else {"name": name, "kind": rt.plural},
            )

    # -- update and patch ----------------------------------------------------------------

    async def update(self, request: Request, info: req.RequestInfo, rt: ResourceType) -> Response:
        raw, content_type = request.body, request.content_type
        body = req.decode_body(raw, content_type)
        opts = req.write_options(
            request.query, request.headers.get("User-Agent", ""), "UpdateOptions"
        )
        if info.subresource == "scale":
            return await self._update_scale(info, rt, body, opts, None)
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
            if not info.subresource and (rt.group, rt.kind) in _CREATE_ON_UPDATE:
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
            return await self._update_scale(info, rt, None, opts, apply_patch)
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
            info.subresource,
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
            if subresource == "status":
                strategy.prepare_for_status_update(new, old)
                errors = strategy.validate_status_update(new, old)
            elif subresource == "binding":
                # pods/binding sets spec.nodeName and the PodScheduled condition only.
                errors = []
            elif subresource == "ephemeralcontainers":
                # Only spec.ephemeralContainers changes (upstream's ephemeralContainersStrategy).
                new = ephemeral_containers_update(new, old)
                errors = validate_ephemeral_containers_update(new, old)
            elif subresource == "finalize":
                # namespaces/finalize changes spec.finalizers only.
                assert isinstance(strategy, NamespaceStrategy)
                strategy.prepare_for_finalize(new, old)
                errors = strategy.validate_update(new, old)
            else:
                strategy.default(new)
                strategy.prepare_for_update(new, old)
                errors = strategy.validate_update(new, old)
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
            txn: AllocationTxn | None = None
            if _is(rt, "", "Service") and subresource == "":
                txn = self.services.admit_update(new, old)
            try:
                if _same(new, old):
                    if txn is not None:
                        txn.rollback()
                    return old, False
                if opts.dry_run:
                    if txn is not None:
                        txn.rollback()
                    return new, False
                if deletion.finalizers_done(new) or (
                    _is(rt, "", "Namespace")
                    and subresource == "finalize"
                    and new["metadata"].get("deletionTimestamp")
                    and not (new.get("spec") or {}).get("finalizers")
                    and not new["metadata"].get("finalizers")
                ):
                    # The last finalizer went away: the object goes (upstream's
                    # deleteWithoutFinalizers on update).
                    if txn is not None:
                        txn.rollback()
                    removed = await self._remove(rt, info.namespace, info.name, kv.mod_revision)
                    return removed, True
                written = await self.objects.update(rt, new, kv.mod_revision)
            except Conflict:
                if txn is not None:
                    txn.rollback()
                if user_rv:
                    raise
                continue
            except BaseException:
                if txn is not None:
                    txn.rollback()
                raise
            if txn is not None:
                txn.commit()
            return written, False
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

    async def _update_scale(
        self,
        info: req.RequestInfo,
        rt: ResourceType,
        body: dict[str, Any] | None,
        opts: req.WriteOptions,
        apply_patch: Callable[[dict[str, Any], Any], dict[str, Any]] | None,
    ) -> Response:
        user_rv = ""
        if body is not None:
            user_rv = str((body.get("metadata") or {}).get("resourceVersion") or "")

        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            scale = scale_of(rt, current)
            if apply_patch is not None:
                from svcnet.api.schema import GroupVersionKind

                new_scale = apply_patch(scale, GroupVersionKind("autoscaling", "v1", "Scale"))
            else:
                new_scale = body or {}
            replicas = (new_scale.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                from svcnet.api.errors import invalid

                raise Invalid(
                    "Scale",
                    info.name,
                    [
                        invalid(
                            "spec.replicas",
                            replicas,
                            "must be greater than or equal to 0",
                        )
                    ],
                    "autoscaling",
                )
            current.setdefault("spec", {})["replicas"] = replicas
            return current

        obj, _ = await self.update_object(rt, info, mutate, opts, user_rv)
        return resp.respond_object(scale_of(rt, obj))

    # -- delete --------------------------------------------------------------------------

    async def delete(self, request: Request, info: req.RequestInfo, rt: ResourceType) -> Response:
        if info.subresource:
            raise MethodNotAllowed(
                "the server does not allow this method on the requested resource"
            )
        opts = await self._delete_options(request)
        obj, removed = await self.delete_object(rt, info.namespace, info.name, opts)
        if removed and not (rt.group == "" and rt.kind in _RETURNS_DELETED_OBJECT):
            details = {"name": info.name, "kind": rt.plural, "uid": obj["metadata"].get("uid", "")}
            if rt.group:
                details["group"] = rt.group
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
            node_exists = False
            if _is(rt, "", "Pod") and (obj.get("spec") or {}).get("nodeName"):
                node_exists = (
                    await self.objects.get_kv(NODES, None, obj["spec"]["nodeName"]) is not None
                )
            plan = deletion.plan_delete(rt, obj, opts, self.clock(), node_exists)
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
        try:
            removed = await self.objects.delete(rt, namespace, name, revision)
        except RevisionMismatchError:  # pragma: no cover - translated in ObjectStore
            raise
        if _is(rt, "", "Service"):
            self.services.release(removed)
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

    # -- pods/binding --------------------------------------------------------------------

    async def bind(self, request: Request, info: req.RequestInfo, rt: ResourceType) -> Response:
        raw, content_type = request.body, request.content_type
        binding = req.decode_body(raw, content_type)
        target = binding.get("target") or {}
        node = target.get("name") or ""
        if not node:
            from svcnet.api.errors import required

            raise Invalid("Binding", info.name, [required("target.name")])
        opts = req.write_options(request.query, request.headers.get("User-Agent", ""))

        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            meta = current["metadata"]
            if meta.get("deletionTimestamp"):
                raise Conflict.for_object(
                    "pods/binding",
                    info.name,
                    f"pod {info.name} is being deleted, cannot be assigned to a host",
                )
            bound = (current.get("spec") or {}).get("nodeName")
            if bound:
                raise Conflict.for_object(
                    "pods/binding",
                    info.name,
                    f'pod {info.name} is already assigned to node "{bound}"',
                )
            current.setdefault("spec", {})["nodeName"] = node
            ann = (binding.get("metadata") or {}).get("annotations") or {}
            if ann:
                meta.setdefault("annotations", {}).update(ann)
            # The PodScheduled condition, as upstream's binding REST sets it.
            conds = current.setdefault("status", {}).setdefault("conditions", [])
            conds[:] = [c for c in conds if c.get("type") != "PodScheduled"]
            conds.append(
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastTransitionTime": now_rfc3339(),
                    "lastProbeTime": None,
                }
            )
            return current

        pod_info = req.RequestInfo(
            info.group, info.version, info.resource, info.namespace, info.name, "", req.Verb.UPDATE
        )
        await self.update_object(rt, pod_info, mutate, opts, "", "binding")
        return resp.respond_object(success_status(), 201)

    # -- helpers -------------------------------------------------------------------------

    async def _must_get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        obj = await self.objects.get(rt, namespace, name)
        if obj is None:
            raise NotFound.for_object(rt.plural, name, rt.group)
        return obj


# -- pure helpers ----------------------------------------------------------------------------


def scale_of(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The autoscaling/v1 Scale of a workload (upstream's scale subresource)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    selector = table.format_label_selector(spec.get("selector"))
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": int(spec.get("replicas", 1))},
        "status": {
            "replicas": int(status.get("replicas", 0)),
            "selector": "" if selector == table.NONE else selector,
        },
    }


def _same(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """An update that changes nothing is not written (upstream skips no-op updates)."""
    return new == old


def _go_map_text(patch: Any) -> str:
    from svcnet.api.patch import go_map_string

    return go_map_string(patch)


__all__ = ["ApiError", "ResourceHandlers", "scale_of"]
