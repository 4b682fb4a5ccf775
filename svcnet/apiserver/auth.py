"""Bearer-token authentication: the admin token and service-account tokens.

Every request must carry ``Authorization: Bearer <token>``; anything else is answered with a
401 ``Status`` (kubectl then prints "You must be logged in to the server (Unauthorized)").
Upstream's authenticator union, in the order it tries them:

* the static admin token of the data dir (the admin kubeconfig's user, group
  ``system:masters``, as kubeadm's ``kubernetes-admin``);
* a service-account JWT (:mod:`satoken`): signature, issuer, audience and times, then the
  ServiceAccount and the bound Pod or Secret looked up in the store, as
  ``--service-account-lookup`` (on by default) does. It authenticates as
  ``system:serviceaccount:NS:NAME`` with groups ``system:serviceaccounts``,
  ``system:serviceaccounts:NS`` and ``system:authenticated``.

Every failure gets the same 401 body, whatever the reason (upstream never says why); the
reason is logged. The health endpoints stay open, as upstream makes them readable by
everyone through the ``system:public-info-viewer`` role: there a request without a valid
token is ``system:anonymous``.

There is no authorizer yet: every authenticated identity may do everything.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from svcnet.api.errors import Unauthorized
from svcnet.apiserver.response import Response
from svcnet.apiserver.satoken import (
    AUTHENTICATED_GROUP,
    InvalidToken,
    TokenKeys,
    UserInfo,
    check_bound_objects,
    user_info,
)
from svcnet.apiserver.status import error_response

log = logging.getLogger(__name__)

PUBLIC_PATHS: frozenset[str] = frozenset({"/healthz", "/livez", "/readyz", "/version"})

ADMIN_USER = UserInfo("svcnet-admin", groups=("system:masters", AUTHENTICATED_GROUP))
ANONYMOUS_USER = UserInfo("system:anonymous", groups=("system:unauthenticated",))

# What authenticating a request gives: who it is, or the 401 to answer.
Authenticate = Callable[[str, str], Awaitable[UserInfo | Response]]


def _public(path: str) -> bool:
    if path in PUBLIC_PATHS:
        return True
    # /healthz/ping, /livez/etcd, /readyz/... are the individual checks of the same endpoints.
    return path.startswith(("/healthz/", "/livez/", "/readyz/"))


class BoundObjects(Protocol):
    """Current state of what a service-account token names (the API server's store)."""

    async def service_account(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def pod(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def node(self, name: str) -> dict[str, Any] | None: ...


class Authenticator:
    def __init__(
        self,
        admin_token: str,
        keys: TokenKeys | None = None,
        objects: BoundObjects | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._admin = f"Bearer {admin_token}".encode()
        self.keys = keys
        self.objects = objects
        self._now = now

    async def authenticate(self, path: str, authorization: str) -> UserInfo | Response:
        """The user of a request (path, Authorization header), or the 401 it gets."""
        # Headers are latin-1 text; compare their bytes (compare_digest takes ASCII str only).
        header = authorization.strip().encode("latin-1")
        if hmac.compare_digest(header, self._admin):
            return ADMIN_USER
        user = await self._service_account(authorization.strip())
        if user is not None:
            return user
        if _public(path):
            return ANONYMOUS_USER
        return error_response(Unauthorized())

    async def _service_account(self, header: str) -> UserInfo | None:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or self.keys is None or token.count(".") != 2:
            return None
        now = self._now()
        try:
            claims = self.keys.verify(token, now)
            if self.objects is not None:
                ns = claims.namespace
                sa = await self.objects.service_account(ns, claims.service_account.name)
                pod = None if claims.pod is None else await self.objects.pod(ns, claims.pod.name)
                secret = (
                    None
                    if claims.secret is None
                    else await self.objects.secret(ns, claims.secret.name)
                )
                node = (
                    await self.objects.node(claims.node.name)
                    if claims.node is not None and claims.pod is None
                    else None
                )
                check_bound_objects(claims, sa, pod, secret, now, node)
        except InvalidToken as exc:
            log.info("service account token rejected: %s", exc)
            return None
        return user_info(claims)


SELF_SUBJECT_REVIEW_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


def self_subject_review(user: UserInfo, created: str) -> dict[str, Any]:
    """The SelfSubjectReview a POST of one answers (``kubectl auth whoami``): the requester's
    own attributes, as the authenticator found them."""
    info: dict[str, Any] = {"username": user.username}
    if user.uid:
        info["uid"] = user.uid
    if user.groups:
        info["groups"] = list(user.groups)
    if user.extra:
        info["extra"] = {k: list(v) for k, v in user.extra.items()}
    return {
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": created},
        "status": {"userInfo": info},
    }
