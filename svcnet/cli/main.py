"""The ``svcnet`` command.

``svcnet up`` starts the control plane as a background process of its own (so that ``make up``
returns once the cluster answers), records its PID in the cluster's state directory, and merges
a ``svcnet`` context into ``~/.kube/config`` as kind does; ``svcnet down`` stops exactly the
processes it recorded, by PID, and removes what it wrote. ``svcnet apiserver`` runs the API
server in the foreground, for users who want it alone.
"""

from __future__ import annotations

import click

from svcnet.cli import control


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="svcnet")
def cli() -> None:
    """svcnet: Kubernetes Service networking, for real, on one Linux machine."""


@cli.command()
@click.option("--data-dir", default=None, help="Where the store, certificates and kubeconfig live.")
@click.option("--bind-address", "bind_addresses", multiple=True, default=("127.0.0.1",),
              show_default=True, help="Address to listen on (repeatable).")
@click.option("--port", default=6443, show_default=True)
@click.option("--store", "store_url", default=None,
              help="'sqlite:///PATH' (default: DATA_DIR/store.db) or 'memory:'.")
@click.option("--service-cluster-ip-range", default="10.96.0.0/16", show_default=True)
@click.option("--service-node-port-range", default="30000-32767", show_default=True)
@click.option("--advertise-address", default=None,
              help="The address the `kubernetes` Service's endpoints point at.")
def apiserver(
    data_dir: str | None,
    bind_addresses: tuple[str, ...],
    port: int,
    store_url: str | None,
    service_cluster_ip_range: str,
    service_node_port_range: str,
    advertise_address: str | None,
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
    )


@cli.command()
@click.option("--name", default="svcnet", show_default=True, help="The cluster's name.")
@click.option("--nodes", default=2, show_default=True, help="How many nodes.")
@click.option("--data-dir", default=None)
@click.option("--upstream-dns", default=None, help="Resolver for names outside the cluster.")
@click.option("--kubeconfig", default=None, help="Kubeconfig to merge the context into.")
def up(name: str, nodes: int, data_dir: str | None, upstream_dns: str | None,
       kubeconfig: str | None) -> None:
    """Start svcnet and return once it answers."""
    control.up(name=name, nodes=nodes, data_dir=data_dir or control.default_data_dir(name),
               upstream_dns=upstream_dns, kubeconfig=kubeconfig)


@cli.command()
@click.option("--name", default="svcnet", show_default=True)
@click.option("--data-dir", default=None)
@click.option("--kubeconfig", default=None)
def down(name: str, data_dir: str | None, kubeconfig: str | None) -> None:
    """Stop svcnet and remove everything it made."""
    control.down(name=name, data_dir=data_dir or control.default_data_dir(name),
                 kubeconfig=kubeconfig)


@cli.command()
@click.option("--name", default="svcnet", show_default=True)
@click.option("--data-dir", default=None)
def status(name: str, data_dir: str | None) -> None:
    """Show what svcnet is running."""
    control.status(name=name, data_dir=data_dir or control.default_data_dir(name))


def main() -> None:
    cli(prog_name="svcnet")


if __name__ == "__main__":
    main()
