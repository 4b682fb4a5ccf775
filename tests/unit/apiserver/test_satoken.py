"""Service-account tokens: signing, claims, verification, bound-object checks, the
TokenRequest subresource and the authenticator, against upstream's rules
(``pkg/serviceaccount``, ``TokenREST.Create``). Times are fixed epoch seconds."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from svcnet.api.errors import BadRequest, Conflict, Invalid, NotFound
from svcnet.apiserver import request as req
from svcnet.apiserver import satoken
from svcnet.apiserver.auth import ADMIN_USER, ANONYMOUS_USER, Authenticator
from svcnet.apiserver.response import Response
from svcnet.apiserver.satoken import InvalidToken, Ref, TokenKeys, UserInfo
from svcnet.apiserver.tokenrequest import create_token

NOW = 1_800_000_000
NS = "team"
SA = {"metadata": {"name": "default", "namespace": NS, "uid": "sa-uid"}}
POD = {
    "metadata": {"name": "web", "namespace": NS, "uid": "pod-uid"},
    "spec": {"serviceAccountName": "default", "nodeName": "node-1"},
}
NODE = {"metadata": {"name": "node-1", "uid": "node-uid"}}
SECRET = {"metadata": {"name": "s", "namespace": NS, "uid": "secret-uid"}}


@pytest.fixture(scope="module")
def keys() -> TokenKeys:
    return TokenKeys(satoken.generate_signing_key())


def payload(token: str) -> Any:
    body = token.split(".")[1]
    return orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def claims(**kw: Any) -> satoken.Claims:
    args: dict[str, Any] = {
        "issuer": satoken.DEFAULT_ISSUER,
        "namespace": NS,
        "service_account": Ref("default", "sa-uid"),
        "audiences": (satoken.DEFAULT_ISSUER,),
        "expiration_seconds": 3600,
        "now": NOW,
        "jti": "id-1",
    }
    args.update(kw)
    return satoken.make_claims(**args)


# -- signing and claims ----------------------------------------------------------------------


def test_payload_has_upstreams_claims_with_sorted_keys(keys: TokenKeys) -> None:
    token = keys.sign(claims(pod=Ref("web", "pod-uid"), node=Ref("node-1", "node-uid")))
    assert payload(token) == {
        "aud": [satoken.DEFAULT_ISSUER],
        "exp": NOW + 3600,
        "iat": NOW,
        "iss": satoken.DEFAULT_ISSUER,
        "jti": "id-1",
        "kubernetes.io": {
            "namespace": NS,
            "node": {"name": "node-1", "uid": "node-uid"},
            "pod": {"name": "web", "uid": "pod-uid"},
            "serviceaccount": {"name": "default", "uid": "sa-uid"},
        },
        "nbf": NOW,
        "sub": "system:serviceaccount:team:default",
    }
    assert list(payload(token)) == sorted(payload(token))


def test_header_names_rs256_and_the_key_id(keys: TokenKeys) -> None:
    head = keys.sign(claims()).split(".")[0]
    header = orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    assert header == {"alg": "RS256", "kid": keys.kid}
    assert "=" not in keys.kid and len(keys.kid) == 43  # base64url of a SHA-256, unpadded


def test_verify_round_trips_the_claims(keys: TokenKeys) -> None:
    c = claims(secret=Ref("s", "secret-uid"), warn_after_seconds=3607)
    assert keys.verify(keys.sign(c), NOW + 10) == c


@pytest.mark.parametrize(
    ("at", "why"),
    [
        (NOW + 3600 + 61, "service account token has expired"),
        (NOW - 61, "service account token is not valid yet"),
    ],
)
def test_times_are_checked_with_a_minute_of_leeway(keys: TokenKeys, at: int, why: str) -> None:
    token = keys.sign(claims())
    keys.verify(token, NOW + 3600 + 59)
    keys.verify(token, NOW - 59)
    with pytest.raises(InvalidToken, match=why):
        keys.verify(token, at)


def test_a_token_signed_by_another_key_is_refused(keys: TokenKeys) -> None:
    other = TokenKeys(satoken.generate_signing_key())
    with pytest.raises(InvalidToken, match="signature"):
        keys.verify(other.sign(claims()), NOW)


def test_a_tampered_payload_is_refused(keys: TokenKeys) -> None:
    head, body, sig = keys.sign(claims()).split(".")
    forged = dict(payload(f"{head}.{body}.{sig}"), sub="system:serviceaccount:kube-system:x")
    body = base64.urlsafe_b64encode(orjson.dumps(forged)).rstrip(b"=").decode()
    with pytest.raises(InvalidToken, match="signature"):
        keys.verify(f"{head}.{body}.{sig}", NOW)


def test_audience_must_meet_the_api_audiences(keys: TokenKeys) -> None:
    with pytest.raises(InvalidToken, match="audiences"):
        keys.verify(keys.sign(claims(audiences=("vault",))), NOW)


def test_issuer_must_be_ours(keys: TokenKeys) -> None:
    with pytest.raises(InvalidToken, match="issuer"):
        keys.verify(keys.sign(claims(issuer="https://elsewhere")), NOW)


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c", "!!.!!.!!"])
def test_garbage_is_refused(keys: TokenKeys, token: str) -> None:
    with pytest.raises(InvalidToken):
        keys.verify(token, NOW)


# -- bound objects -----------------------------------------------------------------------------


def _deleted(obj: dict[str, Any], stamp: str) -> dict[str, Any]:
    return {**obj, "metadata": {**obj["metadata"], "deletionTimestamp": stamp}}


POD_CLAIMS = claims(pod=Ref("web", "pod-uid"))


@pytest.mark.parametrize(
    ("sa", "pod", "why"),
    [
        (None, POD, 'serviceaccounts "default" not found'),
        ({"metadata": {"uid": "other"}}, POD, "service account UID"),
        (SA, None, 'pods "web" not found'),
        (SA, {"metadata": {"name": "web", "uid": "new"}}, r"pod UID \(new\)"),
        (SA, _deleted(POD, "2027-01-15T07:58:00Z"), "has been deleted"),
    ],
)
def test_bound_object_checks_refuse(
    sa: dict[str, Any] | None, pod: dict[str, Any] | None, why: str
) -> None:
    with pytest.raises(InvalidToken, match=why):
        satoken.check_bound_objects(POD_CLAIMS, sa, pod, None, NOW)


def test_a_pod_deleted_within_the_last_minute_still_authenticates() -> None:
    # NOW is 2027-01-15T08:00:00Z; deleted 30 s before.
    satoken.check_bound_objects(POD_CLAIMS, SA, _deleted(POD, "2027-01-15T07:59:30Z"), None, NOW)


def test_secret_bound_token_needs_its_secret() -> None:
    c = claims(secret=Ref("s", "secret-uid"))
    satoken.check_bound_objects(c, SA, None, SECRET, NOW)
    with pytest.raises(InvalidToken, match="secret"):
        satoken.check_bound_objects(c, SA, None, None, NOW)


def test_user_info_of_a_pod_bound_token() -> None:
    c = claims(pod=Ref("web", "pod-uid"), node=Ref("node-1", "node-uid"))
    assert satoken.user_info(c) == UserInfo(
        "system:serviceaccount:team:default",
        "sa-uid",
        ("system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated"),
        {
            satoken.POD_NAME_KEY: ("web",),
            satoken.POD_UID_KEY: ("pod-uid",),
            satoken.NODE_NAME_KEY: ("node-1",),
            satoken.NODE_UID_KEY: ("node-uid",),
            satoken.CREDENTIAL_ID_KEY: ("JTI=id-1",),
        },
    )


# -- TokenRequest ------------------------------------------------------------------------------


class Objects:
    """The objects a token names, by (kind, name)."""

    def __init__(self, *objs: tuple[str, dict[str, Any]]) -> None:
        self.objs = {(kind, o["metadata"]["name"]): o for kind, o in objs}

    async def service_account(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objs.get(("sa", name))

    async def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objs.get(("pod", name))

    async def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objs.get(("secret", name))

    async def node(self, name: str) -> dict[str, Any] | None:
        return self.objs.get(("node", name))


ALL = Objects(("sa", SA), ("pod", POD), ("node", NODE), ("secret", SECRET))


def _info(name: str = "default") -> req.RequestInfo:
    return req.RequestInfo("", "v1", "serviceaccounts", NS, name, "token", req.Verb.CREATE)


async def _request(keys: TokenKeys, spec: dict[str, Any], objects: Objects = ALL) -> Any:
    body = orjson.dumps(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    )
    answer = await create_token(keys, objects, _info(), body, "application/json", NOW)
    assert answer.status == 201
    return orjson.loads(answer.body)


async def test_token_request_defaults(keys: TokenKeys) -> None:
    out = await _request(keys, {})
    assert out["spec"] == {
        "audiences": [satoken.DEFAULT_ISSUER],
        "expirationSeconds": 3600,
        "boundObjectRef": None,
    }
    assert out["metadata"] == {
        "name": "default",
        "namespace": NS,
        "creationTimestamp": "2027-01-15T08:00:00Z",
    }
    assert out["status"]["expirationTimestamp"] == "2027-01-15T09:00:00Z"
    c = keys.verify(out["status"]["token"], NOW)
    assert (c.service_account, c.expiry, c.pod) == (Ref("default", "sa-uid"), NOW + 3600, None)


async def test_pod_bound_token_names_pod_and_node(keys: TokenKeys) -> None:
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "pod-uid"}
    out = await _request(keys, {"boundObjectRef": ref, "audiences": ["api"]})
    assert out["spec"]["boundObjectRef"] == ref
    c = satoken.parse_claims(payload(out["status"]["token"]))
    assert (c.pod, c.node, c.audiences) == (
        Ref("web", "pod-uid"),
        Ref("node-1", "node-uid"),
        ("api",),
    )


async def test_node_bound_token_names_the_node_alone(keys: TokenKeys) -> None:
    ref = {"kind": "Node", "apiVersion": "v1", "name": "node-1", "uid": "node-uid"}
    out = await _request(keys, {"boundObjectRef": ref, "expirationSeconds": 3607})
    c = keys.verify(out["status"]["token"], NOW)
    # No extension: that is for pod-bound tokens only.
    assert (c.node, c.pod, c.expiry) == (Ref("node-1", "node-uid"), None, NOW + 3607)
    satoken.check_bound_objects(c, SA, None, None, NOW, NODE)
    with pytest.raises(InvalidToken, match='nodes "node-1" not found'):
        satoken.check_bound_objects(c, SA, None, None, NOW, None)


async def test_the_kubelets_3607_seconds_are_extended_to_a_year_with_warnafter(
    keys: TokenKeys,
) -> None:
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "web"}
    out = await _request(keys, {"boundObjectRef": ref, "expirationSeconds": 3607})
    c = keys.verify(out["status"]["token"], NOW)
    assert c.expiry == NOW + satoken.EXPIRATION_EXTENSION_SECONDS
    assert c.warn_after == NOW + 3607
    # The status says what was asked for.
    assert out["status"]["expirationTimestamp"] == "2027-01-15T09:00:07Z"
    # Not pod-bound: no extension.
    plain = keys.verify((await _request(keys, {"expirationSeconds": 3607}))["status"]["token"], NOW)
    assert (plain.expiry, plain.warn_after) == (NOW + 3607, None)


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        (
            {"expirationSeconds": 599},
            Invalid,
            'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: '
            "Invalid value: 599: may not specify a duration less than 10 minutes",
        ),
        (
            {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "x"}},
            Conflict,
            'Operation cannot be fulfilled on Pod "web": the UID in the bound object reference '
            "(x) does not match the UID in record. The object might have been deleted and then "
            "recreated",
        ),
        (
            {"boundObjectRef": {"kind": "Deployment", "apiVersion": "apps/v1", "name": "d"}},
            BadRequest,
            "cannot bind token to object of type apps/v1, Kind=Deployment",
        ),
        (
            {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "gone"}},
            NotFound,
            'pods "gone" not found',
        ),
    ],
)
async def test_token_request_errors(
    keys: TokenKeys, spec: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        await _request(keys, spec)
    assert str(info.value) == message


async def test_pod_running_as_another_account_is_refused(keys: TokenKeys) -> None:
    other = {**POD, "spec": {"serviceAccountName": "builder"}}
    with pytest.raises(BadRequest, match='to pod running with serviceaccount "builder"'):
        await _request(
            keys,
            {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web"}},
            Objects(("sa", SA), ("pod", other)),
        )


async def test_missing_service_account_is_not_found(keys: TokenKeys) -> None:
    with pytest.raises(NotFound, match='serviceaccounts "default" not found'):
        await _request(keys, {}, Objects())


# -- the authenticator -------------------------------------------------------------------------


def _authenticator(keys: TokenKeys, objects: Objects, at: int = NOW) -> Authenticator:
    return Authenticator("admin-secret", keys, objects, lambda: float(at))


async def test_admin_token_is_the_admin(keys: TokenKeys) -> None:
    assert await _authenticator(keys, ALL).authenticate("/api", "Bearer admin-secret") == ADMIN_USER


async def test_service_account_token_authenticates(keys: TokenKeys) -> None:
    token = keys.sign(claims(pod=Ref("web", "pod-uid")))
    user = await _authenticator(keys, ALL).authenticate("/api/v1/pods", f"Bearer {token}")
    assert isinstance(user, UserInfo)
    assert user.username == "system:serviceaccount:team:default"
    assert "system:authenticated" in user.groups


@pytest.mark.parametrize(
    ("objects", "at"),
    [
        (Objects(("sa", SA)), NOW),  # the pod is gone
        (Objects(("pod", POD)), NOW),  # the ServiceAccount is gone
        (ALL, NOW + 3600 + 61),  # expired
    ],
)
async def test_rejected_tokens_get_upstreams_401(
    keys: TokenKeys, objects: Objects, at: int
) -> None:
    token = keys.sign(claims(pod=Ref("web", "pod-uid")))
    answer = await _authenticator(keys, objects, at).authenticate("/api", f"Bearer {token}")
    assert isinstance(answer, Response)
    assert answer.status == 401
    assert orjson.loads(answer.body) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


async def test_health_stays_open_to_anonymous(keys: TokenKeys) -> None:
    assert await _authenticator(keys, ALL).authenticate("/healthz", "") == ANONYMOUS_USER
