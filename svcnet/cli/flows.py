"""``svcnet flows [-n NS] [--pod P] [--verdict dropped|allowed] [-f] [-o json]``.

Every node's agent keeps a ring of its pods' flows (dropped packets from the NetworkPolicy
table's NFLOG, allowed connections from conntrack events; :mod:`svcnet.agent.flowtap`). This
command reads each ring through the API server's node proxy
(``/api/v1/nodes/NODE/proxy/flows``, as ``kubectl get --raw`` would), merges the nodes' views of
each connection, names its addresses from the API (pods, Services, nodes) and prints a table,
or JSON. With ``-f`` it keeps reading every node and prints each connection when it appears
and when its verdict or state changes.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import click

from svcnet.cli import control

if TYPE_CHECKING:
    from pathlib import Path

    from svcnet.netpol.flowlog import Flow
    from svcnet.netpol.flowview import Filter, FlowView, Names

COLUMNS = ("FROM", "TO", "SERVICE", "PORT", "VERDICT", "POLICY", "NODE")
# Connections remembered while following, to merge their later events (bounded).
FOLLOW_MEMORY = 10_000
NAMES_REFRESH = 2.0
PIPED_WIDTH = 400


class Api:
    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def get(self, path: str) -> dict[str, Any]:
        from svcnet.cluster.up import api_get

        body = api_get(self.kubeconfig, path, timeout=10)
        if body is None:
            raise click.ClickException(f"could not read {path} from the API server")
        return body

    def items(self, path: str) -> list[dict[str, Any]]:
        return list(self.get(path).get("items") or [])

    def node_flows(self, node: str, since: int, follow: bool) -> Any:
        from svcnet.cluster.up import api_lines
        from svcnet.netpol.flowlog import Flow

        path = f"/api/v1/nodes/{node}/proxy/flows?since={since}"
        if follow:
            path += "&follow=1"
        for line in api_lines(self.kubeconfig, path, timeout=None if follow else 10):
            if line.strip():
                yield Flow.from_json(json.loads(line))

    def names(self) -> Names:
        from svcnet.netpol.flowview import names_from

        return names_from(
            self.items("/api/v1/pods"),
            self.items("/api/v1/services"),
            self.items("/api/v1/nodes"),
            self.items("/apis/discovery.k8s.io/v1/endpointslices"),
        )


def _api(data_dir: str) -> Api:
    from svcnet.cluster.up import load_cluster

    cfg = load_cluster(data_dir)
    if cfg is None:
        raise click.ClickException(f"no svcnet cluster in {data_dir}: run `svcnet up` first")
    return Api(cfg.apiserver_kubeconfig)


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


def snapshot(api: Api, keep: Filter, output: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from svcnet.netpol.flowview import merge, row

    flows: list[Flow] = []
    for node in api.items("/api/v1/nodes"):
        try:
            flows.extend(api.node_flows(node["metadata"]["name"], 0, follow=False))
        except OSError as e:
            click.echo(f"warning: flows of node {node['metadata']['name']}: {e}", err=True)
    views = [v for v in merge(flows, api.names()) if keep(v)]
    if output == "json":
        click.echo(json.dumps({"flows": [v.to_json() for v in views]}, indent=2))
        return
    table = Table(box=None, pad_edge=False)
    for c in ("TIME", *COLUMNS):
        table.add_column(c, no_wrap=c not in ("POLICY",))
    for v in views:
        colour = "red" if v.verdict.value == "dropped" else "green"
        cells = row(v)
        table.add_row(_clock(v.time), *cells[:4], f"[{colour}]{cells[4]}[/{colour}]", *cells[5:])
    # Piped output (grep, a file) is never cut to a terminal's width.
    Console(width=None if sys.stdout.isatty() else PIPED_WIDTH).print(table)


def follow(api: Api, keep: Filter, output: str) -> None:
    """Read every node's ring from its start, then as it grows; print a connection each time
    its merged verdict or state changes."""
    from svcnet.netpol.flowview import view

    events: queue.Queue[Flow] = queue.Queue(maxsize=FOLLOW_MEMORY)

    def reader(node: str) -> None:
        since = 0
        while True:
            try:
                for f in api.node_flows(node, since, follow=True):
                    since = f.seq
                    events.put(f)
            except OSError as e:  # the agent restarted or the connection dropped: go on
                click.echo(f"warning: flows of node {node}: {e}", err=True)
            time.sleep(1.0)

    for node in api.items("/api/v1/nodes"):
        name = node["metadata"]["name"]
        threading.Thread(target=reader, args=(name,), daemon=True, name=f"flows-{name}").start()
    names, names_at = api.names(), time.monotonic()
    groups: OrderedDict[tuple[str, str, int, str, int], list[Flow]] = OrderedDict()
    shown: dict[tuple[str, str, int, str, int], tuple[str, str]] = {}
    while True:
        f = events.get()
        unknown = f.src not in names.by_ip or f.dst not in names.by_ip
        if unknown and time.monotonic() - names_at > NAMES_REFRESH:
            names, names_at = api.names(), time.monotonic()
        group = groups.setdefault(f.key, [])
        group.append(f)
        groups.move_to_end(f.key)
        if len(groups) > FOLLOW_MEMORY:
            old, _ = groups.popitem(last=False)
            shown.pop(old, None)
        v = view(group, names)
        state = (v.verdict.value, v.state.value)
        if shown.get(f.key) == state or not keep(v):
            continue
        shown[f.key] = state
        _print_line(v, output)


def _print_line(v: FlowView, output: str) -> None:
    from svcnet.netpol.flowview import row

    if output == "json":
        click.echo(json.dumps(v.to_json()), nl=True)
        return
    src, dst, svc, port, verdict, policy, nodes = row(v)
    colour = "red" if v.verdict.value == "dropped" else "green"
    via = f" via {svc}" if svc else ""
    why = f"  {policy}" if policy else ""
    click.echo(
        f"{_clock(v.time)} {src} -> {dst}{via} {port} "
        + click.style(verdict, fg=colour)
        + f"{why}  [{nodes}]"
    )


@click.command("flows")
@click.option("-n", "--namespace", default="", help="Only flows from or to this namespace.")
@click.option("--pod", default="", help="Only flows from or to this pod (with -n: of it).")
@click.option("--verdict", type=click.Choice(["dropped", "allowed"]), default=None)
@click.option("-f", "--follow", "follow_", is_flag=True, help="Keep printing new flows.")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
@click.option(
    "--name", "cluster_name", default="svcnet", show_default=True, help="The cluster's name."
)
@click.option("--data-dir", default=None)
def flows(
    namespace: str,
    pod: str,
    verdict: str | None,
    follow_: bool,
    output: str,
    cluster_name: str,
    data_dir: str | None,
) -> None:
    """The cluster's live flows: who talked to whom (pods, Services), allowed or dropped,
    and for a drop the NetworkPolicies that isolate the pod.

    Dropped packets are logged at most 100 a second per drop rule of a node; allowed
    connections are seen when they start and end, never per packet. Each node keeps its
    last 4096 flows.
    """
    from svcnet.netpol.flowlog import Verdict
    from svcnet.netpol.flowview import Filter

    api = _api(data_dir or control.default_data_dir(cluster_name))
    keep = Filter(namespace, pod, Verdict(verdict) if verdict else None)
    if follow_:
        try:
            follow(api, keep, output)
        except KeyboardInterrupt:
            return
    else:
        snapshot(api, keep, output)


__all__ = ["flows"]
