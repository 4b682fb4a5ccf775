"""Bearer-token authentication.

Every request must carry ``Authorization: Bearer <token>``; anything else is answered with a
401 ``Status`` (kubectl then prints "You must be logged in to the server (Unauthorized)").
The health endpoints stay open, as upstream makes them readable by everyone through the
``system:public-info-viewer`` role.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
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


def bearer_token_check(token: str) -> Callable[[web.Request], web.Response | None]:
    """A function answering the 401 a request gets, or None when it may go on.

    The API server runs it in its one middleware (``status.status_middleware_with``): every
    middleware layer costs each request a few microseconds."""
    expected = f"Bearer {token}".encode()

    def check(request: web.Request) -> web.Response | None:
        if _public(request.path):
            return None
        given = request.headers.get("Authorization", "").strip().encode()
        if not hmac.compare_digest(given, expected):
            return error_response(Unauthorized())
        return None

    return check


def bearer_token_middleware(token: str) -> Any:
    """The check as an aiohttp middleware of its own (typed Any: aiohttp's middleware type is
    private)."""
    check = bearer_token_check(token)

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        denied = check(request)
        if denied is not None:
            return denied
        return await handler(request)

    return authenticate
