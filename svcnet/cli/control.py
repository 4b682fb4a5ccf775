"""What ``svcnet up``, ``down``, ``status`` and ``apiserver`` do, behind the click commands."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import yaml

from svcnet.api.ranges import (
    DEFAULT_CLUSTER_CIDR,
    DEFAULT_LB_CIDR,
    DEFAULT_SERVICE_CIDR,
    DEFAULT_UNDERLAY_CIDR,
)
from svcnet.client.kubeconfig import merge_kubeconfig, remove_from_kubeconfig
from svcnet.cluster.supervisor import read_status, write_spec

READY_TIMEOUT = 60.0


def default_data_dir(name: str) -> str:
    if os.geteuid() == 0:
        return f"/var/lib/svcnet/{name}"
    return str(Path.home() / ".local" / "share" / "svcnet" / name)


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


def _read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


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
) -> None:
    from svcnet.cluster.preflight import PreflightError, check

    started = time.monotonic()
    try:
        check()  # first, before anything else is imported or touched
    except PreflightError as e:
        click.echo(str(e), err=True)
        raise SystemExit(1) from None
    from svcnet.cluster.addons import AddonError, deploy_addons_blocking, parse_upstreams
    from svcnet.cluster.claims import NAME_FLAG, describe, invalid_ranges
    from svcnet.cluster.underlay import Underlay, UnderlayError
    from svcnet.cluster.up import ClusterConfig, conflicts, plan_components, wait_nodes_ready
    from svcnet.dataplane.netns import IpRoute2, NetnsError

    root = Path(data_dir)
    state = root / "state"
    if (pid := _read_pid(state / "supervisor.pid")) is not None:
        click.echo(f"svcnet cluster {name!r} is already running (supervisor pid {pid}).")
        status(name, data_dir)
        return
    flags = (
        ("--underlay-cidr", underlay_cidr),
        ("--pod-cidr", pod_cidr),
        ("--service-cidr", service_cidr),
        ("--lb-cidr", lb_cidr),
    )
    if problems := invalid_ranges(nodes, flags):
        click.echo(describe(name, problems), err=True)
        raise SystemExit(1)
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
        click.echo(
            f"svcnet up: {e}; pass --prefix with a short name for links and namespaces", err=True
        )
        raise SystemExit(1) from None
    try:
        parse_upstreams(upstream_dns, cfg.gateway)
    except AddonError as e:
        click.echo(f"svcnet up: {e}", err=True)
        raise SystemExit(1) from None
    if problems := conflicts(cfg, IpRoute2()):
        if prefix is None:  # the names derive from --name then
            problems = [
                dataclasses.replace(p, field="--name") if p.field == NAME_FLAG else p
                for p in problems
            ]
        click.echo(describe(name, problems), err=True)
        raise SystemExit(1)
    for d in (state, root / "logs", root / "apiserver"):
        d.mkdir(parents=True, exist_ok=True)
    cfg.save()
    cfg.apiserver_kubeconfig.unlink(missing_ok=True)
    try:
        Underlay(IpRoute2(), cfg.underlay).create(nodes)
    except (UnderlayError, NetnsError) as e:
        click.echo(f"svcnet up: cannot build the node network: {e}", err=True)
        _teardown(cfg)
        raise SystemExit(1) from None
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
        click.echo("svcnet did not come up; the logs end with:", err=True)
        for log in sorted((root / "logs").glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-10:]
            if lines:
                click.echo(f"--- {log.name}\n" + "\n".join(lines), err=True)
        down(name, data_dir, kubeconfig)
        raise SystemExit(1)
    try:
        deploy_addons_blocking(cfg, upstream_dns)
    except Exception as e:  # the cluster is up: say how to retry rather than tear it down
        click.echo(
            f"svcnet up: the DNS add-on was not deployed ({e}); retry with "
            f"`python -m svcnet.cluster.addons --data-dir {root}`",
            err=True,
        )
    apiserver_kubeconfig = cfg.apiserver_kubeconfig
    kcfg = yaml.safe_load(apiserver_kubeconfig.read_text())
    cluster = kcfg["clusters"][0]["cluster"]
    target = user_kubeconfig(kubeconfig)
    merge_kubeconfig(
        target,
        name,
        cluster["server"],
        base64.b64decode(cluster["certificate-authority-data"]),
        kcfg["users"][0]["user"]["token"],
        context_name=name,
    )
    (state / "kubeconfig-target").write_text(str(target))
    elapsed = time.monotonic() - started
    click.echo(
        f"svcnet cluster {name!r} is up in {elapsed:.1f}s with {nodes} Ready node(s); "
        f"kubectl context {name!r} is in {target}."
    )
    click.echo(
        "Try:\n  kubectl get nodes -o wide\n"
        "  kubectl run web --image=registry.k8s.io/e2e-test-images/agnhost:2.52 "
        "-- netexec\n"
        "  kubectl get pods -o wide\n  kubectl logs web\n"
        "  kubectl exec web -- hostname\n"
        "  svcnet status\n  svcnet node stop node-1\n  svcnet down"
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
    pid = _read_pid(state / "supervisor.pid")
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
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
    click.echo(f"svcnet cluster {name!r} is down.")


def status(name: str, data_dir: str) -> None:
    from svcnet.cluster.up import (
        agent_component_name,
        api_get,
        load_cluster,
        node_is_stopped,
        node_readiness,
    )

    root = Path(data_dir)
    state = root / "state"
    pid = _read_pid(state / "supervisor.pid")
    if pid is None:
        click.echo(f"svcnet cluster {name!r} is not running.")
        return
    click.echo(f"cluster {name!r}: supervisor pid {pid}, data in {root}")
    click.echo(f"{'COMPONENT':<16}{'STATE':<12}{'PID':<9}{'RESTARTS':<10}LAST EXIT")
    for st in read_status(state).values():
        last = "-" if st.last_exit_code is None else str(st.last_exit_code)
        click.echo(f"{st.name:<16}{st.state:<12}{st.pid or '-'!s:<9}{st.restarts:<10}{last}")
    cfg = load_cluster(data_dir)
    if cfg is None:
        return
    ready = node_readiness(api_get(cfg.apiserver_kubeconfig, "/api/v1/nodes"))
    click.echo(f"\n{'NODE':<10}{'IP':<16}{'NETNS':<22}{'AGENT':<10}READY")
    statuses = read_status(state)
    for node in cfg.node_nets():
        comp = statuses.get(agent_component_name(node.name))
        agent = "Stopped" if node_is_stopped(cfg, node.name) else (comp.state if comp else "-")
        click.echo(
            f"{node.name:<10}{node.ip:<16}{node.netns:<22}{agent:<10}"
            f"{ready.get(node.name, 'Unknown')}"
        )
    from svcnet.cluster.addons import dns_status_line

    click.echo("\n" + dns_status_line(cfg))


def node_stop(name: str, data_dir: str, node: str, start: bool) -> None:
    from svcnet.cluster.up import load_cluster, node_start
    from svcnet.cluster.up import node_stop as stop

    cfg = load_cluster(data_dir)
    if cfg is None or _read_pid(Path(data_dir) / "state" / "supervisor.pid") is None:
        click.echo(f"svcnet cluster {name!r} is not running.", err=True)
        raise SystemExit(1)
    if node not in {n.name for n in cfg.node_nets()}:
        click.echo(f"no node {node!r} in cluster {name!r}", err=True)
        raise SystemExit(1)
    if start:
        node_start(cfg, node)
        click.echo(f"node {node} started")
    else:
        stop(cfg, node)
        click.echo(f"node {node} stopped (its namespace stays; `svcnet node start {node}`)")


def run_apiserver_foreground(
    data_dir: str,
    bind_addresses: list[str],
    port: int,
    store_url: str | None,
    service_cidr: str,
    node_port_range: str,
    advertise_address: str | None,
    prepare_workers: int | None = None,
) -> None:
    from svcnet.apiserver.preparepool import default_workers
    from svcnet.apiserver.server import ApiServerConfig
    from svcnet.cluster.controlplane import serve
    from svcnet.util.log import setup_logging

    setup_logging("apiserver")
    low, high = (int(x) for x in node_port_range.split("-", 1))
    config = ApiServerConfig(
        data_dir=Path(data_dir),
        listen_addresses=tuple(bind_addresses),
        port=port,
        store_url=store_url or "",
        service_cidr=service_cidr,
        node_port_range=(low, high),
        advertise_address=advertise_address or bind_addresses[0],
        prepare_workers=default_workers() if prepare_workers is None else prepare_workers,
    )
    import uvloop

    uvloop.install()
    asyncio.run(serve(config, controllers=False))
