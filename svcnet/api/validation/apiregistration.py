"""apiregistration.k8s.io/v1 validation: kube-aggregator's
``pkg/apis/apiregistration/validation/validation.go`` (``ValidateAPIService`` and its status)."""

from __future__ import annotations

import base64
import binascii

from svcnet.api.errors import FieldError, invalid, not_supported, required
from svcnet.api.meta import name_is_path_segment
from svcnet.api.names import is_dns1035_label, is_dns1123_subdomain, is_valid_port_num
from svcnet.api.objects import Obj
from svcnet.api.validation.fields import items, mapping

CONDITION_STATUSES = ["True", "False", "Unknown"]


def _ca_bundle_len(value: object) -> int:
    """``len(spec.CABundle)``: the decoded bytes (a []byte travels as base64 in JSON)."""
    if not isinstance(value, str) or not value:
        return 0
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return len(value)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _validate_name(obj: Obj, required_name: str) -> list[FieldError]:
    """The rest of upstream's name func (the strategy checks the path-segment half): the
    name, and a generateName, must be ``<version>.<group>``."""
    meta = mapping(obj.get("metadata"))
    detail = f'must be `spec.version+"."+spec.group`: "{required_name}"'
    errors: list[FieldError] = []
    for key, prefix in (("generateName", True), ("name", False)):
        value = meta.get(key)
        if (
            isinstance(value, str)
            and value
            and not name_is_path_segment(value, prefix)
            and value != required_name
        ):
            errors.append(invalid(f"metadata.{key}", value, detail))
    return errors


def validate_api_service(obj: Obj) -> list[FieldError]:
    spec = mapping(obj.get("spec"))
    group = str(spec.get("group") or "")
    version = str(spec.get("version") or "")
    errors = _validate_name(obj, f"{version}.{group}")
    # The legacy core group is the one APIService without a group (``v1.``).
    if not group and version != "v1":
        errors.append(
            required("spec.group", "only v1 may have an empty group and it better be legacy kube")
        )
    if group:
        errors.extend(invalid("spec.group", group, m) for m in is_dns1123_subdomain(group))
    errors.extend(invalid("spec.version", version, m) for m in is_dns1035_label(version))
    group_priority = _int(spec.get("groupPriorityMinimum"))
    if not 0 < group_priority <= 20000:
        errors.append(
            invalid(
                "spec.groupPriorityMinimum", group_priority, "must be positive and less than 20000"
            )
        )
    version_priority = _int(spec.get("versionPriority"))
    if not 0 < version_priority <= 1000:
        errors.append(
            invalid("spec.versionPriority", version_priority, "must be positive and less than 1000")
        )
    ca_len = _ca_bundle_len(spec.get("caBundle"))
    skip_verify = spec.get("insecureSkipTLSVerify") is True
    service = spec.get("service")
    if not isinstance(service, dict):
        if ca_len:
            errors.append(
                invalid(
                    "spec.caBundle", f"{ca_len} bytes", "local APIServices may not have a caBundle"
                )
            )
        if skip_verify:
            errors.append(
                invalid(
                    "spec.insecureSkipTLSVerify",
                    True,
                    "local APIServices may not have insecureSkipTLSVerify",
                )
            )
        return errors
    if not service.get("namespace"):
        errors.append(required("spec.service.namespace", ""))
    if not service.get("name"):
        errors.append(required("spec.service.name", ""))
    port = _int(service.get("port"))
    problems = is_valid_port_num(port)
    if problems:
        errors.append(
            invalid("spec.service.port", port, "port is not valid: " + ", ".join(problems))
        )
    if skip_verify and ca_len:
        errors.append(
            invalid("spec.insecureSkipTLSVerify", True, "may not be true if caBundle is present")
        )
    return errors


def validate_api_service_status(obj: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, condition in enumerate(items(mapping(obj.get("status")).get("conditions"))):
        status = mapping(condition).get("status")
        if status not in CONDITION_STATUSES:
            errors.append(
                not_supported(f"status.conditions[{i}].status", status, CONDITION_STATUSES)
            )
    return errors
