"""ObjectMeta: identity, timestamps, generated names, and validation as upstream.

The validation follows ``k8s.io/apimachinery/pkg/api/validation/objectmeta.go`` and the core
additions in ``pkg/apis/core/validation`` (finalizer names): paths are ``metadata.name``,
``metadata.labels`` ..., and messages are upstream's, so kubectl prints what users know.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping
from typing import Any

from svcnet.api.errors import (
    FieldError,
    forbidden,
    invalid,
    required,
    too_long,
)
from svcnet.api.names import (
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
)
from svcnet.api.selectors import validate_labels
from svcnet.api.validation.goformat import go_strings

# utilrand's alphabet: no vowels (no accidental words) and no confusable 0/1/3.
GENERATE_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATE_NAME_RANDOM_LENGTH = 5
# SimpleNameGenerator keeps generated names within 63 characters.
_MAX_GENERATED_PREFIX = 63 - GENERATE_NAME_RANDOM_LENGTH
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
# Core's standard names, and the CRD cleanup finalizer the API server itself adds (upstream
# checks CRD finalizers only as qualified names, apimachinery's ValidateFinalizerName).
STANDARD_FINALIZERS = frozenset(
    {"kubernetes", "orphan", "foregroundDeletion", "customresourcecleanup.apiextensions.k8s.io"}
)

NameValidator = Callable[[str, bool], list[str]]
"""``(name, is_prefix) -> problems``: upstream's ``ValidateNameFunc``."""


_UID_BATCH = 256
_uid_pool: list[bytes] = []
# A forked child must not hand out its parent's remaining UIDs again.
os.register_at_fork(after_in_child=_uid_pool.clear)


def new_uid() -> str:
    """A random (version 4) UUID in its canonical text form.

    What ``str(uuid.uuid4())`` returns, at a fraction of its cost (this runs on every create):
    the random bytes of 256 UIDs come from one ``os.urandom`` call, and the version and variant
    bits are set on the integer, its hex formatted directly."""
    if not _uid_pool:
        block = os.urandom(16 * _UID_BATCH)
        _uid_pool.extend(block[i : i + 16] for i in range(0, len(block), 16))
    h = (
        (
            (int.from_bytes(_uid_pool.pop()) & ~(0xF000 << 64 | 0xC000 << 48))
            | (0x4000 << 64 | 0x8000 << 48)
        )
        .to_bytes(16)
        .hex()
    )
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def generate_name(prefix: str, rng: random.Random | None = None) -> str:
    """``SimpleNameGenerator``: the prefix (cut to 58 characters) and 5 random characters."""
    pick = (rng or random).choice
    prefix = prefix[:_MAX_GENERATED_PREFIX]
    return prefix + "".join(
        pick(GENERATE_NAME_ALPHABET) for _ in range(GENERATE_NAME_RANDOM_LENGTH)
    )


def _mask_trailing_dash(name: str) -> str:
    # A generateName prefix may end in '-': the random suffix will follow it.
    if len(name) > 1 and name.endswith("-"):
        return name[:-1] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


def name_is_path_segment(name: str, prefix: bool) -> list[str]:
    """upstream's ValidateRBACName (``path.IsValidPathSegmentName``): RBAC names may hold
    ':' (``system:discovery``), anything but a path separator, '%' or a lone dot."""
    if not prefix and name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


# Kinds whose names are not DNS subdomains (upstream's Validate<Kind>Name).
_NAME_VALIDATORS: dict[str, NameValidator] = {
    "Namespace": name_is_dns_label,
    "Service": name_is_dns1035_label,
    "Role": name_is_path_segment,
    "ClusterRole": name_is_path_segment,
    "RoleBinding": name_is_path_segment,
    "ClusterRoleBinding": name_is_path_segment,
    # The rest of APIService's name rule (<version>.<group>) needs its spec: validation.
    "APIService": name_is_path_segment,
}


def name_validator_for(kind: str) -> NameValidator:
    return _NAME_VALIDATORS.get(kind, name_is_dns_subdomain)


def validate_annotations(annotations: Mapping[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    total = 0
    for key, value in annotations.items():
        # Annotation keys are compared case-insensitively, as upstream lowercases them.
        errors.extend(invalid(path, key, m) for m in is_qualified_name(str(key).lower()))
        if not isinstance(value, str):
            errors.append(invalid(f"{path}[{key}]", value, "must be a string"))
            continue
        total += len(key.encode()) + len(value.encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errors.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errors


def validate_finalizer_name(name: str, path: str) -> list[FieldError]:
    """A qualified name, and a bare name only if it is one of the standard finalizers."""
    msgs = is_qualified_name(name)
    errors = [invalid(path, name, m) for m in msgs]
    if "/" not in name and name not in STANDARD_FINALIZERS:
        errors.append(
            invalid(
                path, name, "name is neither a standard finalizer name nor is it fully qualified"
            )
        )
    return errors


def validate_finalizers(finalizers: list[Any], path: str) -> list[FieldError]:
    # Upstream reports every finalizer at the list's path, without an index.
    errors: list[FieldError] = []
    for name in finalizers:
        errors.extend(validate_finalizer_name(str(name), path))
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        errors.append(
            invalid(
                path,
                go_strings([str(f) for f in finalizers]),
                "finalizer orphan and foregroundDeletion cannot be both set",
            )
        )
    return errors


def validate_owner_references(refs: list[Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    controllers: list[str] = []
    for i, ref in enumerate(refs):
        p = f"{path}[{i}]"
        if not isinstance(ref, Mapping):
            errors.append(invalid(p, str(ref), "must be an object"))
            continue
        api_version = str(ref.get("apiVersion") or "")
        version = api_version.rsplit("/", 1)[-1]
        if not version:
            errors.append(invalid(f"{p}.apiVersion", api_version, "version must not be empty"))
        for field in ("kind", "name", "uid"):
            if not ref.get(field):
                errors.append(
                    invalid(f"{p}.{field}", str(ref.get(field) or ""), "must not be empty")
                )
        if ref.get("controller") is True:
            controllers.append(f"{ref.get('kind', '')}/{ref.get('name', '')}")
    if len(controllers) > 1:
        errors.append(
            invalid(
                path,
                "[...]",
                'Only one reference can have Controller set to true. Found "true" in '
                f"references for {' and '.join(controllers)}",
            )
        )
    return errors


# Namespace names already found valid (every object of a namespace names it): bounded.
_VALID_NAMESPACES: set[str] = set()


def validate_object_meta(
    meta: Mapping[str, Any],
    namespaced: bool,
    name_fn: NameValidator = name_is_dns_subdomain,
    path: str = "metadata",
) -> list[FieldError]:
    """``ValidateObjectMeta``: name (or generateName), namespace by scope, labels, annotations,
    owner references and finalizers."""
    errors: list[FieldError] = []
    generate = meta.get("generateName") or ""
    if generate:
        errors.extend(invalid(f"{path}.generateName", generate, m) for m in name_fn(generate, True))
    name = meta.get("name") or ""
    if not name:
        errors.append(required(f"{path}.name", "name or generateName is required"))
    else:
        problems = name_fn(str(name), False)
        if problems:
            errors.extend(invalid(f"{path}.name", name, m) for m in problems)
    namespace = meta.get("namespace") or ""
    if namespaced:
        if not namespace:
            errors.append(required(f"{path}.namespace"))
        elif not (type(namespace) is str and namespace in _VALID_NAMESPACES):
            problems = name_is_dns_label(namespace, False)
            if problems:
                errors.extend(invalid(f"{path}.namespace", namespace, m) for m in problems)
            elif type(namespace) is str:
                if len(_VALID_NAMESPACES) >= 4096:
                    _VALID_NAMESPACES.clear()
                _VALID_NAMESPACES.add(namespace)
    elif namespace:
        errors.append(forbidden(f"{path}.namespace", "not allowed on this type"))
    generation = meta.get("generation")
    if isinstance(generation, int) and generation < 0:
        errors.append(
            invalid(f"{path}.generation", generation, "must be greater than or equal to 0")
        )
    # The optional parts are checked only when present: this runs on every write.
    labels = meta.get("labels")
    if labels:
        errors.extend(validate_labels(labels, f"{path}.labels"))
    annotations = meta.get("annotations")
    if annotations:
        errors.extend(validate_annotations(annotations, f"{path}.annotations"))
    refs = meta.get("ownerReferences")
    if refs:
        errors.extend(validate_owner_references(refs, f"{path}.ownerReferences"))
    finalizers = meta.get("finalizers")
    if finalizers:
        errors.extend(validate_finalizers(finalizers, f"{path}.finalizers"))
    return errors


def immutable(path: str, new: Any, old: Any) -> list[FieldError]:
    """``ValidateImmutableField``."""
    return [] if new == old else [invalid(path, new, "field is immutable")]


def validate_object_meta_update(
    new: Mapping[str, Any], old: Mapping[str, Any], path: str = "metadata"
) -> list[FieldError]:
    """``ValidateObjectMetaUpdate``: identity and timestamps are immutable, the generation
    never goes back, no new finalizers once deletion started; labels etc. re-validated.

    The resourceVersion is not required here: the API server fills it for unconditional
    updates and checks it against the store itself.
    """
    errors: list[FieldError] = []
    if old.get("deletionTimestamp"):
        added = sorted(set(new.get("finalizers") or []) - set(old.get("finalizers") or []))
        if added:
            errors.append(
                forbidden(
                    f"{path}.finalizers",
                    "no new finalizers can be added if the object is being deleted, found new "
                    f"finalizers {go_strings(added)}",
                )
            )
    new_gen, old_gen = new.get("generation") or 0, old.get("generation") or 0
    if isinstance(new_gen, int) and isinstance(old_gen, int) and new_gen < old_gen:
        errors.append(invalid(f"{path}.generation", new_gen, "must not be decremented"))
    for field in ("name", "namespace", "uid", "creationTimestamp"):
        errors.extend(immutable(f"{path}.{field}", new.get(field) or "", old.get(field) or ""))
    # Once set, the deletion fields only move through the deletion path, not updates.
    for field in ("deletionTimestamp", "deletionGracePeriodSeconds"):
        if old.get(field) is not None:
            errors.extend(immutable(f"{path}.{field}", new.get(field), old.get(field)))
    errors.extend(validate_labels(new.get("labels") or {}, f"{path}.labels"))
    errors.extend(validate_annotations(new.get("annotations") or {}, f"{path}.annotations"))
    errors.extend(
        validate_owner_references(new.get("ownerReferences") or [], f"{path}.ownerReferences")
    )
    errors.extend(validate_finalizers(new.get("finalizers") or [], f"{path}.finalizers"))
    return errors
