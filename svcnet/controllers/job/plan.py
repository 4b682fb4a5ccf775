"""Job planning, pure: upstream ``pkg/controller/job`` (``syncJob``, ``manageJob``,
``pastBackoffLimitOnFailure``, ``matchPodFailurePolicy``, the pod failure back-off) and
``ttlafterfinished``, for ``completionMode: NonIndexed``.

Counting: succeeded and failed are counted from the Job's pods, which stay until the Job goes
(upstream keeps its counts with a tracking finalizer on each pod, so a pod deleted by hand
still counts; here it does not).

One sync: the pods still running are *active*, those being deleted and not ended
*terminating*. A failed pod is first judged by ``podFailurePolicy`` (FailJob fails the Job at
once, Ignore leaves the failure uncounted). The Job fails when more pods failed than
``backoffLimit`` (with ``OnFailure``: when the container restarts of active pods reach it) or
it ran past ``activeDeadlineSeconds``; it succeeds when ``completions`` pods succeeded (without
``completions``: once one succeeded and none is active). As in 1.32, the interim condition
(``FailureTarget``, ``SuccessCriteriaMet``) comes first, active pods are deleted, and the
terminal one (``Failed``, ``Complete``) follows once no pod is left running or terminating.
Otherwise it keeps ``min(parallelism, completions - succeeded)`` pods active, creating new
ones only after the back-off of recent failures (10 s doubling per failure, at most 6 min).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from svcnet.api.objects import ObjView, meta, spec, status
from svcnet.controllers.podutil import (
    is_pod_ready,
    is_terminating,
    parse_time,
    phase,
    rank_for_deletion,
)
from svcnet.controllers.replicaset.plan import new_pod

DEFAULT_BACKOFF = 10.0  # DefaultJobPodFailureBackOff
MAX_BACKOFF = 360.0  # MaxJobPodFailureBackOff

REASON_BACKOFF_LIMIT = "BackoffLimitExceeded"
MESSAGE_BACKOFF_LIMIT = "Job has reached the specified backoff limit"
REASON_DEADLINE = "DeadlineExceeded"
MESSAGE_DEADLINE = "Job was active longer than specified deadline"
REASON_POD_FAILURE_POLICY = "PodFailurePolicy"
REASON_COMPLETIONS = "CompletionsReached"
MESSAGE_COMPLETIONS = "Reached expected number of succeeded pods"


@dataclass(frozen=True)
class DeletePod:
    name: str
    uid: str


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


@dataclass
class JobPlan:
    create: list[dict[str, Any]] = field(default_factory=list)
    delete: list[DeletePod] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    requeue_after: float | None = None


def condition_true(job: ObjView, type_: str) -> bool:
    return any(
        c.get("type") == type_ and c.get("status") == "True"
        for c in status(job).get("conditions") or ()
    )


def is_finished(job: ObjView) -> bool:
    return condition_true(job, "Complete") or condition_true(job, "Failed")


def finished_at(job: ObjView) -> float | None:
    """When the Job finished: the transition time of its terminal condition."""
    for c in status(job).get("conditions") or ():
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return parse_time(c.get("lastTransitionTime"))
    return None


def ttl_remaining(job: ObjView, now: float) -> float | None:
    """Seconds until ``ttlSecondsAfterFinished`` lets the Job go (0: now); None: never."""
    ttl = spec(job).get("ttlSecondsAfterFinished")
    if ttl is None or meta(job).get("deletionTimestamp"):
        return None
    finished = finished_at(job)
    if finished is None:
        return None
    return max(finished + int(ttl) - now, 0.0)


def _finish_time(pod: ObjView) -> float | None:
    """``getFinishedTime``: the latest container termination of an ended pod."""
    times = [
        parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        for cs in status(pod).get("containerStatuses") or ()
    ]
    known = [t for t in times if t is not None]
    if known:
        return max(known)
    return parse_time(meta(pod).get("deletionTimestamp")) or parse_time(
        meta(pod).get("creationTimestamp")
    )


@dataclass(frozen=True)
class PolicyMatch:
    """What ``podFailurePolicy`` says of one failed pod (``matchPodFailurePolicy``)."""

    counts: bool
    fail_job_message: str | None = None


def _exit_codes_match(requirement: Mapping[str, Any], code: int) -> bool:
    values = requirement.get("values") or ()
    return (code in values) if requirement.get("operator") == "In" else (code not in values)


def _rule_matches(rule: Mapping[str, Any], index: int, pod: ObjView) -> str | None:
    """The FailJob message of the first thing of ``pod`` the rule matches; None: no match."""
    action = rule.get("action")
    namespace, pod_name = meta(pod).get("namespace"), meta(pod).get("name")
    on_codes = rule.get("onExitCodes")
    if isinstance(on_codes, Mapping):
        st = status(pod)
        for cs in [*(st.get("initContainerStatuses") or ()), *(st.get("containerStatuses") or ())]:
            wanted = on_codes.get("containerName")
            if wanted and cs.get("name") != wanted:
                continue
            terminated = (cs.get("state") or {}).get("terminated")
            # Exit code 0 is success: it never matches.
            if not terminated or not terminated.get("exitCode"):
                continue
            code = int(terminated["exitCode"])
            if _exit_codes_match(on_codes, code):
                return (
                    f"Container {cs.get('name')} for pod {namespace}/{pod_name} failed with exit "
                    f"code {code} matching {action} rule at index {index}"
                )
    for pattern in rule.get("onPodConditions") or ():
        for cond in status(pod).get("conditions") or ():
            if cond.get("type") == pattern.get("type") and cond.get("status") == (
                pattern.get("status") or "True"
            ):
                return (
                    f"Pod {namespace}/{pod_name} has condition {cond.get('type')} matching "
                    f"{action} rule at index {index}"
                )
    return None


def match_pod_failure_policy(job: ObjView, pod: ObjView) -> PolicyMatch:
    """The first rule that matches decides: ``FailJob`` fails the Job with its message,
    ``Ignore`` does not count the failure, ``Count`` (and no rule) counts it."""
    policy = spec(job).get("podFailurePolicy")
    if not isinstance(policy, Mapping):
        return PolicyMatch(counts=True)
    for index, rule in enumerate(policy.get("rules") or ()):
        message = _rule_matches(rule, index, pod)
        if message is None:
            continue
        action = rule.get("action")
        if action == "FailJob":
            return PolicyMatch(counts=True, fail_job_message=message)
        if action == "Ignore":
            return PolicyMatch(counts=False)
        return PolicyMatch(counts=True)
    return PolicyMatch(counts=True)


def backoff_remaining(pods: Sequence[ObjView], now: float) -> float:
    """``backoffRecord.getRemainingTime``: the failures since the last success delay the next
    pod by 10 s · 2^(failures-1), at most 6 min, from the last failure."""
    last_success = max(
        (t for p in pods if phase(p) == "Succeeded" and (t := _finish_time(p)) is not None),
        default=None,
    )
    failures = [
        t
        for p in pods
        if phase(p) == "Failed" and (t := _finish_time(p)) is not None
        if last_success is None or t > last_success
    ]
    if not failures:
        return 0.0
    delay = min(DEFAULT_BACKOFF * math.pow(2, len(failures) - 1), MAX_BACKOFF)
    return max(max(failures) + delay - now, 0.0)


def _restarts(pod: ObjView) -> int:
    st = status(pod)
    return sum(
        int(cs.get("restartCount") or 0)
        for key in ("initContainerStatuses", "containerStatuses")
        for cs in st.get(key) or ()
    )


def past_backoff_limit_on_failure(job: ObjView, active: Sequence[ObjView]) -> bool:
    """``pastBackoffLimitOnFailure``: with ``OnFailure`` the kubelet restarts containers
    instead of failing pods, so their restarts count against the limit."""
    template_spec = (spec(job).get("template") or {}).get("spec") or {}
    if template_spec.get("restartPolicy") != "OnFailure":
        return False
    limit = int(spec(job).get("backoffLimit") or 0)
    total = sum(_restarts(p) for p in active if phase(p) in ("Running", "Pending"))
    return total > 0 if limit == 0 else total >= limit


def new_job_pod(job: ObjView) -> dict[str, Any]:
    return new_pod(job, "batch/v1", "Job")


def _condition(type_: str, reason: str, message: str, now_text: str) -> dict[str, Any]:
    return {
        "type": type_,
        "status": "True",
        "lastProbeTime": now_text,
        "lastTransitionTime": now_text,
        "reason": reason,
        "message": message,
    }


def _with_condition(
    conditions: list[dict[str, Any]], type_: str, reason: str, message: str, now_text: str
) -> bool:
    """Add a true condition unless it is there; True when it was added."""
    if any(c.get("type") == type_ and c.get("status") == "True" for c in conditions):
        return False
    conditions[:] = [c for c in conditions if c.get("type") != type_]
    conditions.append(_condition(type_, reason, message, now_text))
    return True


def plan_job(
    job: ObjView,
    pods: Sequence[ObjView],
    now: float,
    now_text: str,
    *,
    expectations_satisfied: bool = True,
) -> JobPlan:
    """One sync of ``job``; ``pods`` are the pods it owns (claimed)."""
    plan = JobPlan()
    old = status(job)
    if is_finished(job):
        plan.status = dict(old)
        return plan
    job_spec = spec(job)
    active = [p for p in pods if phase(p) not in ("Succeeded", "Failed") and not is_terminating(p)]
    terminating = [p for p in pods if phase(p) not in ("Succeeded", "Failed") and is_terminating(p)]
    succeeded = sum(1 for p in pods if phase(p) == "Succeeded")
    matches = {id(p): match_pod_failure_policy(job, p) for p in pods if phase(p) == "Failed"}
    # Failures the policy ignores neither count nor delay the next pod.
    counted = [p for p in pods if id(p) not in matches or matches[id(p)].counts]
    failed = len(matches) - sum(1 for m in matches.values() if not m.counts)
    fail_job = next((m.fail_job_message for m in matches.values() if m.fail_job_message), None)
    suspended = bool(job_spec.get("suspend"))
    conditions = [dict(c) for c in old.get("conditions") or ()]
    start_text = old.get("startTime")
    if start_text is None and not suspended:
        start_text = now_text
    start = parse_time(start_text)

    # Failure: the back-off limit, then the deadline (upstream's order).
    failure: tuple[str, str] | None = None
    if condition_true(job, "FailureTarget"):
        target = next(c for c in conditions if c.get("type") == "FailureTarget")
        failure = (str(target.get("reason") or ""), str(target.get("message") or ""))
    elif fail_job is not None:
        failure = (REASON_POD_FAILURE_POLICY, fail_job)
    elif failed > int(job_spec.get("backoffLimit") or 0) or past_backoff_limit_on_failure(
        job, active
    ):
        failure = (REASON_BACKOFF_LIMIT, MESSAGE_BACKOFF_LIMIT)
    elif (
        job_spec.get("activeDeadlineSeconds") is not None
        and start is not None
        and not suspended
        and now - start >= int(job_spec["activeDeadlineSeconds"])
    ):
        failure = (REASON_DEADLINE, MESSAGE_DEADLINE)

    completions = job_spec.get("completions")
    success = False
    if failure is None:
        if completions is None:
            success = succeeded > 0 and not active
        else:
            success = succeeded >= int(completions) and not active

    finished = False
    if failure is not None:
        reason, message = failure
        if _with_condition(conditions, "FailureTarget", reason, message, now_text):
            plan.events.append(Event("Warning", reason, message))
        plan.delete = [_delete(p) for p in active]
        if not active and not terminating:
            _with_condition(conditions, "Failed", reason, message, now_text)
            finished = True
    elif success:
        _with_condition(
            conditions, "SuccessCriteriaMet", REASON_COMPLETIONS, MESSAGE_COMPLETIONS, now_text
        )
        if not terminating:
            _with_condition(
                conditions, "Complete", REASON_COMPLETIONS, MESSAGE_COMPLETIONS, now_text
            )
            plan.events.append(Event("Normal", "Completed", "Job completed"))
            finished = True
    elif expectations_satisfied:
        _manage(job, active, terminating, succeeded, counted, now, plan)

    new: dict[str, Any] = {}
    if conditions:
        new["conditions"] = conditions
    if start_text is not None:
        new["startTime"] = start_text
    if finished and success:
        new["completionTime"] = now_text
    remaining_active = 0 if failure is not None else len(active)
    if remaining_active:
        new["active"] = remaining_active
    if succeeded:
        new["succeeded"] = succeeded
    if failed:
        new["failed"] = failed
    new["terminating"] = len(terminating) + len(plan.delete)
    new["uncountedTerminatedPods"] = {}
    new["ready"] = 0 if failure is not None else sum(1 for p in active if is_pod_ready(p))
    plan.status = new
    deadline = job_spec.get("activeDeadlineSeconds")
    running = not finished and failure is None and not suspended
    if running and deadline is not None and start is not None:
        left = max(start + int(deadline) - now, 0.0)
        plan.requeue_after = left if plan.requeue_after is None else min(plan.requeue_after, left)
    return plan


def _manage(
    job: ObjView,
    active: Sequence[ObjView],
    terminating: Sequence[ObjView],
    succeeded: int,
    pods: Sequence[ObjView],
    now: float,
    plan: JobPlan,
) -> None:
    """``manageJob`` for NonIndexed Jobs."""
    job_spec = spec(job)
    if job_spec.get("suspend"):
        plan.delete = [_delete(p) for p in active]
        return
    parallelism = int(job_spec.get("parallelism") or 0)
    completions = job_spec.get("completions")
    if completions is None:
        want = len(active) if succeeded > 0 else parallelism
    else:
        want = max(min(int(completions) - succeeded, parallelism), 0)
    if len(active) > want:
        ranked = rank_for_deletion(active, active, now)
        plan.delete = [_delete(p) for p in ranked[: len(active) - want]]
        return
    missing = want - len(active)
    if job_spec.get("podReplacementPolicy") == "Failed":
        # Replace a pod only once it has failed, not while it is still terminating.
        missing -= len(terminating)
    if missing <= 0:
        return
    wait = backoff_remaining(pods, now)
    if wait > 0:
        plan.requeue_after = wait
        return
    plan.create = [new_job_pod(job) for _ in range(missing)]


def _delete(pod: ObjView) -> DeletePod:
    return DeletePod(str(meta(pod).get("name")), str(meta(pod).get("uid")))
