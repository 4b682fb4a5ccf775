"""A real svcnet cluster for e2e tests: ``svcnet up`` / ``svcnet down`` with a leak check.

Usage from any e2e test module (tests/e2e is on sys.path, as pytest puts it there)::

    from cluster_fixture import Cluster, svcnet_cluster  # noqa: F401 - the fixture

    def test_x(svcnet_cluster: Cluster) -> None:
        svcnet_cluster.kubectl("get", "nodes")

Each cluster gets a unique name/prefix (``c`` + 5 hex digits), its own ranges and a free API
port, a temporary data dir and a temporary kubeconfig (never the user's), so it can run next
to a user's cluster and next to other tests. Ranges: underlay a /24 of 172.29.0.0/16, pods a
/16 of 10.160.0.0/12, services a /16 of 10.176.0.0/12, each drawn among the blocks that
overlap nothing the machine routes now nor svcnet's defaults (see free_ranges).

Teardown runs ``svcnet down`` and asserts that the namespaces, links, routes, nft tables,
/etc/netns entries and processes of the cluster are exactly as before ``up`` (none).
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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from free_ranges import CLUSTER, free_prefix, free_ranges, lb_pool

SVCNET = [sys.executable, "-m", "svcnet.cli.main"]
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@dataclass(frozen=True)
class Snapshot:
    netns: frozenset[str]
    links: frozenset[str]
    routes: frozenset[str]
    nft_tables: frozenset[str]
    etc_netns: frozenset[str]
    processes: frozenset[str]


@dataclass(frozen=True)
class Cluster:
    name: str
    nodes: int
    data_dir: Path
    kubeconfig: Path
    port: int
    underlay_cidr: str
    pod_cidr: str
    service_cidr: str
    up_seconds: float = 0.0

    @property
    def lb_cidr(self) -> str:
        return lb_pool(self.underlay_cidr)

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(
        self, *args: str, check: bool = True, timeout: float = 30, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            [KUBECTL, *args],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            input=input,
            check=False,
        )
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {res.stderr}")
        return res

    def svcnet(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            [*SVCNET, *args],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        if check and res.returncode != 0:
            raise AssertionError(f"svcnet {' '.join(args)}: {res.stdout}{res.stderr}")
        return res

    def cluster_args(self) -> list[str]:
        return ["--name", self.name, "--data-dir", str(self.data_dir)]

    def apply(self, manifest: str) -> None:
        self.kubectl("apply", "-f", "-", input=manifest)

    def get(self, *args: str) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.kubectl("get", *args, "-o", "json").stdout)
        return out

    def wait_for(self, what: str, predicate: Any, timeout: float = 20.0, *args: str) -> Any:
        """Poll ``kubectl get what -o json`` until ``predicate(obj)`` is truthy."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            res = self.kubectl("get", what, *args, "-o", "json", check=False)
            if res.returncode == 0:
                last = json.loads(res.stdout)
                if predicate(last):
                    return last
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting on {what}; last seen: {json.dumps(last)[:2000]}")


def pod_manifest(name: str, node: str, container: str, extra: str = "", pod_extra: str = "") -> str:
    """A Pod bound to ``node`` (spec.nodeName: no scheduler involved) with one container."""
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 2
{pod_extra}
  containers:
  - name: c
{container}
{extra}
"""


def ready(pod: dict[str, Any]) -> bool:
    """The Ready condition of a Pod or a Node is True."""
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def free_port() -> int:
    for _ in range(50):
        port = 20000 + secrets.randbelow(9000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def snapshot(name: str, nets: list[str], data_dir: Path) -> Snapshot:
    """What exists now that belongs to the cluster ``name`` (by prefix, range or data dir)."""
    networks = [ipaddress.ip_network(n) for n in nets]

    def run(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    netns = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    links = json.loads(run("ip", "-j", "link"))
    routes = json.loads(run("ip", "-j", "route"))
    tables = run("nft", "list", "tables")
    etc = os.listdir("/etc/netns") if os.path.isdir("/etc/netns") else []

    def route_ours(r: dict[str, Any]) -> bool:
        dst = str(r.get("dst", ""))
        if dst == "default":
            return False
        net = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
        return any(net.overlaps(n) for n in networks) or name in str(r.get("dev", ""))

    procs = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            # Container processes carry the node's bin dir (under the data dir) in PATH.
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(data_dir) in cmd or str(data_dir) in environ or f"{name}-node-" in cmd:
            procs.add(f"{pid} {cmd.strip()}")
    return Snapshot(
        netns=frozenset(n for n in netns if n.startswith(f"{name}-")),
        links=frozenset(str(lk["ifname"]) for lk in links if str(lk["ifname"]).startswith(name)),
        routes=frozenset(json.dumps(r, sort_keys=True) for r in routes if route_ours(r)),
        nft_tables=frozenset(t for t in tables.splitlines() if name in t),
        etc_netns=frozenset(n for n in etc if n.startswith(f"{name}-")),
        processes=frozenset(procs),
    )


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("e2e tests need root (network namespaces)")


@contextmanager
def new_cluster(base: Path, nodes: int) -> Iterator[Cluster]:
    """A cluster's name, data dir, kubeconfig, port and ranges, all free on the machine and
    held for this session until exit; nothing is started."""
    with free_ranges(CLUSTER) as ranges:
        yield Cluster(
            name=free_prefix("c", 5),
            nodes=nodes,
            data_dir=base / "data",
            kubeconfig=base / "kubeconfig",
            port=free_port(),
            underlay_cidr=ranges.underlay,
            pod_cidr=ranges.pods,
            service_cidr=ranges.services,
        )


# What `svcnet up` says when something took one of the cluster's ranges, names or its port
# after the draw (a process that draws without reservations): it refused, changing nothing.
LOST_A_RACE = ("is invalid: ", "File exists")
ATTEMPTS = 3


@contextmanager
def running_cluster(base: Path, nodes: int = 2) -> Iterator[Cluster]:
    """``svcnet up`` a fresh cluster; on exit ``svcnet down`` and check nothing is left."""
    require_root()
    for attempt in range(1, ATTEMPTS + 1):
        with new_cluster(base, nodes) as cluster:
            name = cluster.name
            nets = [cluster.underlay_cidr, cluster.pod_cidr, cluster.service_cidr]
            before = snapshot(name, nets, cluster.data_dir)
            started = time.monotonic()
            try:
                # A timed-out up may have started half a cluster: the down below removes it.
                res = cluster.svcnet(*up_args(cluster), check=False, timeout=120)
            except subprocess.TimeoutExpired as e:
                res = subprocess.CompletedProcess(e.cmd, 1, "", f"svcnet up timed out: {e}")
            down = ("down", *cluster.cluster_args(), "--kubeconfig", str(cluster.kubeconfig))
            if (
                res.returncode != 0
                and attempt < ATTEMPTS
                and any(s in res.stderr for s in LOST_A_RACE)
            ):
                # Another owner holds one of the ranges now, so the leak check by range would
                # count its routes: down removes what this attempt recorded it made, if any.
                cluster.svcnet(*down, check=False)
                continue
            cluster = Cluster(**{**cluster.__dict__, "up_seconds": time.monotonic() - started})
            try:
                assert res.returncode == 0, f"svcnet up failed:\n{res.stdout}\n{res.stderr}"
                yield cluster
            finally:
                cluster.svcnet(*down, check=False)
                after = snapshot(name, nets, cluster.data_dir)
                assert after == before, f"svcnet down left behind: {after}"
            return


def up_args(cluster: Cluster) -> list[str]:
    """``svcnet up`` with the cluster's own name, data dir, kubeconfig, port and ranges."""
    return [
        "up",
        *cluster.cluster_args(),
        "--nodes",
        str(cluster.nodes),
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--port",
        str(cluster.port),
        "--underlay-cidr",
        cluster.underlay_cidr,
        "--pod-cidr",
        cluster.pod_cidr,
        "--service-cidr",
        cluster.service_cidr,
        "--lb-cidr",
        cluster.lb_cidr,
    ]


@pytest.fixture(scope="module")
def svcnet_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A 2-node cluster shared by the tests of one module."""
    with running_cluster(tmp_path_factory.mktemp("svcnet-cluster"), nodes=2) as cluster:
        yield cluster
