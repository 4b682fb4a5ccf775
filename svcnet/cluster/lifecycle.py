"""``svcnet up``, ``down``, ``status`` and ``node stop/start`` as calls that return results.

The order of the steps is in :mod:`svcnet.cluster.up`. Here they run: each failure raises
:class:`ClusterError` with the text to show, and each success returns what happened, so the
command line only parses flags, prints and picks the exit code.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from svcnet.api.ranges import (
    DEFAULT_CLUSTER_CIDR,
    DEFAULT_LB_CIDR,
    DEFAULT_SERVICE_CIDR,
    DEFAULT_UNDERLAY_CIDR,
)
from svcnet.client.kubeconfig import merge_kubeconfig, remove_from_kubeconfig
from svcnet.cluster.claims import NAME_FLAG, Conflict
from svcnet.cluster.supervisor import ComponentStatus, read_status, write_spec
from svcnet.cluster.underlay import NodeNet

READY_TIMEOUT = 60.0
# How long `up` waits for the cluster DNS to answer from every node once its add-on is
# deployed (kind's `--wait`, for the add-on every pod's first lookup needs; `--no-wait-dns`
# skips it); past it, `up` returns with a warning rather than fail a cluster that is up.
DNS_WAIT = 30.0
DOWN_TIMEOUT = 30.0


class ClusterError(Exception):
    """A step failed; ``str(e)`` is the whole message. ``torn_down``: the cluster was removed."""

    def __init__(self, message: str, *, torn_down: bool = False) -> None:
        super().__init__(message)
        self.torn_down = torn_down


@dataclasses.dataclass(frozen=True)
class UpResult:
    already_running: int | None  # the running supervisor's pid; nothing was started then
    elapsed: float = 0.0
    kubeconfig: Path | None = None
    warnings: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class NodeRow:
    name: str
    ip: str
    netns: str
    agent: str
    ready: str


@dataclasses.dataclass(frozen=True)
class ClusterStatus:
    supervisor_pid: int | None  # None: not running, and nothing else is filled in
    data_dir: Path
    components: tuple[ComponentStatus, ...] = ()
    nodes: tuple[NodeRow, ...] | None = None  # None: no saved cluster config
    dns: str = ""


def user_kubeconfig(explicit: str | None) -> Path:
    """Where to merge our context: --kubeconfig, else the first $KUBECONFIG entry, else ~/.kube/config."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), "")
    return Path(first).expanduser() if first else Path.home() / ".kube" / "config"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pid(path: Path) -> int | None:
    """The pid in ``path`` if that process is alive."""
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def name_conflicts(problems: Iterable[Conflict], prefix: str | None) -> list[Conflict]:
    """Without --prefix the link and namespace names derive from --name: blame that flag."""
    if prefix is not None:
        return list(problems)
    return [dataclasses.replace(p, field="--name") if p.field == NAME_FLAG else p for p in problems]


def kubeconfig_entry(kcfg: Mapping[str, Any]) -> tuple[str, bytes, str]:
    """(server, CA certificate, token) of the API server's one-cluster kubeconfig."""
    cluster = kcfg["clusters"][0]["cluster"]
    return (
        cluster["server"],
        base64.b64decode(cluster["certificate-authority-data"]),
        kcfg["users"][0]["user"]["token"],
    )


def node_rows(
    nodes: Iterable[NodeNet],
    components: Mapping[str, ComponentStatus],
    ready: Mapping[str, str],
    stopped: Iterable[str],
) -> tuple[NodeRow, ...]:
    """One row per node: its agent's state ("Stopped" by ``node stop``) and its Ready condition."""
    from svcnet.cluster.up import agent_component_name

    stopped = set(stopped)
    rows = []
    for node in nodes:
        comp = components.get(agent_component_name(node.name))
        agent = "Stopped" if node.name in stopped else (comp.state if comp else "-")
        rows.append(NodeRow(node.name, node.ip, node.netns, agent, ready.get(node.name, "Unknown")))
    return tuple(rows)


def log_tails(logs: Path, lines: int = 10) -> list[str]:
    """The last lines of each component's log, headed by the log's name."""
    tails = []
    for log in sorted(logs.glob("*.log")):
        last = log.read_text(errors="replace").splitlines()[-lines:]
        if last:
            tails.append(f"--- {log.name}\n" + "\n".join(last))
    return tails


def up(
    name: str,
    nodes: int,
    data_dir: str,
    upstream_dns: str | None,
    kubeconfig: str | None,
    *,
    prefix: str | None = None,
    port: int = 6443,
    underlay_cidr: str = DEFAULT_UNDERLAY_CIDR,
    pod_cidr: str = DEFAULT_CLUSTER_CIDR,
    service_cidr: str = DEFAULT_SERVICE_CIDR,
    lb_cidr: str = DEFAULT_LB_CIDR,
    wait_dns: bool = True,
) -> UpResult:
    from svcnet.cluster.preflight import PreflightError, check

    started = time.monotonic()
    try:
        check()  # first, before anything else is imported or touched
    except PreflightError as e:
        raise ClusterError(str(e)) from None
    from svcnet.cluster.addons import (
        AddonError,
        deploy_addons_blocking,
        parse_upstreams,
        wait_dns_answers,
    )
    from svcnet.cluster.claims import describe, invalid_ranges
    from svcnet.cluster.underlay import Underlay, UnderlayError
    from svcnet.cluster.up import ClusterConfig, conflicts, plan_components, wait_nodes_ready
    from svcnet.dataplane.netns import IpRoute2, NetnsError

    root = Path(data_dir)
    state = root / "state"
    if (pid := read_pid(state / "supervisor.pid")) is not None:
        return UpResult(already_running=pid)
    flags = (
        ("--underlay-cidr", underlay_cidr),
        ("--pod-cidr", pod_cidr),
        ("--service-cidr", service_cidr),
        ("--lb-cidr", lb_cidr),
    )
    if problems := invalid_ranges(nodes, flags):
        raise ClusterError(describe(name, problems))
    cfg = ClusterConfig(
        name=name,
        nodes=nodes,
        data_dir=str(root),
        port=port,
        prefix=prefix or name,
        underlay_cidr=underlay_cidr,
        pod_cidr=pod_cidr,
        service_cidr=service_cidr,
        lb_cidr=lb_cidr,
    )
    try:
        cfg.underlay  # noqa: B018 - validates the prefix
    except UnderlayError as e:
        raise ClusterError(
            f"svcnet up: {e}; pass --prefix with a short name for links and namespaces"
        ) from None
    try:
        parse_upstreams(upstream_dns, cfg.gateway)
    except AddonError as e:
        raise ClusterError(f"svcnet up: {e}") from None
    if problems := conflicts(cfg, IpRoute2()):
        raise ClusterError(describe(name, name_conflicts(problems, prefix)))
    for d in (state, root / "logs", root / "apiserver"):
        d.mkdir(parents=True, exist_ok=True)
    cfg.save()
    cfg.apiserver_kubeconfig.unlink(missing_ok=True)
    try:
        Underlay(IpRoute2(), cfg.underlay).create(nodes)
    except (UnderlayError, NetnsError) as e:
        _teardown(cfg)
        raise ClusterError(f"svcnet up: cannot build the node network: {e}") from None
    write_spec(state / "spec.json", plan_components(cfg))
    with open(root / "logs" / "supervisor.log", "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "svcnet.cluster.supervisor", "--state-dir", str(state)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    (state / "supervisor.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + READY_TIMEOUT
    if not wait_nodes_ready(cfg, deadline, lambda: proc.poll() is None):
        message = "\n".join(
            ["svcnet did not come up; the logs end with:", *log_tails(root / "logs")]
        )
        down(name, data_dir, kubeconfig)
        raise ClusterError(message, torn_down=True)
    warnings = []
    try:
        deploy_addons_blocking(cfg, upstream_dns)
    except Exception as e:  # the cluster is up: say how to retry rather than tear it down
        warnings.append(
            f"svcnet up: the DNS add-on was not deployed ({e}); retry with "
            f"`python -m svcnet.cluster.addons --data-dir {root}`"
        )
    # A pod started before the DNS Service has an endpoint on its node gets "connection
    # refused" for its first lookup: up returns once the DNS answers from every node.
    if wait_dns and not warnings and (silent := wait_dns_answers(cfg, DNS_WAIT)):
        warnings.append(
            f"svcnet up: the cluster DNS ({cfg.cluster_dns}) does not answer yet from "
            f"{', '.join(silent)}; `svcnet status` shows its pods"
        )
    server, ca, token = kubeconfig_entry(yaml.safe_load(cfg.apiserver_kubeconfig.read_text()))
    target = user_kubeconfig(kubeconfig)
    merge_kubeconfig(target, name, server, ca, token, context_name=name)
    (state / "kubeconfig-target").write_text(str(target))
    return UpResult(
        already_running=None,
        elapsed=time.monotonic() - started,
        kubeconfig=target,
        warnings=tuple(warnings),
    )


def _teardown(cfg: Any) -> list[str]:
    from svcnet.cluster.underlay import sweep
    from svcnet.cluster.up import kill_leftover_components, remove_cluster_files
    from svcnet.dataplane.netns import IpRoute2

    removed = kill_leftover_components(cfg)
    removed += sweep(IpRoute2(), cfg.underlay)
    removed += remove_cluster_files(cfg)
    return removed


def down(name: str, data_dir: str, kubeconfig: str | None) -> None:
    from svcnet.cluster.up import load_cluster

    root = Path(data_dir)
    state = root / "state"
    pid = read_pid(state / "supervisor.pid")
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + DOWN_TIMEOUT
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    (state / "supervisor.pid").unlink(missing_ok=True)
    target = user_kubeconfig(kubeconfig)
    with contextlib.suppress(OSError):
        target = Path((state / "kubeconfig-target").read_text().strip())
    cfg = load_cluster(data_dir)
    if cfg is not None and os.geteuid() == 0:
        _teardown(cfg)
    remove_from_kubeconfig(target, name, context_name=name)


def status(data_dir: str) -> ClusterStatus:
    from svcnet.cluster.addons import dns_status_line
    from svcnet.cluster.up import api_get, load_cluster, node_is_stopped, node_readiness

    root = Path(data_dir)
    state = root / "state"
    pid = read_pid(state / "supervisor.pid")
    if pid is None:
        return ClusterStatus(supervisor_pid=None, data_dir=root)
    components = read_status(state)
    cfg = load_cluster(data_dir)
    if cfg is None:
        return ClusterStatus(pid, root, tuple(components.values()))
    ready = node_readiness(api_get(cfg.apiserver_kubeconfig, "/api/v1/nodes"))
    nets = cfg.node_nets()
    stopped = [n.name for n in nets if node_is_stopped(cfg, n.name)]
    rows = node_rows(nets, components, ready, stopped)
    return ClusterStatus(pid, root, tuple(components.values()), rows, dns_status_line(cfg))


def node_stop(name: str, data_dir: str, node: str, *, start: bool = False) -> None:
    """Stop (or with ``start``, resume) one node's agent and its pods."""
    from svcnet.cluster import up as cluster

    cfg = cluster.load_cluster(data_dir)
    if cfg is None or read_pid(Path(data_dir) / "state" / "supervisor.pid") is None:
        raise ClusterError(f"svcnet cluster {name!r} is not running.")
    if node not in {n.name for n in cfg.node_nets()}:
        raise ClusterError(f"no node {node!r} in cluster {name!r}")
    if start:
        cluster.node_start(cfg, node)
    else:
        cluster.node_stop(cfg, node)
