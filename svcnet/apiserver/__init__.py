"""The Kubernetes API server: REST over the revisioned store (see server.py for the entry).

The package itself imports nothing heavy: the workers of :mod:`svcnet.apiserver.preparepool`
run ``python -m svcnet.apiserver.preparepool`` and need only the pure modules."""

from __future__ import annotations

from typing import Any

__all__ = ["ApiServer", "ApiServerConfig", "run_apiserver"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from svcnet.apiserver import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
