"""Service-account tokens: the claims, the JWT and its checks (pure, no I/O).

Upstream's ``pkg/serviceaccount`` (``claims.go``, ``jwt.go``): a TokenRequest becomes a JWS
signed with the API server's service-account key (RS256 over an RSA key, as kubeadm's
``sa.key``), whose payload merges the registered claims (``iss``, ``sub``, ``aud``, ``exp``,
``iat``, ``nbf``, ``jti``) with the private ``kubernetes.io`` claim naming the namespace, the
ServiceAccount and the object the token is bound to (Pod with its Node, or Secret). go-jose
marshals the merged claims through a Go map, so every object's keys come out sorted.

Verifying is two steps, as upstream's authenticator does: :meth:`TokenKeys.verify` checks the
signature, issuer, audience and times (go-jose's one-minute leeway); then
:func:`check_bound_objects` checks that the ServiceAccount and the bound Pod or Secret still
exist with the UIDs the token names (the caller looks them up). Any failure is an
:class:`InvalidToken`; the API answers all of them with the same 401.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# kubeadm's --service-account-issuer; --api-audiences defaults to the issuer.
DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
ALL_SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
AUTHENTICATED_GROUP = "system:authenticated"

# authentication/v1 SetDefaults_TokenRequestSpec and ValidateTokenRequest.
DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 10 * 60
MAX_EXPIRATION_SECONDS = 1 << 32
# A pod-bound token requested for exactly 3607 s (what the ServiceAccount admission plugin
# writes into every pod's projected volume) is valid for a year and only warned about after
# 3607 s: --service-account-extend-token-expiration, on by default
# (token.WarnOnlyBoundTokenExpirationSeconds, token.ExpirationExtensionSeconds).
WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS = 60 * 60 + 7
EXPIRATION_EXTENSION_SECONDS = 24 * 365 * 60 * 60
# go-jose's jwt.DefaultLeeway: expiry and not-before are checked with a minute of slack.
LEEWAY_SECONDS = 60
# A pod or ServiceAccount being deleted keeps its tokens valid this long (upstream's
# invalidIfDeletedBefore: graceful termination still needs them).
DELETION_GRACE_SECONDS = 60

# Extra keys of the user a bound token authenticates as (serviceaccount.UserInfo).
POD_NAME_KEY = "authentication.kubernetes.io/pod-name"
POD_UID_KEY = "authentication.kubernetes.io/pod-uid"
NODE_NAME_KEY = "authentication.kubernetes.io/node-name"
NODE_UID_KEY = "authentication.kubernetes.io/node-uid"
CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id"


class InvalidToken(Exception):
    """The token does not authenticate; the message says why (logged, never sent)."""


@dataclass(frozen=True)
class Ref:
    name: str
    uid: str


@dataclass(frozen=True)
class Claims:
    issuer: str
    audiences: tuple[str, ...]
    issued_at: int
    not_before: int
    expiry: int
    jti: str
    namespace: str
    service_account: Ref
    pod: Ref | None = None
    node: Ref | None = None
    secret: Ref | None = None
    warn_after: int | None = None

    @property
    def subject(self) -> str:
        return service_account_username(self.namespace, self.service_account.name)


@dataclass(frozen=True)
class UserInfo:
    """Who a request is (upstream's ``user.Info``)."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] | None = None


def service_account_username(namespace: str, name: str) -> str:
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def make_claims(
    *,
    issuer: str,
    namespace: str,
    service_account: Ref,
    audiences: tuple[str, ...],
    expiration_seconds: int,
    now: int,
    pod: Ref | None = None,
    node: Ref | None = None,
    secret: Ref | None = None,
    warn_after_seconds: int = 0,
    jti: str = "",
) -> Claims:
    """``token.Claims``: what a token issued at ``now`` for ``expiration_seconds`` says."""
    return Claims(
        issuer=issuer,
        audiences=audiences,
        issued_at=now,
        not_before=now,
        expiry=now + expiration_seconds,
        jti=jti or str(uuid.uuid4()),
        namespace=namespace,
        service_account=service_account,
        pod=pod,
        node=node,
        secret=secret,
        warn_after=now + warn_after_seconds if warn_after_seconds else None,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _ref_json(ref: Ref) -> dict[str, str]:
    return {"name": ref.name, "uid": ref.uid}


def claims_payload(c: Claims) -> dict[str, Any]:
    """The JSON payload, keys as go-jose's map marshalling orders them (sorted)."""
    kube: dict[str, Any] = {"namespace": c.namespace}
    if c.node is not None:
        kube["node"] = _ref_json(c.node)
    if c.pod is not None:
        kube["pod"] = _ref_json(c.pod)
    if c.secret is not None:
        kube["secret"] = _ref_json(c.secret)
    kube["serviceaccount"] = _ref_json(c.service_account)
    if c.warn_after is not None:
        kube["warnafter"] = c.warn_after
    return {
        "aud": list(c.audiences),
        "exp": c.expiry,
        "iat": c.issued_at,
        "iss": c.issuer,
        "jti": c.jti,
        "kubernetes.io": kube,
        "nbf": c.not_before,
        "sub": c.subject,
    }


def _ref_of(value: Any) -> Ref | None:
    if not isinstance(value, dict):
        return None
    return Ref(str(value.get("name") or ""), str(value.get("uid") or ""))


def _int_claim(payload: Mapping[str, Any], key: str) -> int:
    value = payload.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidToken(f"claim {key} missing or not a number")
    return int(value)


def parse_claims(payload: Mapping[str, Any]) -> Claims:
    kube = payload.get("kubernetes.io")
    if not isinstance(kube, dict):
        raise InvalidToken("not a bound service account token (no kubernetes.io claim)")
    sa = _ref_of(kube.get("serviceaccount"))
    namespace = str(kube.get("namespace") or "")
    if sa is None or not sa.name or not namespace:
        raise InvalidToken("service account token names no service account")
    aud = payload.get("aud")
    audiences = (aud,) if isinstance(aud, str) else tuple(str(a) for a in aud or ())
    claims = Claims(
        issuer=str(payload.get("iss") or ""),
        audiences=audiences,
        issued_at=_int_claim(payload, "iat"),
        not_before=_int_claim(payload, "nbf"),
        expiry=_int_claim(payload, "exp"),
        jti=str(payload.get("jti") or ""),
        namespace=namespace,
        service_account=sa,
        pod=_ref_of(kube.get("pod")),
        node=_ref_of(kube.get("node")),
        secret=_ref_of(kube.get("secret")),
        warn_after=int(kube["warnafter"]) if isinstance(kube.get("warnafter"), int) else None,
    )
    if claims.subject != payload.get("sub"):
        raise InvalidToken("sub claim does not match the kubernetes.io claim")
    return claims


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """Upstream's ``keyIDFromPublicKey``: base64url(SHA-256(DER of the PKIX public key))."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _b64(hashlib.sha256(der).digest())


class TokenKeys:
    """The service-account signing key: issues tokens and verifies them (RS256)."""

    def __init__(
        self,
        private_key: rsa.RSAPrivateKey,
        issuer: str = DEFAULT_ISSUER,
        api_audiences: tuple[str, ...] = (),
    ) -> None:
        self._private = private_key
        self._public = private_key.public_key()
        self.issuer = issuer
        self.api_audiences = api_audiences or (issuer,)
        self.kid = key_id(self._public)
        self._header = _b64(orjson.dumps({"alg": "RS256", "kid": self.kid}))

    def sign(self, claims: Claims) -> str:
        body = _b64(orjson.dumps(claims_payload(claims)))
        signing_input = f"{self._header}.{body}".encode()
        signature = self._private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{self._header}.{body}.{_b64(signature)}"

    def verify(self, token: str, now: float) -> Claims:
        """The claims of ``token`` when its signature, issuer, audience and times hold."""
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidToken("not a JWS in compact serialization")
        try:
            header = orjson.loads(_unb64(parts[0]))
            signature = _unb64(parts[2])
        except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
            raise InvalidToken(f"malformed token: {exc}") from None
        if not isinstance(header, dict) or header.get("alg") != "RS256":
            raise InvalidToken("unsupported signing algorithm")
        try:
            self._public.verify(
                signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            raise InvalidToken("invalid signature") from None
        try:
            payload = orjson.loads(_unb64(parts[1]))
        except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
            raise InvalidToken(f"malformed payload: {exc}") from None
        if not isinstance(payload, dict):
            raise InvalidToken("malformed payload")
        if payload.get("iss") != self.issuer:
            raise InvalidToken("token issuer is not recognized")
        claims = parse_claims(payload)
        if not set(claims.audiences) & set(self.api_audiences):
            raise InvalidToken(
                f"token audiences {list(claims.audiences)} is invalid for the target "
                f"audiences {list(self.api_audiences)}"
            )
        check_times(claims, now)
        return claims


def check_times(claims: Claims, now: float) -> None:
    """go-jose's ``Claims.ValidateWithLeeway`` with the default minute of leeway."""
    if now > claims.expiry + LEEWAY_SECONDS:
        raise InvalidToken("service account token has expired")
    if now + LEEWAY_SECONDS < claims.not_before:
        raise InvalidToken("service account token is not valid yet")
    if now + LEEWAY_SECONDS < claims.issued_at:
        raise InvalidToken("service account token is issued in the future")


def _deleted_before(obj: Mapping[str, Any], now: float) -> bool:
    stamp = (obj.get("metadata") or {}).get("deletionTimestamp")
    if not stamp:
        return False
    when = datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    return when < now - DELETION_GRACE_SECONDS


def _uid(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def check_bound_objects(
    claims: Claims,
    service_account: Mapping[str, Any] | None,
    pod: Mapping[str, Any] | None,
    secret: Mapping[str, Any] | None,
    now: float,
    node: Mapping[str, Any] | None = None,
) -> None:
    """Upstream's ``validator.Validate``: the objects the token names, looked up now, must
    be the very ones it was issued for (same UID) and not deleted more than a minute ago."""
    sa, ns = claims.service_account, claims.namespace
    if service_account is None:
        raise InvalidToken(f'serviceaccounts "{sa.name}" not found')
    if _uid(service_account) != sa.uid:
        raise InvalidToken(
            f"service account UID ({_uid(service_account)}) does not match claim ({sa.uid})"
        )
    if _deleted_before(service_account, now):
        raise InvalidToken(f"service account {ns}/{sa.name} has been deleted")
    if claims.secret is not None:
        _check_bound("secret", claims.secret, secret, ns, now)
    if claims.pod is not None:
        _check_bound("pod", claims.pod, pod, ns, now)
    elif claims.node is not None:
        # Bound to the Node alone (ServiceAccountTokenNodeBinding, beta and on in 1.32); a
        # pod-bound token only carries its node's name for information.
        _check_bound("node", claims.node, node, ns, now)


def _check_bound(kind: str, ref: Ref, obj: Mapping[str, Any] | None, ns: str, now: float) -> None:
    if obj is None:
        raise InvalidToken(f'{kind}s "{ref.name}" not found')
    if _uid(obj) != ref.uid:
        raise InvalidToken(f"{kind} UID ({_uid(obj)}) does not match claim ({ref.uid})")
    if _deleted_before(obj, now):
        raise InvalidToken(f"{kind} {ns}/{ref.name} has been deleted")


def user_info(claims: Claims) -> UserInfo:
    """``serviceaccount.ServiceAccountInfo.UserInfo`` plus the group every authenticated
    request gets (the authenticator union adds ``system:authenticated``)."""
    extra: dict[str, tuple[str, ...]] = {}
    if claims.pod is not None:
        extra[POD_NAME_KEY] = (claims.pod.name,)
        extra[POD_UID_KEY] = (claims.pod.uid,)
    if claims.node is not None:
        extra[NODE_NAME_KEY] = (claims.node.name,)
        if claims.node.uid:
            extra[NODE_UID_KEY] = (claims.node.uid,)
    if claims.jti:
        extra[CREDENTIAL_ID_KEY] = (f"JTI={claims.jti}",)
    return UserInfo(
        username=claims.subject,
        uid=claims.service_account.uid,
        groups=(
            ALL_SERVICE_ACCOUNTS_GROUP,
            f"{ALL_SERVICE_ACCOUNTS_GROUP}:{claims.namespace}",
            AUTHENTICATED_GROUP,
        ),
        extra=extra,
    )


def generate_signing_key() -> rsa.RSAPrivateKey:
    # kubeadm's sa.key: RSA 2048.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def load_signing_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("service account key: not an RSA private key")
    return key


def signing_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
