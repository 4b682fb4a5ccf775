"""The Kubernetes API server: REST over the revisioned store (see server.py for the entry)."""

from __future__ import annotations

from svcnet.apiserver.server import ApiServer, ApiServerConfig, run_apiserver

__all__ = ["ApiServer", "ApiServerConfig", "run_apiserver"]
