"""``svcnet policy explain --from NS/POD --to NS/POD[:PORT[/PROTO]]``: why a connection passes.

The cluster's pods, namespaces and NetworkPolicies are read from the API and compiled with the
compiler every node runs (:mod:`svcnet.netpol.explain`): the answer is what the kernel of the
sender's node and of the receiver's node enforce, once they have synced.
"""

from __future__ import annotations

import click

from svcnet.cli import control

EXIT_DROPPED = 1
EXIT_ERROR = 2


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


def run_explain(data_dir: str, src: str, dst: str) -> int:
    from svcnet.cluster.up import api_get, load_cluster
    from svcnet.netpol.explain import UnknownPodError, explain, render
    from svcnet.netpol.model import (
        PodKey,
        Protocol,
        namespace_info,
        pod_info,
        policy_info,
    )

    s_ns, s_pod, _, _ = parse_endpoint(src, with_port=False)
    d_ns, d_pod, port, proto = parse_endpoint(dst, with_port=True)
    cfg = load_cluster(data_dir)
    if cfg is None:
        click.echo(f"no svcnet cluster in {data_dir}: run `svcnet up` first", err=True)
        return EXIT_ERROR
    lists = {}
    for what, path in (
        ("pods", "/api/v1/pods"),
        ("namespaces", "/api/v1/namespaces"),
        ("networkpolicies", "/apis/networking.k8s.io/v1/networkpolicies"),
    ):
        body = api_get(cfg.apiserver_kubeconfig, path, timeout=10)
        if body is None:
            click.echo(f"could not list {what} from the API server", err=True)
            return EXIT_ERROR
        lists[what] = body.get("items") or []
    pods = [p for p in (pod_info(o) for o in lists["pods"]) if p is not None]
    try:
        answer = explain(
            [policy_info(o) for o in lists["networkpolicies"]],
            pods,
            [namespace_info(o) for o in lists["namespaces"]],
            PodKey(s_ns, s_pod),
            PodKey(d_ns, d_pod),
            Protocol.parse(proto),
            port or 80,
        )
    except UnknownPodError as e:
        click.echo(f"Error: {e}", err=True)
        return EXIT_ERROR
    click.echo(render(answer), nl=False)
    return 0 if answer.allowed else EXIT_DROPPED


@click.group()
def policy() -> None:
    """NetworkPolicy as the nodes enforce it."""


@policy.command("explain")
@click.option("--from", "src", required=True, metavar="NS/POD", help="The sending pod.")
@click.option(
    "--to", "dst", required=True, metavar="NS/POD[:PORT[/PROTO]]", help="The receiving pod."
)
@click.option(
    "--name", "cluster_name", default="svcnet", show_default=True, help="The cluster's name."
)
@click.option("--data-dir", default=None)
def explain_cmd(src: str, dst: str, cluster_name: str, data_dir: str | None) -> None:
    """Whether SRC reaches DST (port 80/TCP unless given), and which policy decides it.

    Exit code 0 when allowed, 1 when dropped, 2 on an error.
    """
    raise SystemExit(run_explain(data_dir or control.default_data_dir(cluster_name), src, dst))


__all__ = ["parse_endpoint", "policy", "run_explain"]
