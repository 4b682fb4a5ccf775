"""What a DELETE does to one object: remove it now, or mark it and keep it.

Pure: the handler reads the object and the options, asks :func:`plan_delete`, and applies the
plan. The rules are upstream's (``k8s.io/apiserver/pkg/registry/rest/delete.go`` and
``generic/registry/store.go``):

* ``propagationPolicy: Orphan`` adds the ``orphan`` finalizer and ``Foreground`` adds
  ``foregroundDeletion``; the garbage collector then deals with dependents and removes the
  finalizer. ``Background`` deletes the owner at once (the collector removes dependents later).
* An object with finalizers is not removed: it gets ``deletionTimestamp`` (and
  ``deletionGracePeriodSeconds: 0``) and stays until its finalizers are empty.
* A Pod bound to an existing node is deleted gracefully: ``deletionTimestamp`` = now + grace,
  ``deletionGracePeriodSeconds`` = grace, and the node agent (or a delete with grace 0)
  removes it. Unbound pods, pods on a node that does not exist, and terminated pods go at once.
* A Namespace with ``spec.finalizers`` becomes ``Terminating`` until its content is gone.
"""

from __future__ import annotations

import copy
import datetime
import enum
from dataclasses import dataclass
from typing import Any

from svcnet.api.errors import BadRequest, Conflict, Invalid, invalid, not_supported
from svcnet.api.registry import ResourceType

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
DEFAULT_POD_GRACE = 30


class Propagation(enum.Enum):
    ORPHAN = "Orphan"
    BACKGROUND = "Background"
    FOREGROUND = "Foreground"


@dataclass(frozen=True)
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation: Propagation | None = None
    precondition_uid: str = ""
    precondition_resource_version: str = ""
    dry_run: bool = False


def delete_options(body: dict[str, Any] | None, query: dict[str, str]) -> DeleteOptions:
    """Options from the DeleteOptions body kubectl sends, or from the query string."""
    src: dict[str, Any] = dict(body or {})
    for k in ("gracePeriodSeconds", "propagationPolicy", "orphanDependents"):
        if k in query and k not in src:
            src[k] = query[k]
    if "dryRun" in query and "dryRun" not in src:
        src["dryRun"] = [query["dryRun"]]
    grace_raw = src.get("gracePeriodSeconds")
    grace: int | None = None
    if grace_raw is not None:
        try:
            grace = max(int(grace_raw), 0)
        except (TypeError, ValueError):
            raise BadRequest(f'invalid value for gracePeriodSeconds: "{grace_raw}"') from None
    prop: Propagation | None = None
    raw_prop = src.get("propagationPolicy")
    orphan = src.get("orphanDependents")
    if raw_prop:
        try:
            prop = Propagation(raw_prop)
        except ValueError:
            raise Invalid(
                "DeleteOptions",
                "",
                [
                    not_supported(
                        "propagationPolicy", raw_prop, ["Foreground", "Background", "Orphan"]
                    )
                ],
            ) from None
        if orphan is not None:
            raise Invalid(
                "DeleteOptions",
                "",
                [
                    invalid(
                        "propagationPolicy",
                        raw_prop,
                        "orphanDependents and deletionPropagation cannot be both set",
                    )
                ],
            )
    elif orphan is not None:
        prop = (
            Propagation.ORPHAN if str(orphan).lower() in ("true", "1") else Propagation.BACKGROUND
        )
    pre = src.get("preconditions") or {}
    dry = src.get("dryRun") or []
    return DeleteOptions(
        grace_period_seconds=grace,
        propagation=prop,
        precondition_uid=str(pre.get("uid") or ""),
        precondition_resource_version=str(pre.get("resourceVersion") or ""),
        dry_run="All" in dry,
    )


class Outcome(enum.Enum):
    REMOVE = "remove"  # delete the key now
    KEEP = "keep"  # store ``updated`` (marked for deletion) and keep the object
    UNCHANGED = "unchanged"  # already being deleted: nothing to write


@dataclass(frozen=True)
class DeletePlan:
    outcome: Outcome
    updated: dict[str, Any] | None = None


def rfc3339(t: datetime.datetime) -> str:
    return t.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_preconditions(rt: ResourceType, obj: dict[str, Any], opts: DeleteOptions) -> None:
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    if opts.precondition_uid and opts.precondition_uid != meta.get("uid"):
        raise Conflict.for_object(
            rt.plural,
            name,
            f"Precondition failed: UID in precondition: {opts.precondition_uid}, "
            f"UID in object meta: {meta.get('uid', '')}",
            rt.group,
        )
    if opts.precondition_resource_version and (
        opts.precondition_resource_version != meta.get("resourceVersion")
    ):
        raise Conflict.for_object(
            rt.plural,
            name,
            "Precondition failed: ResourceVersion in precondition: "
            f"{opts.precondition_resource_version}, ResourceVersion in object meta: "
            f"{meta.get('resourceVersion', '')}",
            rt.group,
        )


def plan_delete(
    rt: ResourceType,
    obj: dict[str, Any],
    opts: DeleteOptions,
    now: datetime.datetime,
    node_exists: bool,
) -> DeletePlan:
    """Decide what a DELETE of ``obj`` does. ``node_exists``: a Pod's node is known."""
    new = copy.deepcopy(obj)
    meta = new.setdefault("metadata", {})
    finalizers: list[str] = list(meta.get("finalizers") or [])
    changed = False

    # Propagation finalizers are added only when the object is not already going away with
    # the opposite one (upstream: deletionFinalizersForGarbageCollection).
    if opts.propagation is Propagation.ORPHAN:
        if ORPHAN not in finalizers:
            finalizers = [f for f in finalizers if f != FOREGROUND] + [ORPHAN]
            changed = True
    elif opts.propagation is Propagation.FOREGROUND:
        if FOREGROUND not in finalizers:
            finalizers = [f for f in finalizers if f != ORPHAN] + [FOREGROUND]
            changed = True
    elif opts.propagation is Propagation.BACKGROUND and (
        ORPHAN in finalizers or FOREGROUND in finalizers
    ):
        finalizers = [f for f in finalizers if f not in (ORPHAN, FOREGROUND)]
        changed = True

    graceful = _graceful_seconds(rt, obj, opts, node_exists)
    already = bool(meta.get("deletionTimestamp"))

    if graceful:
        if already and not changed:
            # A second graceful delete may only shorten the grace period (upstream).
            current = int(meta.get("deletionGracePeriodSeconds") or 0)
            if graceful >= current:
                return DeletePlan(Outcome.UNCHANGED)
        meta["deletionTimestamp"] = rfc3339(now + datetime.timedelta(seconds=graceful))
        meta["deletionGracePeriodSeconds"] = graceful
        if finalizers:
            meta["finalizers"] = finalizers
        return DeletePlan(Outcome.KEEP, new)

    namespace_terminating = (
        rt.kind == "Namespace"
        and rt.group == ""
        and bool((new.get("spec") or {}).get("finalizers"))
    )
    if not finalizers and not namespace_terminating:
        return DeletePlan(Outcome.REMOVE)
    if already and not changed and not namespace_terminating:
        return DeletePlan(Outcome.UNCHANGED)
    if finalizers:
        meta["finalizers"] = finalizers
    else:
        meta.pop("finalizers", None)
    if not already:
        meta["deletionTimestamp"] = rfc3339(now)
        meta["deletionGracePeriodSeconds"] = 0
    if namespace_terminating:
        status = new.setdefault("status", {})
        if already and not changed and status.get("phase") == "Terminating":
            return DeletePlan(Outcome.UNCHANGED)
        status["phase"] = "Terminating"
    return DeletePlan(Outcome.KEEP, new)


def _graceful_seconds(
    rt: ResourceType, obj: dict[str, Any], opts: DeleteOptions, node_exists: bool
) -> int:
    """Seconds of graceful deletion for a Pod, 0 for an immediate delete."""
    if not (rt.kind == "Pod" and rt.group == ""):
        return 0
    spec = obj.get("spec") or {}
    phase = (obj.get("status") or {}).get("phase")
    if not spec.get("nodeName") or not node_exists or phase in ("Succeeded", "Failed"):
        return 0
    if opts.grace_period_seconds is not None:
        return opts.grace_period_seconds
    grace = spec.get("terminationGracePeriodSeconds")
    return DEFAULT_POD_GRACE if grace is None else max(int(grace), 0)


def finalizers_done(obj: dict[str, Any]) -> bool:
    """An object marked for deletion whose finalizers are now empty: it must be removed."""
    meta = obj.get("metadata") or {}
    # A pod in its grace period has no finalizers either: only a zero grace means "now".
    return (
        bool(meta.get("deletionTimestamp"))
        and not meta.get("finalizers")
        and not meta.get("deletionGracePeriodSeconds")
    )
