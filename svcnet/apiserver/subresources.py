"""Subresources whose body is an object of another kind: ``scale`` (an autoscaling/v1 Scale
of a workload) and ``pods/binding`` (a Binding that assigns a Pod to a node).

Upstream serves each as a REST storage of its own (``ScaleREST``, ``BindingREST``) that
reads and writes the parent object through the generic update; here each turns its body into
a mutation of the parent and hands it to the generic update of the resource handlers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from svcnet.api.errors import Conflict, Invalid, invalid, required
from svcnet.api.objects import Obj
from svcnet.api.registry import ResourceType
from svcnet.api.schema import GroupVersionKind
from svcnet.apiserver import request as req
from svcnet.apiserver import response as resp
from svcnet.apiserver import table
from svcnet.apiserver.http1 import Request
from svcnet.apiserver.response import Response
from svcnet.apiserver.status import success_status
from svcnet.util.clock import now_rfc3339

_SCALE_GVK = GroupVersionKind("autoscaling", "v1", "Scale")

Mutation = Callable[[Obj], Obj]


class UpdateObject(Protocol):
    """The generic update of the resource handlers (``ResourceHandlers.update_object``)."""

    async def __call__(
        self,
        rt: ResourceType,
        info: req.RequestInfo,
        mutate: Mutation,
        opts: req.WriteOptions,
        user_rv: str = "",
        subresource: str = "",
        managed: bool = True,
    ) -> tuple[Obj, bool]: ...


# -- scale ---------------------------------------------------------------------------------


def _dotted(obj: Obj, path: str) -> Any:
    value: Any = obj
    for part in path.strip(".").split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _set_dotted(obj: Obj, path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    for part in parts[:-1]:
        obj = obj.setdefault(part, {})
    obj[parts[-1]] = value


def _custom_scale(obj: Obj, paths: Any) -> tuple[int, int, str]:
    """(spec replicas, status replicas, selector) at a CRD's scale paths."""
    spec = _dotted(obj, str(paths.get("specReplicasPath") or ".spec.replicas"))
    status = _dotted(obj, str(paths.get("statusReplicasPath") or ".status.replicas"))
    selector = ""
    if paths.get("labelSelectorPath"):
        selector = str(_dotted(obj, str(paths["labelSelectorPath"])) or "")
    return (
        spec if isinstance(spec, int) else 0,
        status if isinstance(status, int) else 0,
        selector,
    )


def scale_of(obj: Obj, rt: ResourceType | None = None) -> Obj:
    """The autoscaling/v1 Scale of a workload or of a custom resource with the scale
    subresource (upstream's scale subresource; a CRD names where the replicas are)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if rt is not None and rt.custom is not None and rt.custom.scale is not None:
        replicas, current, selector = _custom_scale(obj, rt.custom.scale)
    else:
        replicas, current = int(spec.get("replicas", 1)), int(status.get("replicas", 0))
        selector = table.format_label_selector(spec.get("selector"))
    return {
        "kind": _SCALE_GVK.kind,
        "apiVersion": f"{_SCALE_GVK.group}/{_SCALE_GVK.version}",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": replicas},
        "status": {
            "replicas": current,
            "selector": "" if selector == table.NONE else selector,
        },
    }


async def update_scale(
    update_object: UpdateObject,
    info: req.RequestInfo,
    rt: ResourceType,
    body: Obj | None,
    opts: req.WriteOptions,
    apply_patch: Callable[[Obj, Any], Obj] | None,
) -> Response:
    """PUT (``body``) or PATCH (``apply_patch``) of a workload's scale: its replicas."""
    user_rv = ""
    if body is not None:
        user_rv = str((body.get("metadata") or {}).get("resourceVersion") or "")

    def mutate(current: Obj) -> Obj:
        scale = scale_of(current, rt)
        new_scale = apply_patch(scale, _SCALE_GVK) if apply_patch is not None else body or {}
        replicas = (new_scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise Invalid(
                _SCALE_GVK.kind,
                info.name,
                [invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
                _SCALE_GVK.group,
            )
        if rt.custom is not None and rt.custom.scale is not None:
            _set_dotted(current, str(rt.custom.scale.get("specReplicasPath")), replicas)
        else:
            current.setdefault("spec", {})["replicas"] = replicas
        return current

    obj, _ = await update_object(rt, info, mutate, opts, user_rv)
    return resp.respond_object(scale_of(obj, rt))


# -- binding -------------------------------------------------------------------------------


async def bind(
    update_object: UpdateObject, request: Request, info: req.RequestInfo, rt: ResourceType
) -> Response:
    """POST of a Binding: set the Pod's node and its PodScheduled condition, once."""
    binding = req.decode_body(request.body, request.content_type)
    target = binding.get("target") or {}
    node = target.get("name") or ""
    if not node:
        raise Invalid("Binding", info.name, [required("target.name")])
    opts = req.write_options(request.query, request.headers.get("User-Agent", ""))
    qualified = f"{info.resource}/{info.subresource}"

    def mutate(current: Obj) -> Obj:
        meta = current["metadata"]
        if meta.get("deletionTimestamp"):
            raise Conflict.for_object(
                qualified,
                info.name,
                f"pod {info.name} is being deleted, cannot be assigned to a host",
            )
        bound = (current.get("spec") or {}).get("nodeName")
        if bound:
            raise Conflict.for_object(
                qualified, info.name, f'pod {info.name} is already assigned to node "{bound}"'
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
    await update_object(rt, pod_info, mutate, opts, "", info.subresource)
    return resp.respond_object(success_status(), 201)
