"""One benchmark cluster: ``svcnet up`` with unique names and ranges, ``svcnet down`` always.

Every run gets its own name (``bc`` + 3 hex digits, also the prefix of its links and
namespaces), API port, data dir and kubeconfig, and ranges that no route of the machine
touches when it starts (underlay a /24 of 172.25.0.0/16; pods and services a pair of /16s
from 10.130.0.0/16 up to 10.189.0.0/16, the pods' first), so it runs next to other clusters —
other benchmark runs and test clusters included. Leaving the context runs ``svcnet down`` and then checks that no
network namespace named after the cluster is left: a leak fails the run loudly.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from svcnet.client.kubeconfig import load_kubeconfig
from svcnet.client.rest import ApiClient
from svcnet.cluster.up import api_get, node_readiness

SVCNET = [sys.executable, "-m", "svcnet.cli.main"]
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@dataclass(frozen=True)
class BenchCluster:
    name: str
    nodes: int
    data_dir: Path
    kubeconfig: Path
    port: int
    underlay_cidr: str
    pod_cidr: str = ""
    service_cidr: str = ""
    up_seconds: float = 0.0  # wall time of `svcnet up` (it returns once every node is Ready)
    api_ready_seconds: float | None = None  # from our own poll of the API, independently

    @property
    def apiserver_kubeconfig(self) -> Path:
        return self.data_dir / "apiserver" / "kubeconfig"

    def api(self) -> ApiClient:
        cfg = load_kubeconfig(self.apiserver_kubeconfig)
        return ApiClient(replace(cfg, server=f"https://127.0.0.1:{self.port}"))

    def kubectl(self, *args: str, input: str | None = None) -> str:
        res = subprocess.run(
            [KUBECTL, *args], capture_output=True, text=True, input=input, check=False,
            env={**os.environ, "KUBECONFIG": str(self.kubeconfig)}, timeout=120,
        )  # fmt: skip
        if res.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {res.stderr}")
        return res.stdout


def _free_port() -> int:
    for _ in range(50):
        port = 27000 + secrets.randbelow(2000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def _routed_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 destination routed in the machine's namespace (other clusters' included)."""
    res = subprocess.run(["ip", "-j", "route", "show", "table", "all"], capture_output=True,
                         text=True, check=False)  # fmt: skip
    out = []
    for r in json.loads(res.stdout or "[]"):
        dst = str(r.get("dst", ""))
        if dst and dst != "default" and ":" not in dst:
            out.append(ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False))
    return out


def _free_ranges() -> tuple[str, str, str]:
    """(underlay /24, pod /16, service /16) that overlap no route of the machine."""
    routed = _routed_networks()

    def free(cidr: str) -> bool:
        net = ipaddress.ip_network(cidr)
        return not any(net.overlaps(r) for r in routed)

    for _ in range(200):
        r = secrets.randbelow(250) + 1
        i = secrets.randbelow(30)
        underlay, pods, services = (
            f"172.25.{r}.0/24",
            f"10.{130 + 2 * i}.0.0/16",
            f"10.{131 + 2 * i}.0.0/16",
        )
        if free(underlay) and free(pods) and free(services):
            return underlay, pods, services
    raise RuntimeError("no free ranges for a benchmark cluster")


def _all_ready(kubeconfig: Path, nodes: int) -> bool:
    if not kubeconfig.exists():
        return False
    body = api_get(kubeconfig, "/api/v1/nodes", timeout=1.0)
    ready = node_readiness(body)
    return len(ready) == nodes and all(v == "True" for v in ready.values())


def leftover_netns(name: str) -> list[str]:
    names = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    return sorted(n for n in names if n.startswith(f"{name}-"))


@contextmanager
def running_cluster(
    nodes: int = 3, env: dict[str, str] | None = None, keep_logs: Path | None = None
) -> Iterator[BenchCluster]:
    """``keep_logs``: copy the cluster's logs there before ``svcnet down`` deletes them."""
    if os.geteuid() != 0:
        raise SystemExit("the cluster benchmarks need root (network namespaces)")
    underlay, pods, services = _free_ranges()
    name = "bc" + secrets.token_hex(2)[:3]
    base = Path(tempfile.mkdtemp(prefix=f"bench-cluster-{name}-"))
    c = BenchCluster(
        name=name, nodes=nodes, data_dir=base / "data", kubeconfig=base / "kubeconfig",
        port=_free_port(), underlay_cidr=underlay, pod_cidr=pods, service_cidr=services,
    )  # fmt: skip
    argv = [
        *SVCNET, "up", "--name", name, "--data-dir", str(c.data_dir), "--nodes", str(nodes),
        "--kubeconfig", str(c.kubeconfig), "--port", str(c.port),
        "--underlay-cidr", c.underlay_cidr, "--pod-cidr", pods, "--service-cidr", services,
        "--lb-cidr", underlay.replace(".0/24", ".240/28"),
    ]  # fmt: skip
    # Independently of `up` returning: poll the API (20 ms) for N Ready nodes.
    api_ready: list[float] = []
    stop = threading.Event()
    started = time.monotonic()

    def poll() -> None:
        while not stop.is_set():
            if _all_ready(c.apiserver_kubeconfig, nodes):
                api_ready.append(time.monotonic() - started)
                return
            time.sleep(0.02)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        res = subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=120,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
        up_seconds = time.monotonic() - started
        poller.join(timeout=5)
        stop.set()
        if res.returncode != 0:
            raise RuntimeError(f"svcnet up failed:\n{res.stdout}\n{res.stderr}")
        yield replace(
            c, up_seconds=up_seconds, api_ready_seconds=api_ready[0] if api_ready else None
        )
    finally:
        stop.set()
        if keep_logs is not None and (c.data_dir / "logs").is_dir():
            shutil.copytree(c.data_dir / "logs", keep_logs, dirs_exist_ok=True)
        subprocess.run(
            [*SVCNET, "down", "--name", name, "--data-dir", str(c.data_dir),
             "--kubeconfig", str(c.kubeconfig)],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        left = leftover_netns(name)
        shutil.rmtree(base, ignore_errors=True)
        if left:
            raise RuntimeError(f"svcnet down left namespaces behind: {left}")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) — p99 of 100 samples is the 99th smallest."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def machine_load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
