"""A gRPC backend for the ingress e2e tests: ``/svcnet.Echo/Say`` answers the request's bytes
prefixed with its Service's name (the SERVICE environment variable). Raw bytes, no protobuf:
a generic handler is all gRPC needs. Served in cleartext HTTP/2 (h2c), as GRPCRoute
backends are."""

from __future__ import annotations

import os
import sys
from concurrent import futures
from typing import Any

import grpc


def say(request: bytes, context: Any) -> bytes:
    return os.environ.get("SERVICE", "").encode() + b": " + request


if __name__ == "__main__":
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.method_handlers_generic_handler(
        "svcnet.Echo", {"Say": grpc.unary_unary_rpc_method_handler(say)}
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"0.0.0.0:{sys.argv[1]}")
    server.start()
    server.wait_for_termination()
