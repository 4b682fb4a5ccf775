"""Bearer-token authentication.

Every request must carry ``Authorization: Bearer <token>``; anything else is answered with a
401 ``Status`` (kubectl then prints "You must be logged in to the server (Unauthorized)").
The health endpoints stay open, as upstream makes them readable by everyone through the
``system:public-info-viewer`` role.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from svcnet.api.errors import Unauthorized
from svcnet.apiserver.response import Response
from svcnet.apiserver.status import error_response

PUBLIC_PATHS: frozenset[str] = frozenset({"/healthz", "/livez", "/readyz", "/version"})


def _public(path: str) -> bool:
    if path in PUBLIC_PATHS:
        return True
    # /healthz/ping, /livez/etcd, /readyz/... are the individual checks of the same endpoints.
    return path.startswith(("/healthz/", "/livez/", "/readyz/"))


def bearer_token_check(token: str) -> Callable[[str, str], Response | None]:
    """A function of (path, Authorization header) answering the 401 a request gets, or None
    when it may go on."""
    expected = f"Bearer {token}".encode()

    def check(path: str, authorization: str) -> Response | None:
        if _public(path):
            return None
        # Headers are latin-1 text; compare their bytes (compare_digest takes ASCII str only).
        if not hmac.compare_digest(authorization.strip().encode("latin-1"), expected):
            return error_response(Unauthorized())
        return None

    return check
