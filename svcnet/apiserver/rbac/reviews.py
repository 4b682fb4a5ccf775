"""The access reviews of authorization.k8s.io/v1 (``kubectl auth can-i``, ``--list``).

``SelfSubjectAccessReview`` asks for the requester, ``SubjectAccessReview`` for any user
(``system:auth-delegator``'s power), ``LocalSubjectAccessReview`` for any user within one
namespace, ``SelfSubjectRulesReview`` lists the requester's rules in a namespace. Each is
create-only and never stored: the answer is the posted object with its ``status`` filled in,
as upstream's ``registry/authorization`` REST storages do.
"""

from __future__ import annotations

from typing import Any

from svcnet.api.errors import BadRequest, FieldError, Invalid, invalid
from svcnet.api.validation.goformat import GoValue
from svcnet.apiserver.rbac.authorizer import PRIVILEGED_GROUP, RbacAuthorizer, aggregate_errors
from svcnet.apiserver.rbac.rules import Attributes, Rule
from svcnet.apiserver.satoken import UserInfo

GROUP = "authorization.k8s.io"
API_VERSION = f"{GROUP}/v1"
PREFIX = f"/apis/{GROUP}/v1/"
KINDS = {
    "selfsubjectaccessreviews": "SelfSubjectAccessReview",
    "subjectaccessreviews": "SubjectAccessReview",
    "localsubjectaccessreviews": "LocalSubjectAccessReview",
    "selfsubjectrulesreviews": "SelfSubjectRulesReview",
}


def review_resource(path: str) -> tuple[str, str] | None:
    """(resource, namespace) of a review path, or None for any other path."""
    if not path.startswith(PREFIX):
        return None
    parts = path[len(PREFIX) :].strip("/").split("/")
    if len(parts) == 1 and parts[0] in KINDS and parts[0] != "localsubjectaccessreviews":
        return parts[0], ""
    if len(parts) == 3 and parts[0] == "namespaces" and parts[2] == "localsubjectaccessreviews":
        return parts[2], parts[1]
    return None


def _null_or(value: Any) -> GoValue:
    return GoValue(value, "null" if value is None else str(value))


def _validate_spec(kind: str, spec: dict[str, Any], subject: bool) -> None:
    errors: list[FieldError] = []
    res, non = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if res is not None and non is not None:
        errors.append(
            invalid(
                "spec.nonResourceAttributes",
                _null_or(non),
                "cannot be specified in combination with resourceAttributes",
            )
        )
    if res is None and non is None:
        errors.append(
            invalid(
                "spec.resourceAttributes",
                _null_or(non),
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )
        )
    if subject and not spec.get("user") and not spec.get("groups"):
        errors.append(
            invalid(
                "spec.user", spec.get("user", ""), "at least one of user or group must be specified"
            )
        )
    if errors:
        raise Invalid(kind, "", errors, GROUP)


def _attributes(user: str, groups: tuple[str, ...], spec: dict[str, Any]) -> Attributes:
    res = spec.get("resourceAttributes")
    if res is not None:
        return Attributes(
            user,
            groups,
            str(res.get("verb", "")),
            True,
            str(res.get("group", "")),
            str(res.get("version", "")),
            str(res.get("resource", "")),
            str(res.get("subresource", "")),
            str(res.get("namespace", "")),
            str(res.get("name", "")),
        )
    non = spec.get("nonResourceAttributes") or {}
    return Attributes(user, groups, str(non.get("verb", "")), False, path=str(non.get("path", "")))


def _answer(body: dict[str, Any], kind: str, status: dict[str, Any]) -> dict[str, Any]:
    meta = dict(body.get("metadata") or {})
    meta.setdefault("creationTimestamp", None)
    return {
        "kind": kind,
        "apiVersion": API_VERSION,
        "metadata": meta,
        "spec": body.get("spec") or {},
        "status": status,
    }


async def review(
    resource: str, namespace: str, body: dict[str, Any], user: UserInfo, authz: RbacAuthorizer
) -> dict[str, Any]:
    """The answered review of a POST to ``resource``."""
    kind = KINDS[resource]
    spec = body.get("spec") or {}
    await authz.refresh()
    if resource == "selfsubjectrulesreviews":
        return _answer(body, kind, rules_review(user, str(spec.get("namespace", "")), authz))
    subject = resource != "selfsubjectaccessreviews"
    _validate_spec(kind, spec, subject)
    if resource == "localsubjectaccessreviews":
        res = spec.get("resourceAttributes") or {}
        if spec.get("resourceAttributes") is None or res.get("namespace", "") != namespace:
            raise BadRequest(f"spec.resourceAttributes.namespace must match namespace: {namespace}")
    if subject:
        who, groups = str(spec.get("user", "")), tuple(str(g) for g in spec.get("groups") or ())
    else:
        who, groups = user.username, user.groups
    decision = authz.decide(_attributes(who, groups, spec))
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return _answer(body, kind, status)


def rules_review(user: UserInfo, namespace: str, authz: RbacAuthorizer) -> dict[str, Any]:
    """SelfSubjectRulesReview status: the privileged group's everything, then RBAC's rules
    (upstream's union of the authorizers' RulesFor)."""
    rules: list[Rule] = []
    if PRIVILEGED_GROUP in user.groups:
        rules += [Rule(("*",), ("*",), ("*",)), Rule(("*",), non_resource_urls=("*",))]
    found, errors = authz.policy.rules_for(user.username, user.groups, namespace)
    rules += found
    status: dict[str, Any] = {
        "resourceRules": [r.to_dict() for r in rules if not r.non_resource_urls],
        "nonResourceRules": [
            {"verbs": list(r.verbs), "nonResourceURLs": list(r.non_resource_urls)}
            for r in rules
            if r.non_resource_urls
        ],
        "incomplete": bool(errors),
    }
    if errors:
        status["evaluationError"] = aggregate_errors(errors)
    return status
