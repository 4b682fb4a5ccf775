"""``svcnet policy``: NetworkPolicy as the nodes enforce it.

- ``explain --from NS/POD --to NS/POD[:PORT[/PROTO]]`` (or ``--to-service NS/SVC:PORT``): why a
  connection passes or is dropped;
- ``matrix [-n NS…] --port P [--probe]``: the pods x pods table, and with ``--probe`` each cell
  checked by a real connection from inside the source pod, disagreements marked.

The cluster's pods, namespaces and NetworkPolicies are read from the API and compiled with the
compiler every node runs (:mod:`svcnet.netpol.explain`): the answer is what the kernel of the
sender's node and of the receiver's node enforce, once they have synced.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import click

from svcnet.cli import control

if TYPE_CHECKING:
    from svcnet.netpol.explain import Cluster, Explanation

EXIT_DROPPED = 1
EXIT_ERROR = 2
PROBE_TIMEOUT = 1.0


class CliError(Exception):
    """Printed as ``Error: ...`` with exit code 2."""


def parse_endpoint(text: str, with_port: bool) -> tuple[str, str, int, str]:
    """``NS/POD[:PORT[/PROTO]]`` -> (namespace, pod, port, protocol); port 0 when absent."""
    target, _, rest = text.partition(":")
    ns, sep, pod = target.partition("/")
    if not sep:
        ns, pod = "default", target
    if not ns or not pod:
        raise click.BadParameter(f"{text!r}: expected NAMESPACE/POD")
    port, proto = 0, "TCP"
    if rest:
        if not with_port:
            raise click.BadParameter(f"{text!r}: a port goes on --to only")
        number, _, proto_text = rest.partition("/")
        if not number.isdigit() or not 0 < int(number) < 65536:
            raise click.BadParameter(f"{text!r}: the port must be a number from 1 to 65535")
        port, proto = int(number), (proto_text or "TCP").upper()
        if proto not in ("TCP", "UDP", "SCTP"):
            raise click.BadParameter(f"{text!r}: the protocol must be TCP, UDP or SCTP")
    return ns, pod, port, proto


def parse_service(text: str) -> tuple[str, str, str]:
    """``NS/SVC:PORT`` (a port number or name) -> (namespace, service, port)."""
    target, _, port = text.partition(":")
    ns, sep, svc = target.partition("/")
    if not sep:
        ns, svc = "default", target
    if not ns or not svc or not port:
        raise click.BadParameter(f"{text!r}: expected NAMESPACE/SERVICE:PORT")
    return ns, svc, port


def _api(data_dir: str) -> Any:
    from svcnet.cluster.up import api_get, load_cluster

    cfg = load_cluster(data_dir)
    if cfg is None:
        raise CliError(f"no svcnet cluster in {data_dir}: run `svcnet up` first")

    def get(path: str) -> dict[str, Any]:
        body = api_get(cfg.apiserver_kubeconfig, path, timeout=10)
        if body is None:
            raise CliError(f"could not read {path} from the API server")
        return body

    return get


def _cluster(get: Any) -> Cluster:
    from svcnet.netpol.explain import Cluster
    from svcnet.netpol.model import namespace_info, pod_info, policy_info

    pods = get("/api/v1/pods").get("items") or []
    namespaces = get("/api/v1/namespaces").get("items") or []
    policies = get("/apis/networking.k8s.io/v1/networkpolicies").get("items") or []
    return Cluster(
        [policy_info(o) for o in policies],
        [p for p in (pod_info(o) for o in pods) if p is not None],
        [namespace_info(o) for o in namespaces],
    )


def _guarded(fn: Any) -> int:
    from svcnet.netpol.explain import UnknownPodError, UnknownServicePortError

    try:
        result: int = fn()
        return result
    except (CliError, UnknownPodError, UnknownServicePortError) as e:
        click.echo(f"Error: {e}", err=True)
        return EXIT_ERROR


def run_explain(data_dir: str, src: str, dst: str) -> int:
    from svcnet.netpol.explain import render
    from svcnet.netpol.model import PodKey, Protocol

    s_ns, s_pod, _, _ = parse_endpoint(src, with_port=False)
    d_ns, d_pod, port, proto = parse_endpoint(dst, with_port=True)

    def go() -> int:
        cluster = _cluster(_api(data_dir))
        answer = cluster.explain(
            PodKey(s_ns, s_pod), PodKey(d_ns, d_pod), Protocol.parse(proto), port or 80
        )
        click.echo(render(answer), nl=False)
        return 0 if answer.allowed else EXIT_DROPPED

    return _guarded(go)


def run_explain_service(data_dir: str, src: str, service: str) -> int:
    """Each backend of the Service port, judged on the port DNAT sends it to."""
    from svcnet.netpol.explain import render, service_backends
    from svcnet.netpol.model import PodKey

    s_ns, s_pod, _, _ = parse_endpoint(src, with_port=False)
    ns, svc, port = parse_service(service)

    def go() -> int:
        get = _api(data_dir)
        svc_obj = get(f"/api/v1/namespaces/{ns}/services/{svc}")
        slices = (
            get(
                f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"
                f"?labelSelector=kubernetes.io/service-name%3D{svc}"
            ).get("items")
            or []
        )
        backends = service_backends(svc_obj, slices, port)
        click.echo(f"service {ns}/{svc}:{port}: {len(backends)} ready backend(s)")
        if not backends:
            return EXIT_DROPPED
        cluster = _cluster(get)
        allowed = True
        for b in backends:
            answer = cluster.explain(PodKey(s_ns, s_pod), b.pod, b.protocol, b.port)
            allowed = allowed and answer.allowed
            click.echo(render(answer), nl=False)
        return 0 if allowed else EXIT_DROPPED

    return _guarded(go)


def probe_row(data_dir: str, src: Any, targets: list[Any], proto: str, port: int) -> set[str]:
    """From inside ``src``: the targets (ns/pod) that connected on ``proto``/``port``."""
    wanted = {f"{proto.lower()}:{t.ip}:{port}": str(t.key) for t in targets}
    argv = [sys.executable, "-m", "svcnet.cli.main", "exec", "--data-dir", data_dir,
            "-n", src.key.namespace, src.key.name, "--",
            sys.executable, "-m", "svcnet.testing.reachability",
            "--timeout", str(PROBE_TIMEOUT), *sorted(wanted)]  # fmt: skip
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    lines = res.stdout.strip().splitlines()
    if not lines:
        raise CliError(f"probe from {src.key}: {res.stderr.strip()}")
    outcome: dict[str, str] = json.loads(lines[-1])
    return {wanted[t] for t, o in outcome.items() if o == "ok"}


def run_matrix(
    data_dir: str, namespaces: tuple[str, ...], port: int, proto: str, probe: bool, output: str
) -> int:
    from svcnet.netpol.explain import explanation_json
    from svcnet.netpol.model import Protocol

    def go() -> int:
        cluster = _cluster(_api(data_dir))
        pods = sorted(
            (p for p in cluster.pods.values() if not namespaces or p.key.namespace in namespaces),
            key=lambda p: p.key,
        )
        keys = [p.key for p in pods]
        cells = cluster.matrix(keys, keys, Protocol.parse(proto), port)
        probed: dict[tuple[str, str], bool] | None = None
        if probe:
            with ThreadPoolExecutor(max_workers=8) as pool:
                rows = list(pool.map(lambda p: probe_row(data_dir, p, pods, proto, port), pods))
            probed = {
                (str(s.key), str(t.key)): str(t.key) in row
                for s, row in zip(pods, rows, strict=True)
                for t in pods
            }
        disagree = 0
        if probed is not None:
            disagree = sum(probed[(str(c.src.key), str(c.dst.key))] != c.allowed for c in cells)
        if output == "json":
            out = []
            for c in cells:
                item = explanation_json(c)
                if probed is not None:
                    item["probed"] = probed[(str(c.src.key), str(c.dst.key))]
                out.append(item)
            click.echo(json.dumps({"pods": [str(k) for k in keys], "cells": out}, indent=2))
        else:
            _print_table(keys, cells, probed, port, proto)
        return EXIT_DROPPED if disagree else 0

    return _guarded(go)


def _print_table(
    keys: list[Any],
    cells: list[Explanation],
    probed: dict[tuple[str, str], bool] | None,
    port: int,
    proto: str,
) -> None:
    from rich.console import Console
    from rich.table import Table

    title = f"reachability on {port}/{proto} (rows: from, columns: to)"
    if probed is not None:
        title += "; probed: ! marks where the connection disagrees with the model"
    table = Table(title=title)
    table.add_column("from \\ to")
    for k in keys:
        table.add_column(str(k), justify="center")
    by_pair = {(str(c.src.key), str(c.dst.key)): c for c in cells}
    for s in keys:
        row = []
        for t in keys:
            c = by_pair[(str(s), str(t))]
            mark, colour = ("✓", "green") if c.allowed else ("✗", "red")
            if probed is not None and probed[(str(s), str(t))] != c.allowed:
                mark, colour = f"{mark}!", "bold yellow"
            row.append(f"[{colour}]{mark}[/{colour}]")
        table.add_row(str(s), *row)
    Console().print(table)


@click.group()
def policy() -> None:
    """NetworkPolicy as the nodes enforce it."""


_cluster_name = click.option(
    "--name", "cluster_name", default="svcnet", show_default=True, help="The cluster's name."
)


@policy.command("explain")
@click.option("--from", "src", required=True, metavar="NS/POD", help="The sending pod.")
@click.option("--to", "dst", metavar="NS/POD[:PORT[/PROTO]]", help="The receiving pod.")
@click.option(
    "--to-service",
    "service",
    metavar="NS/SVC:PORT",
    help="A Service port (number or name): each backend is judged on its target port.",
)
@_cluster_name
@click.option("--data-dir", default=None)
def explain_cmd(
    src: str, dst: str | None, service: str | None, cluster_name: str, data_dir: str | None
) -> None:
    """Whether SRC reaches DST (port 80/TCP unless given), and which policy decides it.

    Exit code 0 when allowed, 1 when dropped, 2 on an error.
    """
    if (dst is None) == (service is None):
        raise click.UsageError("give one of --to and --to-service")
    data = data_dir or control.default_data_dir(cluster_name)
    if service is not None:
        raise SystemExit(run_explain_service(data, src, service))
    assert dst is not None
    raise SystemExit(run_explain(data, src, dst))


@policy.command("matrix")
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Only these namespaces.")
@click.option("--port", type=click.IntRange(1, 65535), required=True)
@click.option("--protocol", type=click.Choice(["TCP", "UDP"], case_sensitive=False), default="TCP")
@click.option("--probe", is_flag=True, help="Check every cell by a real connection.")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
@_cluster_name
@click.option("--data-dir", default=None)
def matrix_cmd(
    namespaces: tuple[str, ...],
    port: int,
    protocol: str,
    probe: bool,
    output: str,
    cluster_name: str,
    data_dir: str | None,
) -> None:
    """Pods x pods: which connections the policies allow, computed as the nodes enforce them.

    With --probe every cell is also tried from inside the source pod (1 s timeout); exit code 1
    when a probed cell disagrees with the model, 2 on an error.
    """
    data = data_dir or control.default_data_dir(cluster_name)
    raise SystemExit(run_matrix(data, namespaces, port, protocol.upper(), probe, output))


__all__ = ["parse_endpoint", "parse_service", "policy", "run_explain", "run_matrix"]
