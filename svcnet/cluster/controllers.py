"""The cluster-wide controllers the control-plane process runs, sharing one client and one
informer factory (as kube-controller-manager shares its informers)."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

from svcnet.api.ranges import DEFAULT_CLUSTER_CIDR
from svcnet.client.events import EventRecorder
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.kubeconfig import load_kubeconfig
from svcnet.client.rest import ApiClient
from svcnet.controllers.endpoints import controller as endpoints
from svcnet.controllers.endpointslice import controller as endpointslice
from svcnet.controllers.gc import GarbageCollector
from svcnet.controllers.lbipam import controller as lbipam
from svcnet.controllers.nodeipam import controller as nodeipam
from svcnet.controllers.nodelifecycle import controller as nodelifecycle
from svcnet.controllers.rootcacert.controller import RootCACertPublisher
from svcnet.controllers.scheduler.controller import Scheduler
from svcnet.controllers.scheduler.plan import DEFAULT_SCHEDULER
from svcnet.controllers.serviceaccount.controller import ServiceAccountsController
from svcnet.controllers.start import Runnable, start_controllers
from svcnet.controllers.volume import controller as volume
from svcnet.controllers.workloads import build_workload_controllers

log = logging.getLogger(__name__)


async def run(
    kubeconfig: Path,
    cluster_cidr: str = DEFAULT_CLUSTER_CIDR,
    lb_pools: dict[str, list[str]] | None = None,
) -> None:
    """Run every controller until cancelled."""
    config = load_kubeconfig(kubeconfig)
    host = socket.gethostname()
    async with ApiClient(config) as client:
        factory = SharedInformerFactory(client)
        # Each recorder under the source its controller's events name, as upstream's do.
        recorders = {
            source: EventRecorder(client, source, host)
            for source in (
                DEFAULT_SCHEDULER,
                nodeipam.COMPONENT,
                nodelifecycle.EVENT_SOURCE,
                endpointslice.COMPONENT,
                endpoints.EVENT_SOURCE,
                lbipam.COMPONENT,
                volume.COMPONENT,
            )
        }
        # Controllers register their informers with the factory when built: build them all
        # before starting it.
        components: dict[str, Runnable] = {
            "garbage-collector": GarbageCollector(client, factory),
            "scheduler": Scheduler(client, factory, recorders[DEFAULT_SCHEDULER]),
            "node-ipam": nodeipam.NodeIpam(
                client, factory, cluster_cidr, recorder=recorders[nodeipam.COMPONENT]
            ),
            "node-lifecycle": nodelifecycle.NodeLifecycle(
                client, factory, recorders[nodelifecycle.EVENT_SOURCE]
            ),
            "endpointslice": endpointslice.EndpointSliceController(
                client, factory, recorders[endpointslice.COMPONENT]
            ),
            "endpoints": endpoints.EndpointsController(
                client, factory, recorders[endpoints.EVENT_SOURCE]
            ),
            "lb-ipam": lbipam.LoadBalancerIpam(
                client, factory, lb_pools, recorders[lbipam.COMPONENT]
            ),
            "serviceaccount": ServiceAccountsController(client, factory),
            "persistentvolume-binder": volume.PersistentVolumeController(
                client, factory, recorders[volume.COMPONENT]
            ),
            # The CA the API server's serving certificate chains to: the one this process
            # verifies the API server with (kube-controller-manager's --root-ca-file).
            "root-ca-cert-publisher": RootCACertPublisher(
                client, factory, (config.ca_data or b"").decode()
            ),
        }
        workloads = build_workload_controllers(client, factory, host=host)
        controllers = [*components.items(), *workloads.controllers()]
        async with asyncio.TaskGroup() as tg:
            start_controllers(factory, tg, [*recorders.values(), *workloads.recorders], controllers)
            log.info("controllers started: %s", ", ".join(name for name, _ in controllers))
