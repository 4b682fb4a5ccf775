"""A backend for the ingress e2e tests: answers every path with JSON naming its Service (the
SERVICE environment variable), its pod, the path and the request headers. Stdlib only."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import ssl
import sys

SEEN: list[str] = []  # the paths this server answered: /__seen shows them (mirror tests)


class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path != "/__seen":
            SEEN.append(self.path)
        body = json.dumps(
            {
                "service": os.environ.get("SERVICE", ""),
                "pod": socket.gethostname(),
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                **({"seen": list(SEEN)} if self.path == "/__seen" else {}),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    # Stop at SIGTERM, in-flight requests and all, as many servers do (and as PID 1 of its
    # namespace it would otherwise ignore SIGTERM and serve until SIGKILL).
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server = http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Echo)
    if os.environ.get("TLS_PEM"):
        # TLS terminated here, not by the proxy (passthrough tests): certificate and key in
        # TLS_PEM, handed to OpenSSL through an anonymous in-memory file.
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        fd = os.memfd_create("tls.pem")
        os.write(fd, os.environ["TLS_PEM"].encode())
        ctx.load_cert_chain(f"/proc/self/fd/{fd}")
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()
