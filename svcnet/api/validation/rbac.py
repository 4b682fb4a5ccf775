"""rbac.authorization.k8s.io/v1 validation: ``pkg/apis/rbac/validation/validation.go``."""

from __future__ import annotations

from svcnet.api.errors import FieldError, invalid, not_supported, required
from svcnet.api.meta import name_is_dns_subdomain, name_is_path_segment
from svcnet.api.objects import Obj
from svcnet.api.selectors import validate_label_selector
from svcnet.api.validation.fields import items, mapping
from svcnet.api.validation.goformat import GoValue, go_strings

GROUP = "rbac.authorization.k8s.io"


def _validate_rule(rule: Obj, namespaced: bool, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if not rule.get("verbs"):
        errors.append(required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = rule.get("nonResourceURLs") or []
    if urls:
        value = go_strings([str(u) for u in urls])
        if namespaced:
            errors.append(
                invalid(
                    f"{path}.nonResourceURLs",
                    value,
                    "namespaced rules cannot apply to non-resource URLs",
                )
            )
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            errors.append(
                invalid(
                    f"{path}.nonResourceURLs",
                    value,
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            )
        return errors
    if not rule.get("apiGroups"):
        errors.append(
            required(f"{path}.apiGroups", "resource rules must supply at least one api group")
        )
    if not rule.get("resources"):
        errors.append(
            required(f"{path}.resources", "resource rules must supply at least one resource")
        )
    return errors


def _validate_rules(obj: Obj, namespaced: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, rule in enumerate(items(obj.get("rules"))):
        errors.extend(_validate_rule(mapping(rule), namespaced, f"rules[{i}]"))
    return errors


def validate_role(role: Obj) -> list[FieldError]:
    return _validate_rules(role, True)


def validate_cluster_role(role: Obj) -> list[FieldError]:
    errors = _validate_rules(role, False)
    agg = role.get("aggregationRule")
    if agg is not None:
        selectors = items(mapping(agg).get("clusterRoleSelectors"))
        if not selectors:
            errors.append(required("aggregationRule.clusterRoleSelectors", ""))
        for i, sel in enumerate(selectors):
            errors.extend(
                validate_label_selector(mapping(sel), f"aggregationRule.clusterRoleSelectors[{i}]")
            )
    return errors


def _validate_subject(subject: Obj, namespaced: bool, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    name = str(subject.get("name") or "")
    group = str(subject.get("apiGroup") or "")
    kind = subject.get("kind") or ""
    if not name:
        errors.append(required(f"{path}.name", ""))
    if kind == "ServiceAccount":
        if name:
            errors.extend(
                invalid(f"{path}.name", name, m) for m in name_is_dns_subdomain(name, False)
            )
        if group:
            errors.append(not_supported(f"{path}.apiGroup", group, [""]))
        if not namespaced and not subject.get("namespace"):
            errors.append(required(f"{path}.namespace", ""))
    elif kind in ("User", "Group"):
        if group != GROUP:
            errors.append(not_supported(f"{path}.apiGroup", group, [GROUP]))
    else:
        errors.append(not_supported(f"{path}.kind", kind, ["ServiceAccount", "User", "Group"]))
    return errors


def _validate_binding(binding: Obj, role_kinds: list[str], namespaced: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    ref = mapping(binding.get("roleRef"))
    if ref.get("apiGroup", "") != GROUP:
        errors.append(not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [GROUP]))
    if ref.get("kind", "") not in role_kinds:
        errors.append(not_supported("roleRef.kind", ref.get("kind", ""), role_kinds))
    name = str(ref.get("name") or "")
    if not name:
        errors.append(required("roleRef.name", ""))
    else:
        errors.extend(invalid("roleRef.name", name, m) for m in name_is_path_segment(name, False))
    for i, subject in enumerate(items(binding.get("subjects"))):
        errors.extend(_validate_subject(mapping(subject), namespaced, f"subjects[{i}]"))
    return errors


def validate_role_binding(binding: Obj) -> list[FieldError]:
    return _validate_binding(binding, ["Role", "ClusterRole"], True)


def validate_cluster_role_binding(binding: Obj) -> list[FieldError]:
    return _validate_binding(binding, ["ClusterRole"], False)


def _role_ref_unchanged(new: Obj, old: Obj) -> list[FieldError]:
    ref, old_ref = mapping(new.get("roleRef")), mapping(old.get("roleRef"))
    fields = ("apiGroup", "kind", "name")
    if all(ref.get(f, "") == old_ref.get(f, "") for f in fields):
        return []
    text = (
        "rbac.RoleRef{"
        + ", ".join(
            f'{f[0].upper()}{f[1:]}:"{ref.get(f, "")}"' for f in ("apiGroup", "kind", "name")
        ).replace("ApiGroup", "APIGroup")
        + "}"
    )
    return [invalid("roleRef", GoValue(dict(ref), text), "cannot change roleRef")]


def validate_role_binding_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_role_binding(new) + _role_ref_unchanged(new, old)


def validate_cluster_role_binding_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_cluster_role_binding(new) + _role_ref_unchanged(new, old)
