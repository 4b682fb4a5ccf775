"""The ``svcnet`` command.

``svcnet up`` starts the control plane as a background process of its own (so that ``make up``
returns once the cluster answers), records its PID in the cluster's state directory, and merges
a ``svcnet`` context into ``~/.kube/config`` as kind does; ``svcnet down`` stops exactly the
processes it recorded, by PID, and removes what it wrote. ``svcnet apiserver`` runs the API
server in the foreground, for users who want it alone.
"""

from __future__ import annotations

import click

from svcnet.api.ranges import (
    DEFAULT_CLUSTER_CIDR,
    DEFAULT_LB_CIDR,
    DEFAULT_NODE_PORT_RANGE,
    DEFAULT_SERVICE_CIDR,
    DEFAULT_UNDERLAY_CIDR,
)
from svcnet.cli import control
from svcnet.cli.dns import dns
from svcnet.cli.flows import flows
from svcnet.cli.image import image
from svcnet.cli.ingress import ingress
from svcnet.cli.policy import policy


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="svcnet")
def cli() -> None:
    """svcnet: Kubernetes Service networking, for real, on one Linux machine."""


@cli.command()
@click.option("--data-dir", default=None, help="Where the store, certificates and kubeconfig live.")
@click.option(
    "--bind-address",
    "bind_addresses",
    multiple=True,
    default=("127.0.0.1",),
    show_default=True,
    help="Address to listen on (repeatable).",
)
@click.option("--port", default=6443, show_default=True)
@click.option(
    "--store",
    "store_url",
    default=None,
    help="'sqlite:///PATH' (default: DATA_DIR/store.db) or 'memory:'.",
)
@click.option("--service-cluster-ip-range", default=DEFAULT_SERVICE_CIDR, show_default=True)
@click.option("--service-node-port-range", default=DEFAULT_NODE_PORT_RANGE, show_default=True)
@click.option(
    "--advertise-address",
    default=None,
    help="The address the `kubernetes` Service's endpoints point at.",
)
@click.option(
    "--prepare-workers",
    type=click.IntRange(min=0),
    default=None,
    help="Processes that prepare creates (decode, validation, defaulting) beside the "
    "server's own; default: 1 with two or more CPUs, else 0.",
)
def apiserver(
    data_dir: str | None,
    bind_addresses: tuple[str, ...],
    port: int,
    store_url: str | None,
    service_cluster_ip_range: str,
    service_node_port_range: str,
    advertise_address: str | None,
    prepare_workers: int | None,
) -> None:
    """Run the Kubernetes API server in the foreground."""
    control.run_apiserver_foreground(
        data_dir=data_dir or control.default_data_dir("svcnet"),
        bind_addresses=list(bind_addresses),
        port=port,
        store_url=store_url,
        service_cidr=service_cluster_ip_range,
        node_port_range=service_node_port_range,
        advertise_address=advertise_address,
        prepare_workers=prepare_workers,
    )


@cli.command()
@click.option("--name", default="svcnet", show_default=True, help="The cluster's name.")
@click.option("--nodes", default=2, show_default=True, help="How many nodes.")
@click.option("--data-dir", default=None)
@click.option("--upstream-dns", default=None, help="Resolver for names outside the cluster.")
@click.option("--kubeconfig", default=None, help="Kubeconfig to merge the context into.")
@click.option(
    "--prefix",
    default=None,
    hidden=True,
    help="Name prefix of every link, namespace and nft table (default: the name).",
)
@click.option("--port", default=6443, show_default=True, help="The API server's port.")
# The ranges: `up` refuses any that overlaps a route or address already on the machine, and
# names the flag to change, so they are in --help.
@click.option(
    "--underlay-cidr",
    default=DEFAULT_UNDERLAY_CIDR,
    show_default=True,
    help="The nodes' LAN; its first address is the machine's.",
)
@click.option(
    "--pod-cidr",
    default=DEFAULT_CLUSTER_CIDR,
    show_default=True,
    help="Pod addresses, a /24 per node.",
)
@click.option("--service-cidr", default=DEFAULT_SERVICE_CIDR, show_default=True, help="ClusterIPs.")
@click.option(
    "--lb-cidr", default=DEFAULT_LB_CIDR, show_default=True, help="LoadBalancer addresses."
)
@click.option(
    "--wait-dns/--no-wait-dns",
    default=True,
    show_default=True,
    help="Return only once the cluster DNS answers from every node.",
)
def up(
    name: str,
    nodes: int,
    data_dir: str | None,
    upstream_dns: str | None,
    kubeconfig: str | None,
    prefix: str | None,
    port: int,
    underlay_cidr: str,
    pod_cidr: str,
    service_cidr: str,
    lb_cidr: str,
    wait_dns: bool,
) -> None:
    """Start svcnet and return once every node is Ready (and the cluster DNS answers)."""
    control.up(
        name=name,
        nodes=nodes,
        data_dir=data_dir or control.default_data_dir(name),
        upstream_dns=upstream_dns,
        kubeconfig=kubeconfig,
        prefix=prefix,
        port=port,
        underlay_cidr=underlay_cidr,
        pod_cidr=pod_cidr,
        service_cidr=service_cidr,
        lb_cidr=lb_cidr,
        wait_dns=wait_dns,
    )


@cli.group()
def node() -> None:
    """Stop and start nodes (simulated node failures)."""


@node.command("stop")
@click.argument("node_name")
@click.option("--name", default="svcnet", show_default=True)
@click.option("--data-dir", default=None)
def node_stop(node_name: str, name: str, data_dir: str | None) -> None:
    """Stop NODE's agent and its pods' processes; the node's namespace stays."""
    control.node_stop(name, data_dir or control.default_data_dir(name), node_name, start=False)


@node.command("start")
@click.argument("node_name")
@click.option("--name", default="svcnet", show_default=True)
@click.option("--data-dir", default=None)
def node_start(node_name: str, name: str, data_dir: str | None) -> None:
    """Start NODE's agent again."""
    control.node_stop(name, data_dir or control.default_data_dir(name), node_name, start=True)


@cli.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("pod")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("-c", "--container", default="")
@click.option("--name", default="svcnet", show_default=True)
@click.option("--data-dir", default=None)
def exec_(
    pod: str,
    command: tuple[str, ...],
    namespace: str,
    container: str,
    name: str,
    data_dir: str | None,
) -> None:
    """Run COMMAND in POD's container (through its node's agent) and exit with its code."""
    from svcnet.cluster.podexec import exec_in_pod

    raise SystemExit(
        exec_in_pod(
            data_dir or control.default_data_dir(name), namespace, pod, container, list(command)
        )
    )


@cli.command()
@click.option("--name", default="svcnet", show_default=True)
@click.option("--data-dir", default=None)
@click.option("--kubeconfig", default=None)
def down(name: str, data_dir: str | None, kubeconfig: str | None) -> None:
    """Stop svcnet and remove everything it made."""
    control.down(
        name=name, data_dir=data_dir or control.default_data_dir(name), kubeconfig=kubeconfig
    )


@cli.command()
@click.option("--name", default="svcnet", show_default=True)
@click.option("--data-dir", default=None)
def status(name: str, data_dir: str | None) -> None:
    """Show what svcnet is running."""
    control.status(name=name, data_dir=data_dir or control.default_data_dir(name))


cli.add_command(dns)
cli.add_command(policy)
cli.add_command(image)
cli.add_command(ingress)
cli.add_command(flows)


def main() -> None:
    cli(prog_name="svcnet")


if __name__ == "__main__":
    main()
