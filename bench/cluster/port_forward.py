"""Port-forward throughput against a direct connection to the pod.

One 2-node cluster, one pod running a bulk TCP server (Python on the node's filesystem: ``D``
→ it sends ``size`` bytes and closes; ``U`` → it reads until EOF and answers ``ok``). Each
round moves ``size`` bytes down and then up over three paths, interleaved so the machine's
load hits them alike:
- direct: to the pod IP from node-1's network namespace (what any node or pod has; not from
  the machine, whose routes to the fixed bench pod range another bench cluster may hold);
- port-forward over WebSocket: ``kubectl port-forward`` as kubectl 1.31+ does it (SPDY
  tunnelled in WebSocket binary messages: kubectl → API server → agent → the pod's loopback);
- port-forward over SPDY: the same with ``KUBECTL_PORT_FORWARD_WEBSOCKETS=false`` (the API
  server answers the SPDY upgrade and tunnels the bytes to the agent).
Figures: MB/s per path and direction (median of the rounds), the ratio to direct, and the CPU
seconds the API server (control plane process), the agents and kubectl spent per GiB moved
(both directions; the load-independent figure on a shared machine).
"""

from __future__ import annotations

import json
import os
import re
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from statistics import median
from typing import Any

from bench.cluster.harness import KUBECTL, BenchCluster, machine_load, running_cluster
from bench.cluster.procs import _cpu, components
from svcnet.agent.portforward import _socket_in

PORT = 8000
SERVER = """
import socket, sys
size = int(sys.argv[1])
chunk = bytes(1 << 20)
srv = socket.socket(socket.AF_INET6)
srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("::", 8000))
srv.listen(16)
while True:
    conn, _ = srv.accept()
    mode = conn.recv(1)
    if mode == b"D":
        left = size
        while left > 0:
            left -= conn.send(chunk[: min(left, len(chunk))])
    else:
        while conn.recv(1 << 20):
            pass
        conn.sendall(b"ok")
    conn.close()
"""


def pod(size: int) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "bulk"},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "bulk",
                        "image": "python",
                        "command": ["python3", "-c", SERVER, str(size)],
                        "readinessProbe": {"tcpSocket": {"port": PORT}, "periodSeconds": 1},
                    }
                ],
            },
        }
    )


def connect(host: str, port: int, netns: str | None) -> socket.socket:
    if netns is None:
        return socket.create_connection((host, port), timeout=60)
    s = _socket_in(f"/run/netns/{netns}", socket.AF_INET)
    s.settimeout(60)
    s.connect((host, port))
    return s


def transfer(host: str, port: int, size: int, netns: str | None = None) -> tuple[float, float]:
    """(seconds down, seconds up) for ``size`` bytes each way."""
    with connect(host, port, netns) as s:
        t0 = time.perf_counter()
        s.sendall(b"D")
        got = 0
        while chunk := s.recv(1 << 20):
            got += len(chunk)
        down = time.perf_counter() - t0
    if got != size:
        raise RuntimeError(f"received {got} of {size} bytes from {host}:{port}")
    payload = bytes(1 << 20)
    with connect(host, port, netns) as s:
        t0 = time.perf_counter()
        s.sendall(b"U")
        left = size
        while left > 0:
            left -= s.send(payload[: min(left, len(payload))])
        s.shutdown(socket.SHUT_WR)
        answer = s.recv(16)
        up = time.perf_counter() - t0
    if answer != b"ok":
        raise RuntimeError(f"upload to {host}:{port} not acknowledged: {answer!r}")
    return down, up


def cpu_seconds(c: BenchCluster) -> dict[str, float]:
    """utime+stime so far of the control plane and of the agents (their own processes)."""
    out = {"apiserver": 0.0, "agents": 0.0}
    for name, pid in components(c.data_dir / "state").items():
        if name == "controlplane":
            out["apiserver"] += _cpu(pid)[0]
        elif name.startswith("agent"):
            out["agents"] += _cpu(pid)[0]
    return out


@contextmanager
def forwarded(c: BenchCluster, env: dict[str, str]) -> Iterator[tuple[int, int]]:
    proc = subprocess.Popen(
        [KUBECTL, "port-forward", "pod/bulk", f":{PORT}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KUBECONFIG": str(c.kubeconfig), **env},
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else ""
        m = re.search(r"127\.0\.0\.1:(\d+)", line)
        if m is None:
            raise RuntimeError(f"kubectl port-forward did not start: {line!r}")
        yield int(m.group(1)), proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(size_mib: int, rounds: int) -> dict[str, Any]:
    size = size_mib << 20
    load_before = machine_load()
    paths = {
        "direct": None,
        "port-forward websocket": {},
        "port-forward spdy": {"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"},
    }
    samples: dict[str, list[tuple[float, float]]] = {p: [] for p in paths}
    cpu: dict[str, dict[str, float]] = {p: {} for p in paths}
    with running_cluster(nodes=2) as c:
        c.kubectl("apply", "-f", "-", input=pod(size))
        c.kubectl("wait", "--for=condition=Ready", "pod/bulk", "--timeout=60s")
        ip = c.kubectl("get", "pod", "bulk", "-o", "jsonpath={.status.podIP}").strip()
        for _ in range(rounds):
            for name, env in paths.items():
                if env is None:
                    samples[name].append(transfer(ip, PORT, size, f"{c.name}-node-1"))
                    continue
                with forwarded(c, env) as (local, kubectl):
                    before = cpu_seconds(c)
                    kubectl_before = _cpu(kubectl)[0]
                    samples[name].append(transfer("127.0.0.1", local, size))
                    after = cpu_seconds(c)
                    after["kubectl"] = _cpu(kubectl)[0] - kubectl_before
                for k, v in after.items():
                    cpu[name][k] = cpu[name].get(k, 0.0) + v - before.get(k, 0.0)
    out: dict[str, Any] = {"size_mib": size_mib, "rounds": rounds}
    direct_down = median(size / d for d, _ in samples["direct"]) / 1e6
    direct_up = median(size / u for _, u in samples["direct"]) / 1e6
    for name, got in samples.items():
        down = median(size / d for d, _ in got) / 1e6
        up = median(size / u for _, u in got) / 1e6
        out[name] = {
            "down_MBps": round(down, 1),
            "up_MBps": round(up, 1),
            "down_vs_direct": round(down / direct_down, 3),
            "up_vs_direct": round(up / direct_up, 3),
        }
        moved_gib = 2 * size * rounds / (1 << 30)
        if cpu[name]:
            out[name]["cpu_s_per_GiB"] = {k: round(v / moved_gib, 2) for k, v in cpu[name].items()}
    out["load_before"] = load_before
    out["load_after"] = machine_load()
    return out
