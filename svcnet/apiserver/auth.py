"""Bearer-token authentication.

Every request must carry ``Authorization: Bearer <token>``; anything else is answered with a
401 ``Status`` (kubectl then prints "You must be logged in to the server (Unauthorized)").
The health endpoints stay open, as upstream makes them readable by everyone through the
``system:public-info-viewer`` role.
"""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web

from svcnet.api.errors import Unauthorized
from svcnet.apiserver.status import Handler, error_response

PUBLIC_PATHS: frozenset[str] = frozenset({"/healthz", "/livez", "/readyz", "/version"})


def _public(path: str) -> bool:
    if path in PUBLIC_PATHS:
        return True
    # /healthz/ping, /livez/etcd, /readyz/... are the individual checks of the same endpoints.
    return path.startswith(("/healthz/", "/livez/", "/readyz/"))


def bearer_token_middleware(token: str) -> Any:
    """The aiohttp middleware (typed Any: aiohttp's middleware type is private)."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _public(request.path):
            return await handler(request)
        given = request.headers.get("Authorization", "").strip().encode()
        if not hmac.compare_digest(given, expected):
            return error_response(Unauthorized())
        return await handler(request)

    return authenticate
