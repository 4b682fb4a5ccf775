"""``serviceaccounts/token``: a TokenRequest (authentication.k8s.io/v1) answered with a signed
service-account token, as upstream's ``TokenREST.Create``
(``pkg/registry/core/serviceaccount/storage/token.go``).

The request is validated (name and namespace must match the URL, ``expirationSeconds``
defaults to 3600 and must lie in [600, 2^32]), the ServiceAccount and the bound object (a Pod,
with the Node it runs on, a Node, or a Secret) are read, and the token is issued; nothing is stored.
:class:`StoreObjects` is also what the authenticator uses to check a token's bound objects.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from svcnet.api.errors import BadRequest, Conflict, FieldError, Invalid, NotFound, invalid
from svcnet.api.objects import Obj
from svcnet.api.registry import NODES, PODS, SECRETS, SERVICEACCOUNTS, ResourceType
from svcnet.apiserver import satoken
from svcnet.apiserver.auth import BoundObjects
from svcnet.apiserver.http1 import Request
from svcnet.apiserver.request import RequestInfo, decode_body
from svcnet.apiserver.response import Response, respond_object
from svcnet.apiserver.satoken import Ref, TokenKeys
from svcnet.apiserver.storage import ObjectStore
from svcnet.util.clock import rfc3339_at

GROUP = "authentication.k8s.io"
API_VERSION = f"{GROUP}/v1"
KIND = "TokenRequest"


class StoreObjects:
    """ServiceAccounts, Pods, Secrets and Nodes as the store has them now."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    async def service_account(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.objects.get(SERVICEACCOUNTS, namespace, name)

    async def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.objects.get(PODS, namespace, name)

    async def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.objects.get(SECRETS, namespace, name)

    async def node(self, name: str) -> dict[str, Any] | None:
        return await self.objects.get(NODES, None, name)


def _ref(obj: Obj) -> Ref:
    meta = obj.get("metadata") or {}
    return Ref(str(meta.get("name") or ""), str(meta.get("uid") or ""))


async def _must(found: dict[str, Any] | None, rt: ResourceType, name: str) -> dict[str, Any]:
    if found is None:
        raise NotFound.for_object(rt.plural, name, rt.group)
    return found


def validate_token_request(request: Obj, name: str, namespace: str) -> Obj:
    """The request with upstream's defaults (audiences are filled by the caller), or
    Invalid: ``ValidateTokenRequest`` and the URL/body agreement checks of ``TokenREST``."""
    meta = request.get("metadata") or {}
    if meta.get("name") and meta["name"] != name:
        raise Invalid(
            KIND,
            name,
            [
                invalid(
                    "metadata.name",
                    meta["name"],
                    "must match the service account name if specified",
                )
            ],
            GROUP,
        )
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise Invalid(
            KIND,
            name,
            [
                invalid(
                    "metadata.namespace",
                    meta["namespace"],
                    "must match the service account namespace if specified",
                )
            ],
            GROUP,
        )
    spec = dict(request.get("spec") or {})
    seconds = spec.get("expirationSeconds")
    if seconds is None:
        seconds = satoken.DEFAULT_EXPIRATION_SECONDS
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise BadRequest("spec.expirationSeconds: must be an integer")
    spec["expirationSeconds"] = seconds
    errors: list[FieldError] = []
    if seconds < satoken.MIN_EXPIRATION_SECONDS:
        errors.append(
            invalid(
                "spec.expirationSeconds", seconds, "may not specify a duration less than 10 minutes"
            )
        )
    if seconds > satoken.MAX_EXPIRATION_SECONDS:
        errors.append(
            invalid(
                "spec.expirationSeconds",
                seconds,
                "may not specify a duration larger than 2^32 seconds",
            )
        )
    if errors:
        raise Invalid(KIND, "", errors, GROUP)
    return spec


class TokenRequests:
    """What serves ``serviceaccounts/token``: the signing key, the store, the clock."""

    def __init__(
        self, keys: TokenKeys, objects: BoundObjects, now: Callable[[], float] = time.time
    ) -> None:
        self.keys = keys
        self.objects = objects
        self.now = now

    async def create(self, request: Request, info: RequestInfo) -> Response:
        return await create_token(
            self.keys, self.objects, info, request.body, request.content_type, self.now()
        )


async def create_token(
    keys: TokenKeys,
    objects: BoundObjects,
    info: RequestInfo,
    body: bytes,
    content_type: str,
    now: float,
) -> Response:
    """POST serviceaccounts/NAME/token at time ``now``."""
    namespace, name = info.namespace or "", info.name
    spec = validate_token_request(decode_body(body, content_type), name, namespace)
    sa = await _must(await objects.service_account(namespace, name), SERVICEACCOUNTS, name)
    audiences = tuple(str(a) for a in spec.get("audiences") or ()) or keys.api_audiences
    pod = node = secret = None
    bound = spec.get("boundObjectRef")
    if bound:
        pod, node, secret = await _bound_objects(objects, bound, name, namespace)
    seconds = int(spec["expirationSeconds"])
    # --service-account-extend-token-expiration: the kubelet's projected token (3607 s,
    # pod-bound, for the API server's own audiences) lives a year, warned about after 3607 s.
    warn_after, lifetime = 0, seconds
    if (
        pod is not None
        and seconds == satoken.WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS
        and set(audiences) <= set(keys.api_audiences)
    ):
        warn_after, lifetime = seconds, satoken.EXPIRATION_EXTENSION_SECONDS
    issued = int(now)
    claims = satoken.make_claims(
        issuer=keys.issuer,
        namespace=namespace,
        service_account=_ref(sa),
        audiences=audiences,
        expiration_seconds=lifetime,
        now=issued,
        pod=None if pod is None else _ref(pod),
        node=node,
        secret=None if secret is None else _ref(secret),
        warn_after_seconds=warn_after,
    )
    token = keys.sign(claims)
    out = {
        "kind": KIND,
        "apiVersion": API_VERSION,
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": rfc3339_at(now)},
        "spec": {
            "audiences": list(audiences),
            "expirationSeconds": seconds,
            "boundObjectRef": bound or None,
        },
        "status": {"token": token, "expirationTimestamp": rfc3339_at(issued + seconds)},
    }
    return respond_object(out, 201)


async def _bound_objects(
    objects: BoundObjects, ref: Obj, sa_name: str, namespace: str
) -> tuple[Obj | None, Ref | None, Obj | None]:
    """(pod, node, secret) of a ``boundObjectRef``, checked as ``TokenREST`` does: the
    node is the bound one, or the bound pod's."""
    api_version = str(ref.get("apiVersion") or "")
    kind = str(ref.get("kind") or "")
    ref_name = str(ref.get("name") or "")
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    pod = secret = None
    node: Ref | None = None
    if group == "" and kind == "Pod":
        pod = await _must(await objects.pod(namespace, ref_name), PODS, ref_name)
        spec = pod.get("spec") or {}
        running_as = str(spec.get("serviceAccountName") or "")
        if running_as != sa_name:
            raise BadRequest(
                f'cannot bind token for serviceaccount "{sa_name}" to pod running with '
                f'serviceaccount "{running_as}"'
            )
        uid = _ref(pod).uid
        node_name = str(spec.get("nodeName") or "")
        if node_name:
            # A missing node still leaves its name in the claims (upstream does the same).
            found = await objects.node(node_name)
            node = _ref(found) if found is not None else Ref(node_name, "")
    elif group == "" and kind == "Node":
        found_node = await _must(await objects.node(ref_name), NODES, ref_name)
        node = _ref(found_node)
        uid = node.uid
    elif group == "" and kind == "Secret":
        secret = await _must(await objects.secret(namespace, ref_name), SECRETS, ref_name)
        uid = _ref(secret).uid
    else:
        version = api_version.rpartition("/")[2]
        gvk = f"{group}/{version}, Kind={kind}" if group else f"/{version}, Kind={kind}"
        raise BadRequest(f"cannot bind token to object of type {gvk}")
    want = str(ref.get("uid") or "")
    if want and want != uid:
        raise Conflict.for_object(
            kind,
            ref_name,
            f"the UID in the bound object reference ({want}) does not match the UID in "
            "record. The object might have been deleted and then recreated",
        )
    return pod, node, secret
