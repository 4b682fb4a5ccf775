"""batch/v1 validation: ``pkg/apis/batch/validation/validation.go`` (Kubernetes 1.32)."""

from __future__ import annotations

from svcnet.api.errors import FieldError, invalid, not_supported, required
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
