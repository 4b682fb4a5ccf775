"""CustomResourceDefinitions (apiextensions.k8s.io/v1): defaulting, validation, and what the
API server serves for them (pure).

Upstream's apiextensions-apiserver runs controllers beside the CRD storage: the naming
controller decides whether a CRD's names are accepted (``NamesAccepted``), the establishing
controller then marks it ``Established`` and the CRD handler starts serving its versions;
the finalizer controller deletes the custom resources of a deleted CRD before it goes. Here
:func:`plan_custom_resources` computes all of that at once from every stored CRD: the
registry rows to serve and the status each CRD should have; the API server applies the plan
(:mod:`svcnet.apiserver.crds`).

CRDs for resources svcnet serves built in: the Gateway API kinds are CRDs upstream but built
into svcnet (with validation and status of their own). Applying the Gateway API's CRD bundle
is a normal install step, so such a CRD is accepted, its names are accepted and it is marked
Established — and the built-in implementation keeps serving the resource (every version the
CRD lists is served by the built-in rows only; the CRD's schema is not used). Deleting such a
CRD deletes nothing. Upstream has no such case; see docs/crds.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from svcnet.api import structural
from svcnet.api.errors import (
    FieldError,
    FieldErrorType,
    forbidden,
    invalid,
    not_supported,
    required,
)
from svcnet.api.jsonvalue import copy_json
from svcnet.api.names import is_dns1035_label, is_dns1123_subdomain
from svcnet.api.objects import Obj
from svcnet.api.registry import CustomVersion, ResourceType

CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
SCOPES = ["Cluster", "Namespaced"]

# --- defaulting ---------------------------------------------------------------------------------


def default_crd(crd: Obj) -> None:
    """``SetDefaults_CustomResourceDefinition``: singular and listKind names, conversion."""
    spec = crd.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    names = spec.get("names")
    if isinstance(names, dict):
        if not names.get("singular") and isinstance(names.get("kind"), str):
            names["singular"] = names["kind"].lower()
        if not names.get("listKind") and isinstance(names.get("kind"), str):
            names["listKind"] = names["kind"] + "List"
    conversion = spec.setdefault("conversion", {"strategy": "None"})
    if isinstance(conversion, dict):
        conversion.setdefault("strategy", "None")


# --- validation ---------------------------------------------------------------------------------

_VERSION_RE = re.compile(r"^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$")


def validate_crd(crd: Obj) -> list[FieldError]:
    """``ValidateCustomResourceDefinition``: names, scope, versions, structural schemas."""
    errors: list[FieldError] = []
    meta = crd.get("metadata") or {}
    spec = crd.get("spec") if isinstance(crd.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    group = spec.get("group") or ""
    names = spec.get("names") if isinstance(spec.get("names"), dict) else {}
    assert isinstance(names, dict)
    plural = names.get("plural") or ""
    if meta.get("name") != f"{plural}.{group}":
        errors.append(
            invalid(
                "metadata.name", meta.get("name", ""), 'must be spec.names.plural+"."+spec.group'
            )
        )
    if not group:
        errors.append(required("spec.group"))
    elif "." not in group:
        errors.append(invalid("spec.group", group, "should be a domain with at least one dot"))
    else:
        errors.extend(invalid("spec.group", group, m) for m in is_dns1123_subdomain(group))
    scope = spec.get("scope")
    if not scope:
        errors.append(required("spec.scope"))
    elif scope not in SCOPES:
        errors.append(not_supported("spec.scope", scope, SCOPES))
    errors.extend(_validate_names(names, "spec.names"))
    errors.extend(_validate_versions(spec.get("versions"), "spec.versions"))
    conversion = spec.get("conversion") or {}
    if isinstance(conversion, dict) and conversion.get("strategy") not in ("None", "Webhook"):
        errors.append(
            not_supported(
                "spec.conversion.strategy", conversion.get("strategy"), ["None", "Webhook"]
            )
        )
    return errors


def validate_crd_update(new: Obj, old: Obj) -> list[FieldError]:
    errors = validate_crd(new)
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if new_spec.get("group") != old_spec.get("group"):
        errors.append(invalid("spec.group", new_spec.get("group"), "field is immutable"))
    stored = (old.get("status") or {}).get("storedVersions") or []
    served = {v.get("name") for v in new_spec.get("versions") or () if isinstance(v, dict)}
    for i, name in enumerate(stored):
        if name not in served:
            errors.append(
                invalid(
                    f"status.storedVersions[{i}]",
                    name,
                    "must appear in spec.versions",
                )
            )
    return errors


def _validate_names(names: Mapping[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for field in ("plural", "singular"):
        value = names.get(field) or ""
        if not value:
            errors.append(required(f"{path}.{field}"))
            continue
        for msg in is_dns1035_label(value):
            errors.append(invalid(f"{path}.{field}", value, msg))
    for field in ("kind", "listKind"):
        value = names.get(field) or ""
        if not value:
            errors.append(required(f"{path}.{field}"))
        elif is_dns1035_label(value.lower()):
            errors.append(
                invalid(
                    f"{path}.{field}",
                    value,
                    "may have mixed case, but should otherwise "
                    "match: " + "[a-z]([-a-z0-9]*[a-z0-9])?",
                )
            )
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        errors.append(
            invalid(f"{path}.listKind", names["listKind"], "kind and listKind may not be the same")
        )
    for i, short in enumerate(names.get("shortNames") or ()):
        for msg in is_dns1035_label(str(short)):
            errors.append(invalid(f"{path}.shortNames[{i}]", short, msg))
    return errors


def _validate_versions(versions: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if not isinstance(versions, list) or not versions:
        return [invalid(path, versions, "must have exactly one version marked as storage version")]
    seen: set[str] = set()
    storage = 0
    for i, version in enumerate(versions):
        vp = f"{path}[{i}]"
        if not isinstance(version, dict):
            errors.append(invalid(vp, version, "must be an object"))
            continue
        name = version.get("name") or ""
        if not name:
            errors.append(required(f"{vp}.name"))
        else:
            for msg in is_dns1035_label(name):
                errors.append(invalid(f"{vp}.name", name, msg))
            if name in seen:
                errors.append(invalid(path, name, "must contain unique version names"))
            seen.add(name)
        if version.get("storage"):
            storage += 1
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        sp = f"{vp}.schema.openAPIV3Schema"
        if not isinstance(schema, dict):
            errors.append(required(sp, "schemas are required"))
        else:
            errors.extend(_structural_errors(schema, sp, root=True))
        scale = (version.get("subresources") or {}).get("scale")
        if isinstance(scale, dict):
            for field in ("specReplicasPath", "statusReplicasPath"):
                if not scale.get(field):
                    errors.append(required(f"{vp}.subresources.scale.{field}"))
        for j, column in enumerate(version.get("additionalPrinterColumns") or ()):
            cp = f"{vp}.additionalPrinterColumns[{j}]"
            for field in ("name", "type", "jsonPath"):
                if not (column or {}).get(field):
                    errors.append(required(f"{cp}.{field}"))
    if storage != 1:
        errors.append(
            FieldError(
                FieldErrorType.INVALID,
                path,
                "must have exactly one version marked as storage version",
                "[" + ", ".join(str(v.get("name")) for v in versions if isinstance(v, dict)) + "]",
            )
        )
    if not any(isinstance(v, dict) and v.get("served") for v in versions):
        errors.append(invalid(path, "", "must have at least one served version"))
    return errors


_TYPES = ("object", "array", "string", "integer", "number", "boolean")


def _structural_errors(node: Mapping[str, Any], path: str, root: bool = False) -> list[FieldError]:
    """The structural-schema rules that reject a schema (``NewStructural`` + validation of
    the structural schema): every specified field has a type unless it is int-or-string or
    preserves unknown fields; the root is an object; metadata only restricts name."""
    errors: list[FieldError] = []
    kind = node.get("type")
    if kind is not None and kind not in _TYPES:
        errors.append(not_supported(f"{path}.type", kind, list(_TYPES)))
    if root and kind != "object":
        errors.append(invalid(f"{path}.type", kind or "", "must be object at the root"))
    untyped_ok = node.get("x-kubernetes-int-or-string") or node.get(
        "x-kubernetes-preserve-unknown-fields"
    )
    if not kind and not untyped_ok and not root:
        errors.append(required(f"{path}.type", "must not be empty for specified object fields"))
    for key, child in (node.get("properties") or {}).items():
        if isinstance(child, Mapping):
            if root and key == "metadata":
                errors.extend(_metadata_errors(child, f"{path}.properties[metadata]"))
            errors.extend(_structural_errors(child, f"{path}.properties[{key}]"))
    items = node.get("items")
    if isinstance(items, Mapping):
        errors.extend(_structural_errors(items, f"{path}.items"))
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping):
        if node.get("properties"):
            errors.append(
                forbidden(
                    f"{path}.additionalProperties",
                    "additionalProperties and properties are mutual exclusive",
                )
            )
        errors.extend(_structural_errors(extra, f"{path}.additionalProperties"))
    return errors


def _metadata_errors(node: Mapping[str, Any], path: str) -> list[FieldError]:
    allowed = {"name", "generateName"}
    extra = set(node.get("properties") or {}) - allowed
    if extra or node.get("x-kubernetes-preserve-unknown-fields"):
        return [
            forbidden(
                path,
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            )
        ]
    return []


# --- what the API server serves -----------------------------------------------------------------


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes' version order (``version.CompareKubeAwareVersionStrings``): GA before beta
    before alpha, higher numbers first; other strings after them, alphabetically."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0, version)
    major = int(m.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, "")


@dataclass(frozen=True)
class CustomPlan:
    """What the API server serves for the stored CRDs, and the status each should have."""

    rows: tuple[ResourceType, ...]
    statuses: Mapping[str, Obj]
    # CRDs being deleted whose custom resources must go before their finalizer.
    terminating: tuple[Obj, ...]


def _crd_order(crd: Obj) -> tuple[str, str]:
    meta = crd.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))


def _condition(old: list[Any], type_: str, status: str, reason: str, message: str, now: str) -> Obj:
    previous = next((c for c in old if isinstance(c, dict) and c.get("type") == type_), None)
    since = now
    if (
        previous is not None
        and previous.get("status") == status
        and previous.get("lastTransitionTime")
    ):
        since = previous["lastTransitionTime"]
    return {
        "type": type_,
        "status": status,
        "lastTransitionTime": since,
        "reason": reason,
        "message": message,
    }


def _names_of(names: Mapping[str, Any]) -> set[str]:
    out = {str(names.get(k) or "") for k in ("plural", "singular")}
    out |= {str(s) for s in names.get("shortNames") or ()}
    return out - {""}


def plan_custom_resources(
    crds: Iterable[Obj], builtin: Callable[[str, str], bool], now: str
) -> CustomPlan:
    """The registry rows of every established CRD and the status of every CRD.

    ``builtin(group, plural)``: whether svcnet serves the resource built in (its CRD is
    accepted and established, and served by the built-in rows).
    """
    rows: list[ResourceType] = []
    statuses: dict[str, Obj] = {}
    terminating: list[Obj] = []
    taken: dict[str, set[str]] = {}  # group -> names of accepted CRDs
    kinds: dict[str, set[str]] = {}
    for crd in sorted(crds, key=_crd_order):
        meta = crd.get("metadata") or {}
        spec = crd.get("spec") or {}
        group = str(spec.get("group") or "")
        names = spec.get("names") or {}
        old = crd.get("status") or {}
        old_conditions = list(old.get("conditions") or [])
        mine = _names_of(names)
        conflict = ""
        if taken.get(group, set()) & mine:
            clash = sorted(taken[group] & mine)[0]
            conflict = f'"{clash}" is already in use'
            reason = "PluralConflict" if clash == names.get("plural") else "SingularConflict"
            if clash in (names.get("shortNames") or ()):
                reason = "ShortNamesConflict"
        elif names.get("kind") in kinds.get(group, set()):
            conflict = f'"{names.get("kind")}" is already in use'
            reason = "KindConflict"
        conditions: list[Obj] = []
        if conflict:
            conditions.append(
                _condition(old_conditions, "NamesAccepted", "False", reason, conflict, now)
            )
            conditions.append(
                _condition(
                    old_conditions,
                    "Established",
                    "False",
                    "NotAccepted",
                    "not all names are accepted",
                    now,
                )
            )
            accepted = old.get("acceptedNames") or {"plural": "", "kind": ""}
        else:
            taken.setdefault(group, set()).update(mine)
            kinds.setdefault(group, set()).add(str(names.get("kind") or ""))
            conditions.append(
                _condition(
                    old_conditions,
                    "NamesAccepted",
                    "True",
                    "NoConflicts",
                    "no conflicts found",
                    now,
                )
            )
            conditions.append(
                _condition(
                    old_conditions, "Established", "True", "InitialNamesAccepted",
                    "the initial names have been accepted", now,
                )
            )  # fmt: skip
            accepted = copy_json(dict(names))
        if meta.get("deletionTimestamp"):
            conditions.append(
                _condition(
                    old_conditions, "Terminating", "True", "InstanceDeletionInProgress",
                    "CustomResource deletion is in progress", now,
                )
            )  # fmt: skip
            terminating.append(crd)
        elif not conflict and not builtin(group, str(names.get("plural") or "")):
            rows.extend(rows_of(crd))
        stored = list(old.get("storedVersions") or [])
        storage = storage_version(crd)
        if storage and storage not in stored:
            stored.append(storage)
        statuses[str(meta.get("name") or "")] = {
            "conditions": conditions,
            "acceptedNames": accepted,
            "storedVersions": stored,
        }
    return CustomPlan(_discovery_order(rows), statuses, tuple(terminating))


def _discovery_order(rows: list[ResourceType]) -> tuple[ResourceType, ...]:
    groups: dict[str, None] = {}
    for r in rows:
        groups.setdefault(r.group, None)
    order = {g: i for i, g in enumerate(sorted(groups))}
    return tuple(
        sorted(rows, key=lambda r: (order[r.group], version_priority(r.version), r.plural))
    )


def storage_version(crd: Obj) -> str:
    for version in (crd.get("spec") or {}).get("versions") or ():
        if isinstance(version, dict) and version.get("storage"):
            return str(version.get("name") or "")
    return ""


def rows_of(crd: Obj) -> list[ResourceType]:
    """The registry rows of a CRD: one per served version."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    name = str((crd.get("metadata") or {}).get("name") or "")
    storage = storage_version(crd)
    out = []
    for version in spec.get("versions") or ():
        if not isinstance(version, dict) or not version.get("served"):
            continue
        schema = (version.get("schema") or {}).get("openAPIV3Schema") or {}
        subs = version.get("subresources") or {}
        subresources = tuple(s for s in ("status", "scale") if isinstance(subs.get(s), dict))
        scale = subs.get("scale") if isinstance(subs.get("scale"), dict) else None
        custom = CustomVersion(
            crd=name,
            schema=schema,
            published=structural.with_object_meta(schema),
            storage_version=storage,
            printer_columns=tuple(
                c for c in version.get("additionalPrinterColumns") or () if isinstance(c, dict)
            ),
            scale=scale,
        )
        out.append(
            ResourceType(
                str(spec.get("group") or ""),
                str(version.get("name") or ""),
                str(names.get("kind") or ""),
                str(names.get("plural") or ""),
                spec.get("scope") == "Namespaced",
                tuple(str(s) for s in names.get("shortNames") or ()),
                tuple(str(c) for c in names.get("categories") or ()),
                subresources=subresources,
                singular=str(names.get("singular") or str(names.get("kind") or "").lower()),
                custom=custom,
            )
        )
    return out
