"""One machine, many nodes: what ``svcnet up`` builds and ``svcnet down`` removes.

``up``: preflight (root, commands, CNI plugins) → the underlay (bridge, node namespaces,
routes, guard table) → the cluster's spec for the supervisor (the control plane listening on
127.0.0.1 and on the underlay gateway, one agent per node started in its namespace with
``nsenter --net``) → the supervisor → wait until the API answers and every Node is Ready.
Everything starts at once: agents wait for the API server's kubeconfig and retry until it
answers, so start-up costs the slowest component, not the sum.

Each node's pod CIDR is the underlay's plan (node N gets the Nth /24 of the cluster CIDR) and
the agent registers its Node with it: the routes between nodes exist before any pod does,
and the node IPAM controller, which marks podCIDRs already set as taken, hands out blocks
only to nodes that join without one.

``down``: stop the supervisor (agents stop their pods' processes first), sweep the underlay
and every pod namespace by name, remove the cluster's files and its kubeconfig context.

``node stop``/``node start``: a flag file the agent honours across restarts plus a signal to
the running agent (SIGUSR1: stop the pods and idle; SIGUSR2: resume), so the supervisor
keeps its one process per node and never restarts a stopped node by mistake.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from svcnet.api.ranges import (
    DEFAULT_CLUSTER_CIDR,
    DEFAULT_LB_CIDR,
    DEFAULT_NODE_PORT_RANGE,
    DEFAULT_SERVICE_CIDR,
    DEFAULT_UNDERLAY_CIDR,
)
from svcnet.cluster.claims import Conflict, claim_conflicts, read_machine
from svcnet.cluster.supervisor import Component, read_status
from svcnet.cluster.underlay import NodeNet, UnderlayConfig, claim_of, node_net
from svcnet.dataplane.netns import NetnsOps
from svcnet.runtime.volumes.writer import unmount_under

# Next to the API server's kubeconfig, written by the control plane for the agents.
JSON_KUBECONFIG = "kubeconfig.json"

AGENT_PORT = 10250


@dataclass(frozen=True)
class ClusterConfig:
    name: str
    nodes: int
    data_dir: str
    port: int = 6443
    prefix: str = "svcnet"
    underlay_cidr: str = DEFAULT_UNDERLAY_CIDR
    pod_cidr: str = DEFAULT_CLUSTER_CIDR
    service_cidr: str = DEFAULT_SERVICE_CIDR
    lb_cidr: str = DEFAULT_LB_CIDR
    node_port_range: str = DEFAULT_NODE_PORT_RANGE

    @property
    def root(self) -> Path:
        return Path(self.data_dir)

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def underlay(self) -> UnderlayConfig:
        return UnderlayConfig(
            prefix=self.prefix,
            underlay_cidr=self.underlay_cidr,
            pod_cidr=self.pod_cidr,
            service_cidr=self.service_cidr,
            lb_cidr=self.lb_cidr,
            state_dir=str(self.state_dir),
        )

    @property
    def gateway(self) -> str:
        return self.underlay.gateway

    @property
    def cluster_dns(self) -> str:
        """kube-dns's ClusterIP: the 10th address of the service range, as kubeadm picks."""
        return str(ipaddress.ip_network(self.service_cidr).network_address + 10)

    @property
    def apiserver_kubeconfig(self) -> Path:
        return self.root / "apiserver" / "kubeconfig"

    @property
    def agent_kubeconfig(self) -> Path:
        """The same kubeconfig as JSON (see controlplane.write_json_kubeconfig): the agents
        read it without importing yaml."""
        return self.root / "apiserver" / JSON_KUBECONFIG

    @property
    def server_url(self) -> str:
        return f"https://{self.gateway}:{self.port}"

    def node_nets(self) -> list[NodeNet]:
        return [node_net(self.underlay, i) for i in range(1, self.nodes + 1)]

    def stop_flag(self, node: str) -> Path:
        return self.state_dir / "stopped" / node

    def node_dir(self, node: str) -> Path:
        return self.root / "nodes" / node

    def save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "cluster.json").write_text(json.dumps(asdict(self), indent=2))


def load_cluster(data_dir: str) -> ClusterConfig | None:
    try:
        data = json.loads((Path(data_dir) / "state" / "cluster.json").read_text())
    except (OSError, ValueError):
        return None
    return ClusterConfig(**data)


def agent_component_name(node: str) -> str:
    return f"agent-{node}"


def plan_components(cfg: ClusterConfig, python: str = sys.executable) -> list[Component]:
    """The supervisor's spec: the control plane first, then one agent per node."""
    logs = cfg.root / "logs"
    out = [
        Component(
            "controlplane",
            (
                python,
                "-m",
                "svcnet.cluster.controlplane",
                "--data-dir",
                str(cfg.root / "apiserver"),
                "--listen",
                "127.0.0.1",
                "--listen",
                cfg.gateway,
                "--advertise-address",
                cfg.gateway,
                "--port",
                str(cfg.port),
                "--service-cidr",
                cfg.service_cidr,
                "--node-port-range",
                cfg.node_port_range,
                "--cluster-cidr",
                cfg.pod_cidr,
                "--lb-cidr",
                cfg.lb_cidr,
            ),
            str(logs / "controlplane.log"),
        )
    ]
    for node in cfg.node_nets():
        out.append(
            Component(
                agent_component_name(node.name),
                (
                    *node.agent_argv_prefix(),
                    python,
                    "-m",
                    "svcnet.agent",
                    "--node-name",
                    node.name,
                    "--node-ip",
                    node.ip,
                    "--node-netns",
                    node.netns,
                    "--kubeconfig",
                    str(cfg.agent_kubeconfig),
                    "--server",
                    cfg.server_url,
                    "--data-dir",
                    str(cfg.node_dir(node.name)),
                    "--pod-cidr",
                    node.pod_cidr,
                    "--cluster-dns",
                    cfg.cluster_dns,
                    "--port",
                    str(AGENT_PORT),
                    "--stop-flag",
                    str(cfg.stop_flag(node.name)),
                ),
                str(logs / f"{node.name}.log"),
            )
        )
    return out


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether the API server could not listen on ``host:port``. The probe binds as the server
    does (asyncio sets SO_REUSEADDR), so connections of a server that just stopped, left in
    TIME_WAIT for a minute, do not count: only a socket that listens or is bound there."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def conflicts(cfg: ClusterConfig, ops: NetnsOps) -> list[Conflict]:
    """Why this cluster cannot start next to what already runs on the machine."""
    out = []
    if port_in_use(cfg.port):
        out.append(Conflict("--port", cfg.port, f"127.0.0.1:{cfg.port} is in use: pass --port"))
    claim = claim_of(cfg.underlay, cfg.node_nets())
    return out + claim_conflicts(claim, read_machine(ops))


# -- talking to the API from the CLI (stdlib only: the CLI stays quick to start) --------------
def _credentials(kubeconfig: Path) -> tuple[str, ssl.SSLContext, str] | None:
    try:
        cfg = yaml.safe_load(kubeconfig.read_text())
        cluster = cfg["clusters"][0]["cluster"]
        token = str(cfg["users"][0]["user"]["token"])
        ctx = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError, ssl.SSLError):
        return None
    return str(cluster["server"]), ctx, token


def api_get(kubeconfig: Path, path: str, timeout: float = 2.0) -> dict[str, Any] | None:
    creds = _credentials(kubeconfig)
    if creds is None:
        return None
    server, ctx, token = creds
    req = urllib.request.Request(server + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
            data = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ssl.SSLError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def api_lines(kubeconfig: Path, path: str, timeout: float | None = None) -> Iterator[bytes]:
    """The lines of a streamed answer (a followed log, a node's flows) as they come; raises
    ``OSError`` when the API server cannot be reached or refuses."""
    creds = _credentials(kubeconfig)
    if creds is None:
        raise OSError(f"cannot read credentials from {kubeconfig}")
    server, ctx, token = creds
    req = urllib.request.Request(server + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
        yield from resp


def node_readiness(nodes: dict[str, Any] | None) -> dict[str, str]:
    """Node name → its Ready condition's status ("True", "False", "Unknown")."""
    out: dict[str, str] = {}
    for node in (nodes or {}).get("items") or []:
        name = str((node.get("metadata") or {}).get("name", ""))
        ready = next(
            (
                c
                for c in (node.get("status") or {}).get("conditions") or []
                if c.get("type") == "Ready"
            ),
            None,
        )
        out[name] = str(ready.get("status")) if ready else "Unknown"
    return out


def wait_nodes_ready(cfg: ClusterConfig, deadline: float, alive: Any) -> bool:
    """Poll (50 ms) until every node of the cluster reports Ready=True."""
    want = {n.name for n in cfg.node_nets()}
    while time.monotonic() < deadline:
        if not alive() or crash_looping(cfg):
            return False
        ready = node_readiness(api_get(cfg.apiserver_kubeconfig, "/api/v1/nodes"))
        if all(ready.get(n) == "True" for n in want):
            return True
        time.sleep(0.05)
    return False


def crash_looping(cfg: ClusterConfig, limit: int = 3) -> bool:
    """A component that keeps dying at start-up will not come up by waiting longer."""
    return any(st.restarts >= limit for st in read_status(cfg.state_dir).values())


# -- node stop/start --------------------------------------------------------------------------
def agent_pid(cfg: ClusterConfig, node: str) -> int | None:
    st = read_status(cfg.state_dir).get(agent_component_name(node))
    return st.pid if st is not None else None


def node_stop(cfg: ClusterConfig, node: str) -> None:
    flag = cfg.stop_flag(node)
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.touch()
    pid = agent_pid(cfg, node)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR1)


def node_start(cfg: ClusterConfig, node: str) -> None:
    cfg.stop_flag(node).unlink(missing_ok=True)
    pid = agent_pid(cfg, node)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR2)


def node_is_stopped(cfg: ClusterConfig, node: str) -> bool:
    return cfg.stop_flag(node).exists()


# -- teardown ---------------------------------------------------------------------------------
def kill_leftover_components(cfg: ClusterConfig) -> list[str]:
    """Components a dead supervisor left running (it was SIGKILLed): by recorded PID, and only
    if that PID still runs one of this cluster's commands (PIDs are reused)."""
    killed = []
    for st in read_status(cfg.state_dir).values():
        if st.pid is None:
            continue
        try:
            cmd = Path(f"/proc/{st.pid}/cmdline").read_bytes()
        except OSError:
            continue
        if str(cfg.root).encode() in cmd:
            with contextlib.suppress(ProcessLookupError):
                os.kill(st.pid, signal.SIGKILL)
                killed.append(f"process {st.pid} ({st.name})")
    return killed


def remove_cluster_files(cfg: ClusterConfig) -> list[str]:
    """What svcnet wrote under the data dir (store, certificates, logs, node state)."""
    removed = []
    if cfg.root.exists():
        unmount_under(str(cfg.root))  # pods' memory-backed volumes a killed agent left
        shutil.rmtree(cfg.root, ignore_errors=True)
        removed.append(str(cfg.root))
    return removed


__all__ = [
    "AGENT_PORT",
    "ClusterConfig",
    "agent_component_name",
    "api_get",
    "conflicts",
    "crash_looping",
    "kill_leftover_components",
    "load_cluster",
    "node_is_stopped",
    "node_readiness",
    "node_start",
    "node_stop",
    "plan_components",
    "port_in_use",
    "remove_cluster_files",
    "wait_nodes_ready",
]
