"""Impersonation (``kubectl --as``/``--as-group``): upstream's ``filters.WithImpersonation``.

``Impersonate-User``, ``Impersonate-Group`` (repeated), ``Impersonate-Uid`` and
``Impersonate-Extra-<key>`` headers make the request act as another user, when the requester
may ``impersonate`` each of them: ``users`` (or the ServiceAccount, for a
``system:serviceaccount:NS:NAME`` user), ``groups``, ``authentication.k8s.io`` ``uids`` and
``userextras/<key>``. The impersonated user gets ``system:authenticated`` unless a group says
otherwise, and a ServiceAccount its fixed groups when none are given.
"""

from __future__ import annotations

from collections.abc import Iterable

from multidict import CIMultiDictProxy, MultiMapping

from svcnet.api.errors import BadRequest
from svcnet.apiserver.rbac.authorizer import RbacAuthorizer, denial
from svcnet.apiserver.rbac.rules import Attributes
from svcnet.apiserver.satoken import (
    ALL_SERVICE_ACCOUNTS_GROUP,
    AUTHENTICATED_GROUP,
    SERVICE_ACCOUNT_PREFIX,
    UserInfo,
)

USER_HEADER = "Impersonate-User"
GROUP_HEADER = "Impersonate-Group"
UID_HEADER = "Impersonate-Uid"
EXTRA_PREFIX = "Impersonate-Extra-"
ANONYMOUS = "system:anonymous"
UNAUTHENTICATED_GROUP = "system:unauthenticated"
AUTHENTICATION_GROUP = "authentication.k8s.io"


def wants_impersonation(headers: MultiMapping[str] | CIMultiDictProxy[str]) -> bool:
    # Membership tests of a case-insensitive dict: this runs on every request. (Extra
    # headers alone, without a user, are ignored rather than refused with upstream's 400.)
    return USER_HEADER in headers or GROUP_HEADER in headers or UID_HEADER in headers


def _checks(
    user: UserInfo, target: str, groups: Iterable[str], uid: str, extra: dict[str, list[str]]
) -> list[Attributes]:
    def attrs(resource: str, name: str, ns: str = "", group: str = "") -> Attributes:
        return Attributes(
            user.username, user.groups, "impersonate", True, group, "", resource, "", ns, name
        )

    out: list[Attributes] = []
    if target.startswith(SERVICE_ACCOUNT_PREFIX) and target.count(":") == 3:
        _, _, ns, name = target.split(":")
        out.append(attrs("serviceaccounts", name, ns))
    else:
        out.append(attrs("users", target))
    out.extend(attrs("groups", g) for g in groups)
    if uid:
        out.append(attrs("uids", uid, group=AUTHENTICATION_GROUP))
    for key, values in extra.items():
        out.extend(attrs(f"userextras/{key}", v, group=AUTHENTICATION_GROUP) for v in values)
    return out


async def impersonate(
    user: UserInfo, headers: MultiMapping[str] | CIMultiDictProxy[str], authz: RbacAuthorizer
) -> UserInfo:
    """The user the request acts as; raises the 403 (or 400) upstream answers."""
    target = headers.get(USER_HEADER, "")
    groups = [g for g in headers.getall(GROUP_HEADER, [])]
    uid = headers.get(UID_HEADER, "")
    extra: dict[str, list[str]] = {}
    for k, v in headers.items():
        if k.lower().startswith(EXTRA_PREFIX.lower()):
            extra.setdefault(k[len(EXTRA_PREFIX) :].lower(), []).append(v)
    if not target:
        raise BadRequest(
            "requested impersonation of groups, uid or extra without impersonating a user"
        )
    await authz.refresh()
    for a in _checks(user, target, groups, uid, extra):
        decision = authz.decide(a)
        if not decision.allowed:
            raise denial(a, decision.reason)
    if target.startswith(SERVICE_ACCOUNT_PREFIX) and target.count(":") == 3 and not groups:
        ns = target.split(":")[2]
        groups = [ALL_SERVICE_ACCOUNTS_GROUP, f"{ALL_SERVICE_ACCOUNTS_GROUP}:{ns}"]
    if target == ANONYMOUS:
        if UNAUTHENTICATED_GROUP not in groups:
            groups.append(UNAUTHENTICATED_GROUP)
    elif AUTHENTICATED_GROUP not in groups and UNAUTHENTICATED_GROUP not in groups:
        groups.append(AUTHENTICATED_GROUP)
    return UserInfo(
        target,
        uid,
        tuple(groups),
        {k: tuple(v) for k, v in extra.items()} or None,
    )
