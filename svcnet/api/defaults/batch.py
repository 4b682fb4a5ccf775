"""batch/v1 defaults: ``pkg/apis/batch/v1/defaults.go`` (Kubernetes 1.32)."""

from __future__ import annotations

from svcnet.api.defaults.core import default_pod_template
from svcnet.api.objects import Obj

# math.MaxInt32: the backoffLimit of a Job that counts failures per index instead.
_MAX_INT32 = 2**31 - 1


def default_job(job: Obj) -> None:
    spec = job.get("spec")
    if not isinstance(spec, dict):
        spec = job["spec"] = {}
    # A non-parallel Job may leave both unset: both become 1.
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        per_index = spec.get("backoffLimitPerIndex") is not None
        spec["backoffLimit"] = _MAX_INT32 if per_index else 6
    template = spec.get("template")
    template_labels = (
        (template.get("metadata") or {}).get("labels") if isinstance(template, dict) else None
    )
    meta = job.get("metadata")
    if template_labels is not None and isinstance(meta, dict) and not meta.get("labels"):
        meta["labels"] = dict(template_labels)
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    policy = spec.get("podFailurePolicy")
    if isinstance(policy, dict):
        for rule in policy.get("rules") or []:
            for pattern in (rule.get("onPodConditions") or []) if isinstance(rule, dict) else []:
                if isinstance(pattern, dict) and not pattern.get("status"):
                    pattern["status"] = "True"
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if policy is not None else "TerminatingOrFailed"
    default_pod_template(template)


def default_cron_job(cj: Obj) -> None:
    spec = cj.get("spec")
    if not isinstance(spec, dict):
        spec = cj["spec"] = {}
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    # Only the pod template of the Job template is defaulted upstream (SetObjectDefaults_CronJob
    # walks into the PodSpec); the JobSpec's own defaults come when each Job is created.
    job_template = spec.get("jobTemplate")
    job_spec = job_template.get("spec") if isinstance(job_template, dict) else None
    if isinstance(job_spec, dict):
        default_pod_template(job_spec.get("template"))
