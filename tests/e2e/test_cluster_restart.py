"""``svcnet down && svcnet up`` works at once, five times in a row.

Ranges, names and port: see cluster_fixture (a unique one-node cluster, never svcnet's
defaults nor port 6443). The API server closes a connection whose client asked for
``Connection: close`` after answering, so the server's side of it waits in TIME_WAIT for a
minute after ``down``; before every ``up`` the test makes sure such a connection exists on
the API port, the condition in which a preflight that binds without SO_REUSEADDR refused the
port as "in use" although nothing listened there.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cluster_fixture import ready, running_cluster, up_args

pytestmark = pytest.mark.e2e

RESTARTS = 5


def close_from_the_server(port: int) -> None:
    """One request that the server answers and then closes (it closes first)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw) as tls,
    ):
        tls.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while tls.recv(65536):
            pass


def time_wait_on(port: int) -> int:
    out = subprocess.run(
        ["ss", "-Htan", "state", "time-wait", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return len(out.splitlines())


def nodes_ready(nodes: dict[str, Any]) -> bool:
    items = nodes.get("items") or []
    return bool(items) and all(ready(n) for n in items)


def test_down_then_up_at_once_five_times(tmp_path: Path) -> None:
    with running_cluster(tmp_path, nodes=1) as c:
        for i in range(RESTARTS):
            close_from_the_server(c.port)
            c.svcnet("down", *c.cluster_args(), "--kubeconfig", str(c.kubeconfig))
            assert time_wait_on(c.port) > 0, "no TIME_WAIT connection left to test against"
            res = c.svcnet(*up_args(c), check=False, timeout=120)
            assert res.returncode == 0, f"restart {i + 1}: {res.stdout}{res.stderr}"
            nodes = json.loads(c.kubectl("get", "nodes", "-o", "json").stdout)
            assert nodes_ready(nodes), f"restart {i + 1}: {nodes}"
