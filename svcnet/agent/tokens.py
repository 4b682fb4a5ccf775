"""Service account tokens for projected volumes, as kubelet's token manager gets them.

A ``serviceAccountToken`` projection is a TokenRequest (``POST
/api/v1/namespaces/NS/serviceaccounts/SA/token``, ``authentication.k8s.io/v1``) bound to
the pod (``boundObjectRef``: kind Pod, name, uid), with the projection's audience (none:
the API server's own) and expirationSeconds. The answer's ``expirationTimestamp`` and the
granted ``expirationSeconds`` (the server may extend them) set when it is refreshed
(:func:`svcnet.runtime.volumes.plan.token_refresh_at`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from svcnet.api.errors import ApiError
from svcnet.client.rest import ConnectionFailed
from svcnet.runtime.volumes.plan import TokenKey, token_refresh_at


class TokenClient(Protocol):
    """The one call of :class:`svcnet.client.rest.ApiClient` a token needs."""

    async def request(self, method: str, path: str, *, body: Any = None) -> dict[str, Any]: ...


class TokenError(Exception):
    pass


@dataclass(frozen=True)
class Token:
    value: str
    issued: float  # epoch seconds
    expires: float

    @property
    def refresh_at(self) -> float:
        return token_refresh_at(self.issued, self.expires)


def token_request(key: TokenKey, pod_name: str, pod_uid: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "audiences": [key.audience] if key.audience else [],
        "expirationSeconds": key.expiration_seconds,
        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod_name, "uid": pod_uid},
    }
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


async def request_token(
    client: TokenClient, namespace: str, pod_name: str, pod_uid: str, key: TokenKey
) -> Token:
    """One TokenRequest; :class:`TokenError` carries kubelet's wording for the event."""
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{key.service_account}/token"
    try:
        answer = await client.request("POST", path, body=token_request(key, pod_name, pod_uid))
        status = answer.get("status") or {}
        expires = _epoch(str(status["expirationTimestamp"]))
        seconds = int((answer.get("spec") or {}).get("expirationSeconds") or key.expiration_seconds)
        return Token(str(status["token"]), expires - seconds, expires)
    except (KeyError, ValueError) as e:
        raise TokenError(f"failed to fetch token: malformed TokenRequest answer: {e}") from e
    except (ApiError, ConnectionFailed) as e:  # the API's message is what kubelet shows
        raise TokenError(f"failed to fetch token: {e}") from e
