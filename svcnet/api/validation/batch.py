"""batch/v1 validation: ``pkg/apis/batch/validation/validation.go`` (Kubernetes 1.32)."""

from __future__ import annotations

import dataclasses
import zoneinfo

from svcnet.api import cron
from svcnet.api.errors import (
    FieldError,
    FieldErrorType,
    duplicate,
    invalid,
    not_supported,
    required,
)
from svcnet.api.objects import Obj
from svcnet.api.selectors import label_selector_from_dict, validate_label_selector
from svcnet.api.validation.core import validate_pod_template
from svcnet.api.validation.fields import mapping, nonnegative
from svcnet.api.validation.goformat import GoValue, go_label_selector, go_string_map

# The labels the API server puts on a Job's pod template (and its generated selector).
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_NAME_LABEL = "job-name"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"

_COMPLETION_MODES = ["NonIndexed", "Indexed"]
_RESTART_POLICIES = ["OnFailure", "Never"]


def generate_selector(job: Obj) -> None:
    """``generateSelector`` of the Job strategy: unless ``manualSelector``, label the template
    with the Job's name and uid and select the uid (the uid makes the selector this Job's
    alone). Runs where upstream runs it, at validation, once the uid is set."""
    spec = job.setdefault("spec", {})
    if not isinstance(spec, dict) or spec.get("manualSelector") is True:
        return
    meta = mapping(job.get("metadata"))
    template = spec.setdefault("template", {})
    if not isinstance(template, dict):
        return
    template_meta = template.setdefault("metadata", {})
    if not isinstance(template_meta, dict):
        return
    labels = template_meta.get("labels")
    if not isinstance(labels, dict):
        labels = template_meta["labels"] = {}
    for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        labels.setdefault(key, str(meta.get("name") or ""))
    for key in (LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
        labels.setdefault(key, str(meta.get("uid") or ""))
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        selector = spec["selector"] = {}
    match_labels = selector.get("matchLabels")
    if not isinstance(match_labels, dict):
        match_labels = selector["matchLabels"] = {}
    match_labels.setdefault(CONTROLLER_UID_LABEL, str(meta.get("uid") or ""))


def _validate_selector_and_template(spec: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    selector = spec.get("selector")
    if selector is None:
        errors.append(required("spec.selector"))
    else:
        errors.extend(validate_label_selector(mapping(selector), "spec.selector"))
    template = spec.get("template")
    t = mapping(template)
    raw_labels = mapping(t.get("metadata")).get("labels")
    if selector is not None and not validate_label_selector(mapping(selector), "spec.selector"):
        compiled = label_selector_from_dict(mapping(selector))
        if not compiled.matches(mapping(raw_labels)):
            errors.append(
                invalid(
                    "spec.template.metadata.labels",
                    go_string_map(raw_labels if isinstance(raw_labels, dict) else None),
                    "`selector` does not match template `labels`",
                )
            )
    errors.extend(validate_pod_template(t, "spec.template"))
    restart = mapping(t.get("spec")).get("restartPolicy")
    if restart not in _RESTART_POLICIES:
        errors.append(not_supported("spec.template.spec.restartPolicy", restart, _RESTART_POLICIES))
    elif restart == "OnFailure" and spec.get("podFailurePolicy") is not None:
        errors.append(
            invalid(
                "spec.template.spec.restartPolicy",
                restart,
                'only "Never" is supported when podFailurePolicy is specified',
            )
        )
    return errors


def validate_job(job: Obj) -> list[FieldError]:
    """The create path: the selector generated first (as the strategy's ``Validate`` does),
    then ``ValidateJob``."""
    generate_selector(job)
    return _validate_job_spec(job)


# Upstream lists them sorted (sets.List()).
_POLICY_ACTIONS = ["Count", "FailIndex", "FailJob", "Ignore"]
_EXIT_CODE_OPERATORS = ["In", "NotIn"]
_MAX_POLICY_RULES = 20


def _validate_on_exit_codes(requirement: Obj, path: str, containers: set[str]) -> list[FieldError]:
    errors: list[FieldError] = []
    name = requirement.get("containerName")
    if name is not None and name not in containers:
        errors.append(
            invalid(
                f"{path}.containerName",
                name,
                "must be one of the container or initContainer names in the pod template",
            )
        )
    operator = requirement.get("operator")
    if operator not in _EXIT_CODE_OPERATORS:
        errors.append(not_supported(f"{path}.operator", operator, _EXIT_CODE_OPERATORS))
    previous = -1
    seen: set[int] = set()
    for i, value in enumerate(requirement.get("values") or ()):
        if not isinstance(value, int):
            continue
        if operator == "In" and value == 0:
            errors.append(
                invalid(f"{path}.values[{i}]", value, "must not be 0 for the In operator")
            )
        if value in seen:
            errors.append(duplicate(f"{path}.values[{i}]", value))
        seen.add(value)
        if previous >= value:
            errors.append(invalid(f"{path}.values[{i}]", value, "must be ordered"))
        previous = value
    return errors


def _validate_pod_failure_policy(spec: Obj) -> list[FieldError]:
    """``validatePodFailurePolicy``."""
    policy = spec.get("podFailurePolicy")
    if policy is None:
        return []
    rules = mapping(policy).get("rules") or []
    errors: list[FieldError] = []
    if len(rules) > _MAX_POLICY_RULES:
        errors.append(
            FieldError(
                FieldErrorType.TOO_MANY,
                "spec.podFailurePolicy.rules",
                f"must have at most {_MAX_POLICY_RULES} items",
            )
        )
    pod_spec = mapping(mapping(spec.get("template")).get("spec"))
    containers = {
        str(mapping(c).get("name"))
        for key in ("containers", "initContainers")
        for c in pod_spec.get(key) or ()
    }
    for i, raw in enumerate(rules):
        rule, path = mapping(raw), f"spec.podFailurePolicy.rules[{i}]"
        action = rule.get("action")
        if not action:
            errors.append(
                required(
                    f"{path}.action", "valid values: " + str(_POLICY_ACTIONS).replace("'", '"')
                )
            )
        elif action == "FailIndex":
            if spec.get("backoffLimitPerIndex") is None:
                errors.append(
                    invalid(f"{path}.action", action, "requires the backoffLimitPerIndex to be set")
                )
        elif action not in _POLICY_ACTIONS:
            errors.append(not_supported(f"{path}.action", action, _POLICY_ACTIONS))
        on_codes, on_conditions = rule.get("onExitCodes"), rule.get("onPodConditions")
        if on_codes is not None:
            errors.extend(
                _validate_on_exit_codes(mapping(on_codes), f"{path}.onExitCodes", containers)
            )
        if on_codes is not None and on_conditions:
            errors.append(
                FieldError(
                    FieldErrorType.INVALID,
                    path,
                    "specifying both OnExitCodes and OnPodConditions is not supported",
                )
            )
        if on_codes is None and not on_conditions:
            errors.append(
                FieldError(
                    FieldErrorType.INVALID,
                    path,
                    "specifying one of OnExitCodes and OnPodConditions is required",
                )
            )
    return errors


def _validate_job_spec(job: Obj) -> list[FieldError]:
    spec = mapping(job.get("spec"))
    errors = _validate_selector_and_template(spec)
    for field in (
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ):
        errors.extend(nonnegative(f"spec.{field}", spec.get(field)))
    mode = spec.get("completionMode")
    if mode is not None:
        if mode not in _COMPLETION_MODES:
            errors.append(not_supported("spec.completionMode", mode, _COMPLETION_MODES))
        elif mode == "Indexed" and spec.get("completions") is None:
            errors.append(required("spec.completions", "when completion mode is Indexed"))
    errors.extend(_validate_pod_failure_policy(spec))
    policy = spec.get("podReplacementPolicy")
    if policy is not None:
        allowed = (
            ["Failed"]
            if spec.get("podFailurePolicy") is not None
            else [
                "Failed",
                "TerminatingOrFailed",
            ]
        )
        if policy not in allowed:
            errors.append(not_supported("spec.podReplacementPolicy", policy, allowed))
    return errors


# Fields of a Job's spec that never change after creation (``ValidateJobSpecUpdate``).
_IMMUTABLE = ("selector", "template", "completionMode", "podFailurePolicy", "completions")


def validate_job_update(new: Obj, old: Obj) -> list[FieldError]:
    errors = _validate_job_spec(new)
    new_spec, old_spec = mapping(new.get("spec")), mapping(old.get("spec"))
    for field in _IMMUTABLE:
        if new_spec.get(field) != old_spec.get(field):
            value = new_spec.get(field)
            if field == "selector":
                shown: object = go_label_selector(mapping(value))
            elif isinstance(value, dict):
                shown = GoValue(value, "{...}")
            else:
                shown = value
            errors.append(invalid(f"spec.{field}", shown, "field is immutable"))
    return errors


def validate_job_status(job: Obj) -> list[FieldError]:
    status = mapping(job.get("status"))
    errors: list[FieldError] = []
    for field in ("active", "ready", "succeeded", "failed", "terminating"):
        errors.extend(nonnegative(f"status.{field}", status.get(field)))
    return errors


# -- CronJob ----------------------------------------------------------------------------------

_CONCURRENCY_POLICIES = ["Allow", "Forbid", "Replace"]
# validation.DNS1035LabelMaxLength - 11: a Job's name is the CronJob's, "-" and ten digits.
_CRONJOB_NAME_MAX = 52


def _validate_time_zone(zone: object) -> list[FieldError]:
    path = "spec.timeZone"
    if not isinstance(zone, str):
        return []
    if zone.lower() == "local":
        return [
            invalid(
                path,
                zone,
                "timeZone must be an explicit time zone as defined in "
                "https://www.iana.org/time-zones",
            )
        ]
    if load_time_zone(zone) is None:
        return [invalid(path, zone, f"unknown time zone {zone}")]
    return []


def _validate_schedule(schedule: object, allow_tz: bool = False) -> list[FieldError]:
    path = "spec.schedule"
    if not schedule:
        return [required(path)]
    if not isinstance(schedule, str):
        return [invalid(path, schedule, "must be a string")]
    errors: list[FieldError] = []
    zone, rest = cron.split_time_zone(schedule)
    try:
        if zone is not None and load_time_zone(zone) is None:
            raise cron.CronError(f"provided bad location {zone}: unknown time zone {zone}")
        cron.parse_standard(rest)
    except cron.CronError as e:
        errors.append(invalid(path, schedule, str(e)))
    if "TZ" in schedule and not allow_tz:
        errors.append(
            invalid(
                path, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            )
        )
    return errors


def _validate_job_template(spec: Obj) -> list[FieldError]:
    """``ValidateJobTemplateSpec``: the Job spec without its selector (each Job generates its
    own), under ``spec.jobTemplate.spec``."""
    job_spec = mapping(mapping(spec.get("jobTemplate")).get("spec"))
    probe = {"spec": {**job_spec, "selector": {}}}
    prefix = "spec.jobTemplate.spec."
    errors = []
    for e in _validate_job_spec(probe):
        if e.field.startswith("spec.selector") or e.field == "spec.template.metadata.labels":
            continue
        errors.append(dataclasses.replace(e, field=prefix + e.field.removeprefix("spec.")))
    return errors


def validate_cron_job(cj: Obj, allow_tz_in_schedule: bool = False) -> list[FieldError]:
    errors: list[FieldError] = []
    name = str(mapping(cj.get("metadata")).get("name") or "")
    if len(name) > _CRONJOB_NAME_MAX:
        errors.append(invalid("metadata.name", name, "must be no more than 52 characters"))
    spec = mapping(cj.get("spec"))
    errors.extend(_validate_schedule(spec.get("schedule"), allow_tz_in_schedule))
    errors.extend(_validate_time_zone(spec.get("timeZone")))
    policy = spec.get("concurrencyPolicy")
    if policy not in _CONCURRENCY_POLICIES:
        if not policy:
            errors.append(required("spec.concurrencyPolicy"))
        else:
            errors.append(not_supported("spec.concurrencyPolicy", policy, _CONCURRENCY_POLICIES))
    for field in (
        "startingDeadlineSeconds",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
    ):
        errors.extend(nonnegative(f"spec.{field}", spec.get(field)))
    errors.extend(_validate_job_template(spec))
    return errors


def validate_cron_job_update(new: Obj, old: Obj) -> list[FieldError]:
    """A CronJob stored with ``TZ=`` in its schedule (before 1.27 refused it) may keep it
    (upstream's ``AllowTZInSchedule``)."""
    old_schedule = str(mapping(old.get("spec")).get("schedule") or "")
    return validate_cron_job(new, allow_tz_in_schedule="TZ" in old_schedule)


def load_time_zone(zone: str) -> zoneinfo.ZoneInfo | None:
    """The IANA zone of that name, None for one the tz database lacks (Go's
    ``time.LoadLocation``)."""
    try:
        return zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
