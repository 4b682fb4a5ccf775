"""The CronJob controller's decisions, pure: upstream's ``cronjob_controllerv2.go``
``syncCronJob`` and ``cleanupFinishedJobs`` (Kubernetes 1.32) over a CronJob, the Jobs it
controls and the time now.

One sync: reconcile ``status.active`` with the Jobs (``SawCompletedJob``, ``MissingJob``,
``UnexpectedJob``), note ``lastSuccessfulTime``; then, unless suspended or deleting, find the
most recent unmet schedule time (bounded by ``startingDeadlineSeconds``), apply the
concurrency policy (Forbid skips, Replace deletes the active Jobs) and create the Job named
``<cronjob>-<scheduled minutes since the epoch>``; finally delete the oldest finished Jobs
beyond the history limits. The time comes in as a parameter: the wiring owns the clock.
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from svcnet.api import cron
from svcnet.api.jsonvalue import copy_json
from svcnet.api.objects import ObjView, meta, name, spec, status, uid
from svcnet.controllers.job.plan import Event

NORMAL, WARNING = "Normal", "Warning"

JOB_API_VERSION = "batch/v1"
SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
# nextScheduleDelta: requeue a little after the next schedule time, not on it.
_NEXT_SCHEDULE_DELTA = 0.1
_MANY_MISSED = 100


@dataclass
class CronJobPlan:
    create: dict[str, Any] | None = None
    # Jobs to delete: (name, uid), with the event each delete gets once done.
    delete: list[tuple[str, str]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    requeue_after: float | None = None


def _parse_time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _rfc3339(t: datetime.datetime) -> str:
    return t.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _finished(job: ObjView) -> str | None:
    """``Complete`` or ``Failed`` for a finished Job (IsJobFinished), else None."""
    for c in status(job).get("conditions") or ():
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"])
    return None


def job_name(cronjob_name: str, scheduled: datetime.datetime) -> str:
    """getJobName: the scheduled time in minutes since the epoch makes the name unique per
    run and the create idempotent."""
    return f"{cronjob_name}-{int(scheduled.timestamp()) // 60}"


def schedule_of(cj: ObjView) -> tuple[cron.Schedule, datetime.tzinfo]:
    """The parsed schedule and the zone it is read in (``spec.timeZone``, a ``TZ=`` prefix of
    an object from before validation refused it, else UTC as the controller's local time)."""
    text = str(spec(cj).get("schedule") or "")
    zone, rest = cron.split_time_zone(text)
    zone = spec(cj).get("timeZone") or zone
    tz: datetime.tzinfo = datetime.UTC
    if zone:
        try:
            tz = zoneinfo.ZoneInfo(str(zone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
            raise cron.CronError(f"unknown time zone {zone}") from e
    return cron.parse_standard(rest), tz


def most_recent_schedule_time(
    sched: cron.Schedule, tz: datetime.tzinfo, earliest: datetime.datetime, now: datetime.datetime
) -> tuple[datetime.datetime | None, int]:
    """mostRecentScheduleTime: the latest schedule time in (earliest, now] and how many were
    missed (upstream's estimate from the interval between the first two)."""
    t1 = sched.next_after(earliest.astimezone(tz))
    if t1 is None or t1 > now:
        return None, 0
    t2 = sched.next_after(t1)
    if t2 is None or now < t2:
        return t1, 1
    interval = round((t2 - t1).total_seconds())
    missed = int((now - t1).total_seconds()) // interval + 1
    # Start one interval before the estimate and let the schedule find the exact time (for
    # schedules whose gaps differ, such as "30 6-16/4 * * 1-5").
    t: datetime.datetime | None = t1 + datetime.timedelta(seconds=(missed - 2) * interval)
    latest = t1
    while t is not None:
        t = sched.next_after(t)
        if t is None or t > now:
            break
        latest = t
    return latest, missed


def _object_reference(job: ObjView) -> dict[str, Any]:
    m = meta(job)
    return {
        "kind": "Job",
        "namespace": m.get("namespace", ""),
        "name": m.get("name", ""),
        "uid": m.get("uid", ""),
        "apiVersion": JOB_API_VERSION,
        "resourceVersion": m.get("resourceVersion", ""),
    }


def job_from_template(cj: ObjView, scheduled: datetime.datetime) -> dict[str, Any]:
    """getJobFromTemplate2: the template's labels and annotations, the scheduled-time
    annotation (in the CronJob's zone) and the CronJob as controller owner."""
    template = spec(cj).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    cmeta = meta(cj)
    annotations = dict(tmeta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP_ANNOTATION] = scheduled.isoformat()
    return {
        "apiVersion": JOB_API_VERSION,
        "kind": "Job",
        "metadata": {
            "name": job_name(str(cmeta.get("name")), scheduled),
            "namespace": cmeta.get("namespace"),
            "labels": dict(tmeta.get("labels") or {}),
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": str(cj.get("apiVersion") or "batch/v1"),
                    "kind": "CronJob",
                    "name": cmeta.get("name"),
                    "uid": cmeta.get("uid"),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": copy_json(dict(template.get("spec") or {})),
    }


def _reconcile_active(
    cj: ObjView, jobs: Sequence[ObjView], new_status: dict[str, Any], events: list[Event]
) -> None:
    active: list[dict[str, Any]] = [dict(a) for a in new_status.get("active") or ()]
    active_uids = {a.get("uid") for a in active}
    last_success = _parse_time(new_status.get("lastSuccessfulTime"))
    for job in jobs:
        finished = _finished(job)
        if uid(job) not in active_uids and finished is None:
            events.append(
                Event(
                    WARNING,
                    "UnexpectedJob",
                    f"Saw a job that the controller did not create or forgot: {name(job)}",
                )
            )
        elif uid(job) in active_uids and finished is not None:
            active = [a for a in active if a.get("uid") != uid(job)]
            events.append(
                Event(
                    NORMAL,
                    "SawCompletedJob",
                    f"Saw completed job: {name(job)}, condition: {finished}",
                )
            )
        if finished == "Complete":
            done = _parse_time(status(job).get("completionTime"))
            if done is not None and (last_success is None or done > last_success):
                last_success = done
    present = {uid(j) for j in jobs}
    for ref in list(active):
        if ref.get("uid") not in present:
            events.append(
                Event(NORMAL, "MissingJob", f"Active job went missing: {ref.get('name')}")
            )
            active.remove(ref)
    if active:
        new_status["active"] = active
    else:
        new_status.pop("active", None)
    if last_success is not None:
        new_status["lastSuccessfulTime"] = _rfc3339(last_success)


def _history_deletions(cj: ObjView, jobs: Sequence[ObjView], keep: set[str]) -> list[ObjView]:
    """cleanupFinishedJobs/removeOldestJobs: the oldest finished Jobs beyond each limit (by
    start time; unstarted ones first, as upstream's byJobStartTime sorts them)."""
    out: list[ObjView] = []
    for kind, limit_field in (
        ("Complete", "successfulJobsHistoryLimit"),
        ("Failed", "failedJobsHistoryLimit"),
    ):
        limit = spec(cj).get(limit_field)
        if limit is None:
            continue
        done = [j for j in jobs if _finished(j) == kind and uid(j) not in keep]
        done.sort(
            key=lambda j: (
                status(j).get("startTime") is not None,
                str(status(j).get("startTime") or ""),
                name(j),
            )
        )
        out.extend(done[: max(len(done) - int(limit), 0)])
    return out


def plan_cron_job(cj: ObjView, jobs: Sequence[ObjView], now: datetime.datetime) -> CronJobPlan:
    """One sync of ``cj`` given the Jobs it controls (from the cache) at ``now`` (aware)."""
    plan = CronJobPlan(status=copy_json(dict(status(cj))))
    _reconcile_active(cj, jobs, plan.status, plan.events)
    if meta(cj).get("deletionTimestamp"):
        return plan
    active_uids = {a.get("uid") for a in plan.status.get("active") or ()}
    finished_to_delete = _history_deletions(cj, jobs, active_uids)
    plan.delete = [(name(j), uid(j)) for j in finished_to_delete]
    if spec(cj).get("suspend"):
        return plan
    zone = spec(cj).get("timeZone")
    if zone is not None:
        try:
            zoneinfo.ZoneInfo(str(zone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            plan.events.append(
                Event(
                    WARNING,
                    "UnknownTimeZone",
                    f'invalid timeZone: "{zone}": unknown time zone {zone}',
                )
            )
            return plan
    try:
        sched, tz = schedule_of(cj)
    except cron.CronError as e:
        plan.events.append(
            Event(
                WARNING,
                "UnparseableSchedule",
                f'unparseable schedule: "{spec(cj).get("schedule")}" : {e}',
            )
        )
        return plan
    earliest = _parse_time(plan.status.get("lastScheduleTime")) or _parse_time(
        meta(cj).get("creationTimestamp")
    )
    if earliest is None:
        earliest = now
    deadline = spec(cj).get("startingDeadlineSeconds")
    if deadline is not None:
        earliest = max(earliest, now - datetime.timedelta(seconds=int(deadline)))
    scheduled, missed = most_recent_schedule_time(sched, tz, earliest, now)
    if missed > _MANY_MISSED:
        plan.events.append(
            Event(
                WARNING,
                "TooManyMissedTimes",
                f"too many missed start times: {missed}. Set or decrease "
                ".spec.startingDeadlineSeconds or check clock skew",
            )
        )
    next_time = sched.next_after(now.astimezone(tz))
    if next_time is not None:
        plan.requeue_after = (next_time - now).total_seconds() + _NEXT_SCHEDULE_DELTA
    if scheduled is None:
        return plan
    if deadline is not None and scheduled + datetime.timedelta(seconds=int(deadline)) < now:
        plan.events.append(
            Event(
                WARNING,
                "MissSchedule",
                "Missed scheduled time to start a job: "
                + scheduled.astimezone(datetime.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000"),
            )
        )
        return plan
    wanted = job_name(name(cj), scheduled)
    active = plan.status.get("active") or []
    last = _parse_time(plan.status.get("lastScheduleTime"))
    if any(a.get("name") == wanted for a in active) or last == scheduled:
        return plan
    policy = spec(cj).get("concurrencyPolicy") or "Allow"
    if policy == "Forbid" and active:
        plan.events.append(
            Event(
                NORMAL,
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy "
                "is Forbid",
            )
        )
        return plan
    if policy == "Replace":
        plan.delete.extend((str(a.get("name")), str(a.get("uid"))) for a in active)
        plan.status.pop("active", None)
    plan.create = job_from_template(cj, scheduled)
    plan.status["lastScheduleTime"] = _rfc3339(scheduled)
    return plan


def add_active(new_status: dict[str, Any], job: ObjView) -> None:
    """Record a Job just created in ``status.active`` (the wiring calls this with the
    created object, whose uid and resourceVersion only the API server knows)."""
    new_status.setdefault("active", []).append(_object_reference(job))
