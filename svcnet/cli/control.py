"""What ``svcnet up``, ``down``, ``status`` and ``apiserver`` do, behind the click commands:
parse, call :mod:`svcnet.cluster.lifecycle`, print, pick the exit code."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, NoReturn

import click

from svcnet.cluster import lifecycle
from svcnet.cluster.lifecycle import ClusterError


def default_data_dir(name: str) -> str:
    if os.geteuid() == 0:
        return f"/var/lib/svcnet/{name}"
    return str(Path.home() / ".local" / "share" / "svcnet" / name)


def _fail(e: ClusterError) -> NoReturn:
    click.echo(str(e), err=True)
    raise SystemExit(1)


def up(
    name: str,
    nodes: int,
    data_dir: str,
    upstream_dns: str | None,
    kubeconfig: str | None,
    **options: Any,
) -> None:
    try:
        result = lifecycle.up(name, nodes, data_dir, upstream_dns, kubeconfig, **options)
    except ClusterError as e:
        click.echo(str(e), err=True)
        if e.torn_down:
            click.echo(f"svcnet cluster {name!r} is down.")
        raise SystemExit(1) from None
    if result.already_running is not None:
        click.echo(
            f"svcnet cluster {name!r} is already running (supervisor pid {result.already_running})."
        )
        status(name, data_dir)
        return
    for warning in result.warnings:
        click.echo(warning, err=True)
    click.echo(
        f"svcnet cluster {name!r} is up in {result.elapsed:.1f}s with {nodes} Ready node(s); "
        f"kubectl context {name!r} is in {result.kubeconfig}."
    )
    click.echo(
        "Try:\n  kubectl get nodes -o wide\n"
        "  kubectl run web --image=registry.k8s.io/e2e-test-images/agnhost:2.52 "
        "-- netexec\n"
        "  kubectl get pods -o wide\n  kubectl logs web\n"
        "  kubectl exec web -- hostname\n"
        "  svcnet status\n  svcnet node stop node-1\n  svcnet down"
    )


def down(name: str, data_dir: str, kubeconfig: str | None) -> None:
    lifecycle.down(name, data_dir, kubeconfig)
    click.echo(f"svcnet cluster {name!r} is down.")


def status(name: str, data_dir: str) -> None:
    st = lifecycle.status(data_dir)
    if st.supervisor_pid is None:
        click.echo(f"svcnet cluster {name!r} is not running.")
        return
    click.echo(f"cluster {name!r}: supervisor pid {st.supervisor_pid}, data in {st.data_dir}")
    click.echo(f"{'COMPONENT':<16}{'STATE':<12}{'PID':<9}{'RESTARTS':<10}LAST EXIT")
    for c in st.components:
        last = "-" if c.last_exit_code is None else str(c.last_exit_code)
        click.echo(f"{c.name:<16}{c.state:<12}{c.pid or '-'!s:<9}{c.restarts:<10}{last}")
    if st.nodes is None:
        return
    click.echo(f"\n{'NODE':<10}{'IP':<16}{'NETNS':<22}{'AGENT':<10}READY")
    for n in st.nodes:
        click.echo(f"{n.name:<10}{n.ip:<16}{n.netns:<22}{n.agent:<10}{n.ready}")
    click.echo("\n" + st.dns)


def node_stop(name: str, data_dir: str, node: str, start: bool) -> None:
    try:
        lifecycle.node_stop(name, data_dir, node, start=start)
    except ClusterError as e:
        _fail(e)
    if start:
        click.echo(f"node {node} started")
    else:
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
