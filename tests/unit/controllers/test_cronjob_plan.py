"""The CronJob controller's plan over an injected time: which Job a sync creates and its name,
the concurrency policies, suspend, startingDeadlineSeconds, status.active bookkeeping and the
history limits (upstream's cronjob_controllerv2 syncCronJob and cleanupFinishedJobs)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from svcnet.controllers.cronjob.plan import (
    SCHEDULED_TIMESTAMP_ANNOTATION,
    add_active,
    job_name,
    most_recent_schedule_time,
    plan_cron_job,
    schedule_of,
)

UTC = datetime.UTC
CREATED = "2026-01-01T10:00:10Z"


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


def cronjob(**spec: Any) -> dict[str, Any]:
    status = spec.pop("status", {})
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": "tick",
            "namespace": "ns",
            "uid": "cj-uid",
            "creationTimestamp": CREATED,
        },
        "spec": {
            "schedule": "*/5 * * * *",
            "concurrencyPolicy": "Allow",
            "suspend": False,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 1,
            "jobTemplate": {
                "metadata": {"labels": {"app": "tick"}},
                "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
            },
            **spec,
        },
        "status": status,
    }


def job(
    name: str, uid: str, finished: str | None = None, start: str = "", done: str = ""
) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if finished:
        status["conditions"] = [{"type": finished, "status": "True"}]
    if start:
        status["startTime"] = start
    if done:
        status["completionTime"] = done
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": uid,
            "resourceVersion": "7",
            "ownerReferences": [
                {"kind": "CronJob", "name": "tick", "uid": "cj-uid", "controller": True}
            ],
        },
        "status": status,
    }


def active_ref(name: str, uid: str) -> dict[str, Any]:
    return {"kind": "Job", "namespace": "ns", "name": name, "uid": uid, "apiVersion": "batch/v1"}


def reasons(plan: Any) -> list[str]:
    return [e.reason for e in plan.events]


def test_job_name_is_the_scheduled_minute_since_the_epoch() -> None:
    t = at("2026-01-01T10:05:00")
    assert job_name("tick", t) == f"tick-{int(t.timestamp()) // 60}"


def test_nothing_before_the_first_schedule_time_and_a_requeue_just_after_it() -> None:
    plan = plan_cron_job(cronjob(), [], at("2026-01-01T10:03:00"))
    assert plan.create is None
    assert plan.requeue_after == pytest.approx(120.1)


def test_at_a_schedule_time_one_job_from_the_template() -> None:
    now = at("2026-01-01T10:05:02")
    plan = plan_cron_job(cronjob(), [], now)
    assert plan.create is not None
    m = plan.create["metadata"]
    assert m["name"] == job_name("tick", at("2026-01-01T10:05:00"))
    assert m["labels"] == {"app": "tick"}
    assert m["annotations"][SCHEDULED_TIMESTAMP_ANNOTATION] == "2026-01-01T10:05:00+00:00"
    assert m["ownerReferences"][0] | {} == {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "name": "tick",
        "uid": "cj-uid",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert plan.create["spec"]["template"]["spec"]["containers"][0]["image"] == "i"
    assert plan.status["lastScheduleTime"] == "2026-01-01T10:05:00Z"
    assert plan.requeue_after == pytest.approx(298.1)


def test_a_schedule_time_already_run_is_not_run_again() -> None:
    cj = cronjob(status={"lastScheduleTime": "2026-01-01T10:05:00Z"})
    assert plan_cron_job(cj, [], at("2026-01-01T10:07:00")).create is None


def test_of_several_missed_times_only_the_latest_runs() -> None:
    plan = plan_cron_job(cronjob(), [], at("2026-01-01T10:31:00"))
    assert plan.create is not None
    assert plan.status["lastScheduleTime"] == "2026-01-01T10:30:00Z"


def test_a_time_missed_by_more_than_the_starting_deadline_is_skipped() -> None:
    cj = cronjob(startingDeadlineSeconds=30)
    plan = plan_cron_job(cj, [], at("2026-01-01T10:06:00"))
    assert plan.create is None
    # Within the deadline it runs.
    assert plan_cron_job(cj, [], at("2026-01-01T10:05:20")).create is not None


def test_suspended_creates_nothing() -> None:
    assert plan_cron_job(cronjob(suspend=True), [], at("2026-01-01T10:05:02")).create is None


RUNNING = job("tick-old", "old-uid")
ACTIVE = {"active": [active_ref("tick-old", "old-uid")]}


@pytest.mark.parametrize(
    ("policy", "creates", "deletes", "event"),
    [
        ("Allow", True, [], None),
        ("Forbid", False, [], "JobAlreadyActive"),
        ("Replace", True, [("tick-old", "old-uid")], None),
    ],
)
def test_concurrency_policy_with_a_job_still_running(
    policy: str, creates: bool, deletes: list[tuple[str, str]], event: str | None
) -> None:
    cj = cronjob(concurrencyPolicy=policy, status=dict(ACTIVE))
    plan = plan_cron_job(cj, [RUNNING], at("2026-01-01T10:05:02"))
    assert (plan.create is not None) is creates
    assert plan.delete == deletes
    if event:
        assert event in reasons(plan)
    if policy == "Replace":
        assert "active" not in plan.status


def test_a_finished_active_job_leaves_the_active_list_with_an_event() -> None:
    done = job("tick-old", "old-uid", "Complete", "2026-01-01T10:00:00Z", "2026-01-01T10:00:30Z")
    plan = plan_cron_job(cronjob(status=dict(ACTIVE)), [done], at("2026-01-01T10:03:00"))
    assert "active" not in plan.status
    assert plan.status["lastSuccessfulTime"] == "2026-01-01T10:00:30Z"
    assert plan.events[0].message == "Saw completed job: tick-old, condition: Complete"


def test_an_active_job_that_is_gone_is_missing() -> None:
    plan = plan_cron_job(cronjob(status=dict(ACTIVE)), [], at("2026-01-01T10:03:00"))
    assert reasons(plan) == ["MissingJob"]
    assert "active" not in plan.status


def test_an_unfinished_job_not_in_the_active_list_is_unexpected() -> None:
    plan = plan_cron_job(cronjob(), [job("manual", "m-uid")], at("2026-01-01T10:03:00"))
    assert (
        plan.events[0].message == "Saw a job that the controller did not create or forgot: manual"
    )


def test_history_limits_delete_the_oldest_finished_jobs() -> None:
    jobs = [
        job(f"ok{i}", f"ok{i}", "Complete", f"2026-01-01T0{i}:00:00Z", f"2026-01-01T0{i}:00:10Z")
        for i in range(5)
    ] + [job(f"bad{i}", f"bad{i}", "Failed", f"2026-01-01T0{i}:30:00Z") for i in range(3)]
    plan = plan_cron_job(cronjob(), jobs, at("2026-01-01T10:03:00"))
    assert sorted(plan.delete) == [
        ("bad0", "bad0"),
        ("bad1", "bad1"),
        ("ok0", "ok0"),
        ("ok1", "ok1"),
    ]


def test_a_time_zone_moves_the_schedule() -> None:
    cj = cronjob(schedule="0 3 * * *", timeZone="Europe/Berlin")
    plan = plan_cron_job(cj, [], at("2026-01-02T02:00:30"))  # 03:00:30 in Berlin
    assert plan.status["lastScheduleTime"] == "2026-01-02T02:00:00Z"


@pytest.mark.parametrize(
    ("cj", "reason"),
    [
        (cronjob(timeZone="Mars/Olympus"), "UnknownTimeZone"),
        (cronjob(schedule="61 * * * *"), "UnparseableSchedule"),
    ],
)
def test_a_schedule_that_cannot_run_says_why(cj: dict[str, Any], reason: str) -> None:
    plan = plan_cron_job(cj, [], at("2026-01-01T10:05:02"))
    assert plan.create is None
    assert reasons(plan) == [reason]


def test_many_missed_times_are_reported() -> None:
    plan = plan_cron_job(cronjob(schedule="* * * * *"), [], at("2026-01-01T13:00:30"))
    assert "TooManyMissedTimes" in reasons(plan)
    assert plan.status["lastScheduleTime"] == "2026-01-01T13:00:00Z"


def test_most_recent_time_for_an_uneven_schedule() -> None:
    sched, tz = schedule_of(cronjob(schedule="30 6-16/4 * * 1-5"))
    got, missed = most_recent_schedule_time(
        sched, tz, at("2026-01-05T00:00:00"), at("2026-01-06T12:00:00")
    )
    assert got == at("2026-01-06T10:30:00")
    assert missed >= 2


def test_a_created_job_is_recorded_as_active() -> None:
    status: dict[str, Any] = {}
    add_active(status, job("tick-1", "u1"))
    assert status["active"] == [active_ref("tick-1", "u1") | {"resourceVersion": "7"}]
