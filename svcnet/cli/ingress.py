"""``svcnet ingress convert``: Ingresses (files or the cluster) → Gateway + HTTPRoutes YAML.

What could not be translated is printed as comments at the head of the output and on stderr
(:mod:`svcnet.ingress.convert`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml

from svcnet.cli import control

EXIT_ERROR = 2


def run_convert(
    files: tuple[str, ...], data_dir: str, gateway: str, gateway_class: str
) -> tuple[str, list[str]] | None:
    from svcnet.ingress.convert import convert, ingresses_in

    if files:
        docs = []
        for f in files:
            try:
                text = sys.stdin.read() if f == "-" else Path(f).read_text(encoding="utf-8")
            except OSError as e:
                click.echo(f"error: {f}: {e.strerror}", err=True)
                return None
            try:
                docs += list(yaml.safe_load_all(text))
            except yaml.YAMLError as e:
                click.echo(f"error: {f}: {e}", err=True)
                return None
        ingresses = ingresses_in(docs)
    else:
        from svcnet.cluster.up import api_get, load_cluster

        cfg = load_cluster(data_dir)
        if cfg is None:
            click.echo(f"no svcnet cluster in {data_dir}: run `svcnet up` or give -f", err=True)
            return None
        body = api_get(cfg.apiserver_kubeconfig, "/apis/networking.k8s.io/v1/ingresses", timeout=10)
        if body is None:
            click.echo("could not list ingresses from the API server", err=True)
            return None
        ingresses = list(body.get("items") or [])
    result = convert(ingresses, gateway, gateway_class)
    head = "".join(f"# not translated: {n}\n" for n in result.notes)
    return head + yaml.safe_dump_all(result.objects, sort_keys=False), result.notes


@click.group()
def ingress() -> None:
    """The ingress controller's tools."""


@ingress.command("convert")
@click.option("-f", "--filename", "files", multiple=True, help="A YAML file ('-': stdin).")
@click.option("--gateway", default="svcnet", show_default=True, help="The Gateways' name.")
@click.option("--gateway-class", default="svcnet", show_default=True)
@click.option("--name", "cluster_name", default="svcnet", show_default=True)
@click.option("--data-dir", default=None)
def convert_cmd(
    files: tuple[str, ...],
    gateway: str,
    gateway_class: str,
    cluster_name: str,
    data_dir: str | None,
) -> None:
    """Print the Gateway and HTTPRoutes equivalent to the Ingresses of FILES (or the
    cluster's), naming what could not be translated."""
    out = run_convert(
        files, data_dir or control.default_data_dir(cluster_name), gateway, gateway_class
    )
    if out is None:
        raise SystemExit(EXIT_ERROR)
    text, notes = out
    click.echo(text, nl=False)
    for n in notes:
        click.echo(f"warning: not translated: {n}", err=True)


__all__ = ["ingress", "run_convert"]
