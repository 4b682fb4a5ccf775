"""The control-plane process: the API server and the cluster-wide controllers, in one process.

The controllers talk to the API server over HTTPS like any other client (through
``svcnet.client``), exactly as kube-controller-manager does: one process is a packaging
choice, not a shortcut — nothing here reaches into the store.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
from pathlib import Path

from svcnet.api.ranges import (
    DEFAULT_CLUSTER_CIDR,
    DEFAULT_LB_CIDR,
    DEFAULT_NODE_PORT_RANGE,
    DEFAULT_SERVICE_CIDR,
)
from svcnet.apiserver.server import ApiServer, ApiServerConfig
from svcnet.cluster import controllers as cluster_controllers
from svcnet.cluster.up import JSON_KUBECONFIG
from svcnet.util.gctune import tune_gc
from svcnet.util.log import setup_logging

log = logging.getLogger(__name__)


def write_json_kubeconfig(server: ApiServer) -> Path:
    """The API server's kubeconfig again, as JSON, next to it: what the node agents read.

    JSON is YAML (kubectl reads it too) and svcnet.client parses it with the json module:
    each agent then never imports yaml (~1.4 MiB resident per agent, counted by the
    idle-cluster figure of issue 3). Written after the YAML one, atomically, mode 0600 (it
    holds the token); the agents wait for this file before starting.
    """
    path = server.kubeconfig_path.with_name(JSON_KUBECONFIG)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(server.kubeconfig(), f, indent=2)
    os.replace(tmp, path)
    return path


async def serve(
    config: ApiServerConfig,
    controllers: bool = True,
    cluster_cidr: str = DEFAULT_CLUSTER_CIDR,
    lb_cidr: str = DEFAULT_LB_CIDR,
) -> None:
    server = ApiServer(config)
    await server.start()
    # This process is the API server's (and its controllers'): the collector settings of one.
    tune_gc()
    write_json_kubeconfig(server)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"serving {server.url} kubeconfig={server.kubeconfig_path}", flush=True)
    try:
        if controllers:
            async with asyncio.TaskGroup() as tg:
                runner = tg.create_task(
                    cluster_controllers.run(
                        server.kubeconfig_path, cluster_cidr, {"default": [lb_cidr]}
                    ),
                    name="controllers",
                )
                await stop.wait()
                runner.cancel()
        else:
            await stop.wait()
    except* asyncio.CancelledError:
        pass
    finally:
        with contextlib.suppress(Exception):
            await server.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m svcnet.cluster.controlplane")
    p.add_argument("--data-dir", required=True, type=Path)
    p.add_argument("--listen", action="append", default=None)
    p.add_argument("--port", type=int, default=6443)
    p.add_argument("--store", default="")
    p.add_argument("--service-cidr", default=DEFAULT_SERVICE_CIDR)
    p.add_argument("--node-port-range", default=DEFAULT_NODE_PORT_RANGE)
    p.add_argument("--advertise-address", default="127.0.0.1")
    p.add_argument("--cluster-cidr", default=DEFAULT_CLUSTER_CIDR)
    p.add_argument("--lb-cidr", default=DEFAULT_LB_CIDR)
    p.add_argument("--no-controllers", action="store_true")
    args = p.parse_args(argv)
    setup_logging("controlplane")
    low, high = (int(x) for x in args.node_port_range.split("-", 1))
    config = ApiServerConfig(
        data_dir=args.data_dir,
        listen_addresses=tuple(args.listen or ["127.0.0.1"]),
        port=args.port,
        store_url=args.store,
        service_cidr=args.service_cidr,
        node_port_range=(low, high),
        advertise_address=args.advertise_address,
    )
    import uvloop

    uvloop.install()
    asyncio.run(
        serve(
            config,
            controllers=not args.no_controllers,
            cluster_cidr=args.cluster_cidr,
            lb_cidr=args.lb_cidr,
        )
    )


if __name__ == "__main__":
    main()
