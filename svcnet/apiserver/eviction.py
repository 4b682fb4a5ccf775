"""``POST pods/NAME/eviction`` (a policy/v1 Eviction): upstream's ``EvictionREST``.

The decision is :func:`svcnet.api.disruption.decide_eviction` over the pod and the budgets of
its namespace; this module does its writes. A disruption taken from a budget is written with
the budget's resourceVersion as precondition (two evictions racing for the last disruption:
one wins, the other decides again on the new status), then the pod gets its
``DisruptionTarget`` condition and is deleted with the Eviction's ``deleteOptions``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from svcnet.api.disruption import (
    TOO_MANY_REQUESTS_MESSAGE,
    Verdict,
    decide_eviction,
    disruption_target_condition,
    selects,
)
from svcnet.api.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    InternalError,
    NotFound,
    TooManyRequests,
)
from svcnet.api.registry import PODDISRUPTIONBUDGETS, ResourceType
from svcnet.apiserver import deletion
from svcnet.apiserver import request as req
from svcnet.apiserver import response as resp
from svcnet.apiserver.http1 import Request
from svcnet.apiserver.response import Response
from svcnet.apiserver.status import success_status
from svcnet.apiserver.storage import decode
from svcnet.util.clock import rfc3339

if TYPE_CHECKING:
    from svcnet.apiserver.handlers import ResourceHandlers

# Upstream retries a conflicting budget write this many times (EvictionsRetry's steps).
_RETRIES = 5


def _raise_for(verdict: Verdict, message: str, cause: str) -> None:
    if verdict is Verdict.TOO_MANY_REQUESTS:
        raise TooManyRequests(
            message, {"causes": [{"reason": "DisruptionBudget", "message": cause}]}
        )
    if verdict is Verdict.FORBIDDEN:
        raise Forbidden(message)
    if verdict is Verdict.INTERNAL_ERROR:
        raise InternalError(message)


async def evict(
    handlers: ResourceHandlers, request: Request, info: req.RequestInfo, rt: ResourceType
) -> Response:
    eviction = req.decode_body(request.body, request.content_type)
    body_name = (eviction.get("metadata") or {}).get("name")
    if body_name and body_name != info.name:
        raise BadRequest("name in URL does not match name in Eviction object")
    options = deletion.delete_options(eviction.get("deleteOptions"), {})
    opts = req.write_options(request.query, request.headers.get("User-Agent", ""))
    for _ in range(_RETRIES):
        pod = await handlers.objects.get(rt, info.namespace, info.name)
        if pod is None:
            raise NotFound.for_object(rt.plural, info.name, rt.group)
        listed = await handlers.objects.list(PODDISRUPTIONBUDGETS, info.namespace)
        pdbs = [decode(kv) for kv in listed.items]
        now = rfc3339(handlers.clock())
        decision = decide_eviction(pod, pdbs, now)
        _raise_for(decision.verdict, decision.message, decision.cause)
        if options.dry_run:
            # A dry run answers as the eviction would, and writes nothing.
            return resp.respond_object(success_status(), 201)
        budgeted = decision.verdict is Verdict.DELETE_WITH_BUDGET
        if budgeted and not await _take_disruption(handlers, pdbs, pod, decision.pdb_status, opts):
            continue
        await _mark_and_delete(handlers, rt, info, pod, now, options, opts)
        return resp.respond_object(success_status(), 201)
    # Still conflicting after the retries: as upstream, the client is told to come back.
    raise TooManyRequests(TOO_MANY_REQUESTS_MESSAGE)


async def _take_disruption(
    handlers: ResourceHandlers,
    pdbs: list[dict[str, Any]],
    pod: dict[str, Any],
    new_status: dict[str, Any],
    opts: req.WriteOptions,
) -> bool:
    """Write the budget's status minus one disruption; False on a conflict (decide again)."""
    pdb = next(p for p in pdbs if selects(p, pod))
    pdb_meta = pdb["metadata"]
    info = req.RequestInfo(
        PODDISRUPTIONBUDGETS.group,
        PODDISRUPTIONBUDGETS.version,
        PODDISRUPTIONBUDGETS.plural,
        pdb_meta.get("namespace"),
        pdb_meta["name"],
        "status",
        req.Verb.UPDATE,
    )

    def mutate(current: dict[str, Any]) -> dict[str, Any]:
        current["status"] = new_status
        return current

    try:
        await handlers.update_object(
            PODDISRUPTIONBUDGETS,
            info,
            mutate,
            opts,
            str(pdb_meta.get("resourceVersion") or ""),
            "status",
            managed=False,
        )
    except Conflict:
        return False
    return True


async def _mark_and_delete(
    handlers: ResourceHandlers,
    rt: ResourceType,
    info: req.RequestInfo,
    pod: dict[str, Any],
    now: str,
    options: deletion.DeleteOptions,
    opts: req.WriteOptions,
) -> None:
    """addConditionAndDeletePod: the DisruptionTarget condition, then the delete."""
    if not (pod.get("metadata") or {}).get("deletionTimestamp"):
        status_info = req.RequestInfo(
            info.group, info.version, info.resource, info.namespace, info.name, "status",
            req.Verb.UPDATE,
        )  # fmt: skip

        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            conds = current.setdefault("status", {}).setdefault("conditions", [])
            conds[:] = [c for c in conds if c.get("type") != "DisruptionTarget"]
            conds.append(disruption_target_condition(now))
            return current

        # Upstream deletes the pod even when the condition could not be written.
        with contextlib.suppress(ApiError):
            await handlers.update_object(rt, status_info, mutate, opts, "", "status", managed=False)
    await handlers.delete_object(rt, info.namespace, info.name, options)
