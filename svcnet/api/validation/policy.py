"""policy/v1 validation: ``pkg/apis/policy/validation/validation.go`` (Kubernetes 1.32)."""

from __future__ import annotations

from svcnet.api.errors import FieldError, invalid, not_supported
from svcnet.api.objects import Obj
from svcnet.api.selectors import validate_label_selector
from svcnet.api.validation.apps import int_or_percent
from svcnet.api.validation.fields import mapping

_UNHEALTHY_POLICIES = ["AlwaysAllow", "IfHealthyBudget"]


def _not_over_100_percent(path: str, value: object) -> list[FieldError]:
    if isinstance(value, str) and value.endswith("%"):
        try:
            if int(value[:-1]) > 100:
                return [invalid(path, value, "must not be greater than 100%")]
        except ValueError:
            return []
    return []


def validate_pod_disruption_budget(pdb: Obj) -> list[FieldError]:
    spec = mapping(pdb.get("spec"))
    errors: list[FieldError] = []
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    if min_available is not None and max_unavailable is not None:
        errors.append(
            invalid("spec", "{...}", "minAvailable and maxUnavailable cannot be both set")
        )
    for field, value in (("minAvailable", min_available), ("maxUnavailable", max_unavailable)):
        if value is not None:
            errors.extend(int_or_percent(f"spec.{field}", value))
            errors.extend(_not_over_100_percent(f"spec.{field}", value))
    selector = spec.get("selector")
    if selector is not None:
        errors.extend(validate_label_selector(mapping(selector), "spec.selector"))
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in _UNHEALTHY_POLICIES:
        errors.append(not_supported("spec.unhealthyPodEvictionPolicy", policy, _UNHEALTHY_POLICIES))
    return errors


def validate_pod_disruption_budget_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_pod_disruption_budget(new)
