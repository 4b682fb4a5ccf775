"""Job planning: how many pods run (parallelism, completions), completion, the back-off limit
(Never and OnFailure), the failure back-off, the active deadline, suspension, and the TTL."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.controllers.job.plan import (
    backoff_remaining,
    plan_job,
    ttl_remaining,
)

from .workload_objects import NOW, NOW_TEXT, pod, template, ts


def job(
    *,
    completions: int | None = 1,
    parallelism: int = 1,
    backoff_limit: int = 6,
    restart: str = "Never",
    deadline: int | None = None,
    suspend: bool = False,
    ttl: int | None = None,
    status: dict[str, Any] | None = None,
    replacement: str = "TerminatingOrFailed",
) -> dict[str, Any]:
    tmpl = template("busybox")
    tmpl["spec"]["restartPolicy"] = restart
    spec: dict[str, Any] = {
        "parallelism": parallelism,
        "backoffLimit": backoff_limit,
        "selector": {"matchLabels": {"app": "web"}},
        "template": tmpl,
        "suspend": suspend,
        "completionMode": "NonIndexed",
        "podReplacementPolicy": replacement,
    }
    if completions is not None:
        spec["completions"] = completions
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    if ttl is not None:
        spec["ttlSecondsAfterFinished"] = ttl
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": "job-uid", "generation": 1},
        "spec": spec,
        "status": status if status is not None else {},
    }


def jpod(
    name: str, state: str = "running", *, finished: float = NOW - 100, **kw: Any
) -> dict[str, Any]:
    """A pod of the Job: running | ready | succeeded | failed | deleting."""
    phase = {"succeeded": "Succeeded", "failed": "Failed"}.get(state, "Running")
    p = pod(
        name,
        owner_uid="job-uid",
        owner_kind="Job",
        phase=phase,
        ready=state == "ready",
        deleting=state == "deleting",
        **kw,
    )
    if phase in ("Succeeded", "Failed"):
        p["status"]["containerStatuses"][0]["state"] = {
            "terminated": {"exitCode": 0 if phase == "Succeeded" else 1, "finishedAt": ts(finished)}
        }
    return p


def types(plan: Any) -> list[str]:
    return [c["type"] for c in plan.status.get("conditions", [])]


@pytest.mark.parametrize(
    ("case", "completions", "parallelism", "states", "creates", "deletes"),
    [
        ("first pod", 1, 1, [], 1, 0),
        ("running: nothing more", 1, 1, ["running"], 0, 0),
        ("parallel up to parallelism", 5, 2, [], 2, 0),
        ("never more than remaining completions", 5, 3, ["succeeded"] * 3, 2, 0),
        ("parallelism lowered: the extra go", 5, 1, ["running", "ready"], 0, 1),
        # Without completions (a work queue): parallelism pods until one succeeds.
        ("work queue starts parallelism", None, 3, [], 3, 0),
        ("work queue: a success stops new pods", None, 3, ["succeeded", "running"], 0, 0),
    ],
)
def test_pods_wanted(
    case: str,
    completions: int | None,
    parallelism: int,
    states: list[str],
    creates: int,
    deletes: int,
) -> None:
    j = job(completions=completions, parallelism=parallelism)
    pods = [jpod(f"p{i}", s, finished=NOW - 3600) for i, s in enumerate(states)]
    plan = plan_job(j, pods, NOW, NOW_TEXT)
    assert (len(plan.create), len(plan.delete)) == (creates, deletes), case
    if plan.delete:
        # Not-ready pods go first.
        assert plan.delete[0].name == "p0"


def test_new_pod_is_the_template_owned_by_the_job() -> None:
    plan = plan_job(job(), [], NOW, NOW_TEXT)
    (p,) = plan.create
    assert p["metadata"]["generateName"] == "pi-"
    assert p["metadata"]["ownerReferences"][0] | {} == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": "pi",
        "uid": "job-uid",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert p["spec"]["restartPolicy"] == "Never"
    assert plan.status["startTime"] == NOW_TEXT


def test_completes_when_completions_succeeded() -> None:
    j = job(completions=2, status={"startTime": ts(NOW - 60)})
    plan = plan_job(j, [jpod("a", "succeeded"), jpod("b", "succeeded")], NOW, NOW_TEXT)
    assert types(plan) == ["SuccessCriteriaMet", "Complete"]
    complete = plan.status["conditions"][1]
    assert (complete["reason"], complete["message"]) == (
        "CompletionsReached",
        "Reached expected number of succeeded pods",
    )
    assert plan.status["succeeded"] == 2
    assert plan.status["completionTime"] == NOW_TEXT
    assert plan.status["startTime"] == ts(NOW - 60)
    assert "active" not in plan.status
    assert [(e.reason, e.message) for e in plan.events] == [("Completed", "Job completed")]
    assert plan.create == []


def test_not_complete_while_one_is_short() -> None:
    plan = plan_job(job(completions=2), [jpod("a", "succeeded")], NOW, NOW_TEXT)
    assert types(plan) == []
    assert len(plan.create) == 1


@pytest.mark.parametrize(
    ("case", "limit", "failed", "fails"),
    [
        ("within the limit", 2, 2, False),
        ("one more than the limit", 2, 3, True),
        ("limit 0: the first failure", 0, 1, True),
    ],
)
def test_backoff_limit_never(case: str, limit: int, failed: int, fails: bool) -> None:
    pods = [jpod(f"f{i}", "failed", finished=NOW - 3600) for i in range(failed)]
    plan = plan_job(job(backoff_limit=limit), pods, NOW, NOW_TEXT)
    assert (types(plan) == ["FailureTarget", "Failed"]) is fails, case
    if fails:
        failed_cond = plan.status["conditions"][1]
        assert failed_cond["reason"] == "BackoffLimitExceeded"
        assert failed_cond["message"] == "Job has reached the specified backoff limit"
        assert plan.status["failed"] == failed
        assert "completionTime" not in plan.status
        assert [(e.type, e.reason) for e in plan.events] == [("Warning", "BackoffLimitExceeded")]
        assert plan.create == []


def test_failure_deletes_active_pods_then_fails_once_they_are_gone() -> None:
    j = job(backoff_limit=0, parallelism=2, completions=2)
    plan = plan_job(j, [jpod("f", "failed"), jpod("r", "running")], NOW, NOW_TEXT)
    assert types(plan) == ["FailureTarget"]
    assert [d.name for d in plan.delete] == ["r"]
    assert plan.status["terminating"] == 1
    after = job(backoff_limit=0, parallelism=2, completions=2, status=plan.status)
    plan2 = plan_job(after, [jpod("f", "failed"), jpod("r", "deleting")], NOW + 1, ts(NOW + 1))
    assert types(plan2) == ["FailureTarget"]
    assert plan2.delete == []
    plan3 = plan_job(after, [jpod("f", "failed")], NOW + 2, ts(NOW + 2))
    assert types(plan3) == ["FailureTarget", "Failed"]


@pytest.mark.parametrize(
    ("case", "limit", "restarts", "fails"),
    [
        ("restarts below the limit", 3, 2, False),
        ("restarts reach the limit", 3, 3, True),
        ("limit 0: any restart", 0, 1, True),
        ("limit 0: no restart yet", 0, 0, False),
    ],
)
def test_backoff_limit_on_failure_counts_restarts(
    case: str, limit: int, restarts: int, fails: bool
) -> None:
    j = job(backoff_limit=limit, restart="OnFailure")
    plan = plan_job(j, [jpod("a", "running", restarts=restarts)], NOW, NOW_TEXT)
    assert ("FailureTarget" in types(plan)) is fails, case


@pytest.mark.parametrize(
    ("case", "failures_ago", "success_ago", "want"),
    [
        ("no failure", [], None, 0.0),
        ("one failure 4 s ago: 10 s back-off", [4], None, 6.0),
        ("two failures: 20 s from the last", [30, 5], None, 15.0),
        ("back-off over", [100], None, 0.0),
        ("a later success resets it", [4], 2, 0.0),
        ("capped at 6 min", [1] * 12, None, 359.0),
    ],
)
def test_failure_backoff(
    case: str, failures_ago: list[float], success_ago: float | None, want: float
) -> None:
    pods = [jpod(f"f{i}", "failed", finished=NOW - a) for i, a in enumerate(failures_ago)]
    if success_ago is not None:
        pods.append(jpod("s", "succeeded", finished=NOW - success_ago))
    assert backoff_remaining(pods, NOW) == pytest.approx(want), case


def test_replacement_waits_for_the_backoff() -> None:
    plan = plan_job(job(), [jpod("f", "failed", finished=NOW - 4)], NOW, NOW_TEXT)
    assert plan.create == []
    assert plan.requeue_after == pytest.approx(6)
    later = plan_job(job(), [jpod("f", "failed", finished=NOW - 11)], NOW, NOW_TEXT)
    assert len(later.create) == 1


def test_pod_replacement_policy_failed_waits_for_terminating_pods() -> None:
    pods = [jpod("t", "deleting")]
    assert len(plan_job(job(), pods, NOW, NOW_TEXT).create) == 1
    assert plan_job(job(replacement="Failed"), pods, NOW, NOW_TEXT).create == []


def test_active_deadline() -> None:
    running = job(deadline=30, status={"startTime": ts(NOW - 10)})
    plan = plan_job(running, [jpod("a")], NOW, NOW_TEXT)
    assert types(plan) == []
    assert plan.requeue_after == pytest.approx(20)
    past = job(deadline=30, status={"startTime": ts(NOW - 31)})
    plan = plan_job(past, [jpod("a")], NOW, NOW_TEXT)
    assert types(plan) == ["FailureTarget"]
    assert plan.status["conditions"][0]["reason"] == "DeadlineExceeded"
    assert [d.name for d in plan.delete] == ["a"]


def test_suspended_job_deletes_its_pods_and_does_not_start() -> None:
    plan = plan_job(job(suspend=True), [jpod("a")], NOW, NOW_TEXT)
    assert [d.name for d in plan.delete] == ["a"]
    assert plan.create == []
    assert "startTime" not in plan.status


def test_finished_job_is_left_alone() -> None:
    done = {
        "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": ts(NOW - 5)}],
        "succeeded": 1,
    }
    plan = plan_job(job(status=done), [], NOW, NOW_TEXT)
    assert plan.create == [] and plan.delete == [] and plan.status == done


@pytest.mark.parametrize(
    ("case", "ttl", "finished_ago", "want"),
    [
        ("no ttl", None, 5, None),
        ("not finished", 10, None, None),
        ("waiting", 10, 4, 6.0),
        ("due", 10, 11, 0.0),
        ("ttl 0: at once", 0, 0, 0.0),
    ],
)
def test_ttl_after_finished(
    case: str, ttl: int | None, finished_ago: float | None, want: float | None
) -> None:
    status: dict[str, Any] = {}
    if finished_ago is not None:
        status["conditions"] = [
            {"type": "Failed", "status": "True", "lastTransitionTime": ts(NOW - finished_ago)}
        ]
    assert ttl_remaining(job(ttl=ttl, status=status), NOW) == want, case


def _exit(p: dict[str, Any], code: int, container: str = "web") -> dict[str, Any]:
    p["status"]["containerStatuses"] = [
        {
            "name": container,
            "state": {"terminated": {"exitCode": code, "finishedAt": ts(NOW - 3600)}},
        }
    ]
    return p


POLICY = {
    "rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {
            "action": "FailJob",
            "onExitCodes": {"containerName": "web", "operator": "In", "values": [42]},
        },
        {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}},
    ]
}


@pytest.mark.parametrize(
    ("case", "code", "disrupted", "want_types", "want_failed", "creates"),
    [
        ("exit 42: FailJob at once", 42, False, ["FailureTarget", "Failed"], 1, 0),
        ("exit 1: no rule, counted, replaced", 1, False, [], 1, 1),
        ("exit 7: Count, replaced", 7, False, [], 1, 1),
        # Ignore: not counted, replaced at once (no back-off) even with exit 42 (first rule wins).
        ("disrupted: ignored", 42, True, [], 0, 1),
    ],
)  # fmt: skip
def test_pod_failure_policy(
    case: str, code: int, disrupted: bool, want_types: list[str], want_failed: int, creates: int
) -> None:
    j = job(backoff_limit=6)
    j["spec"]["podFailurePolicy"] = POLICY
    p = _exit(jpod("p", "failed"), code)
    if disrupted:
        p["status"]["conditions"] = [{"type": "DisruptionTarget", "status": "True"}]
    plan = plan_job(j, [p], NOW, NOW_TEXT)
    assert types(plan) == want_types, case
    assert plan.status.get("failed", 0) == want_failed, case
    assert len(plan.create) == creates, case
    if want_types:
        cond = plan.status["conditions"][-1]
        assert cond["reason"] == "PodFailurePolicy"
        assert cond["message"] == (
            "Container web for pod default/p failed with exit code 42 matching FailJob rule at index 1"
        )
