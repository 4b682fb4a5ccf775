"""The cluster-wide controllers the control-plane process runs, sharing one client and one
informer factory (as kube-controller-manager shares its informers)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Protocol

from svcnet.api.ranges import DEFAULT_CLUSTER_CIDR
from svcnet.client.events import EventRecorder
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.kubeconfig import load_kubeconfig
from svcnet.client.rest import ApiClient
from svcnet.controllers.endpoints.controller import EndpointsController
from svcnet.controllers.endpointslice.controller import EndpointSliceController
from svcnet.controllers.gc import GarbageCollector
from svcnet.controllers.lbipam.controller import LoadBalancerIpam
from svcnet.controllers.nodeipam.controller import NodeIpam
from svcnet.controllers.nodelifecycle.controller import NodeLifecycle
from svcnet.controllers.scheduler.controller import Scheduler
from svcnet.controllers.workloads import run_workload_controllers

log = logging.getLogger(__name__)


class Runnable(Protocol):
    def run(self) -> Coroutine[Any, Any, None]: ...


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

        def recorder(component: str) -> EventRecorder:
            return EventRecorder(client, component, host)

        recorders = {
            name: recorder(name)
            for name in (
                "default-scheduler",
                "node-ipam-controller",
                "node-controller",
                "endpointslice-controller",
                "endpoint-controller",
                "svcnet-lb-controller",
            )
        }
        # Controllers register their informers with the factory when built: build them all
        # before starting it.
        components: dict[str, Runnable] = {
            "garbage-collector": GarbageCollector(client, factory),
            "scheduler": Scheduler(client, factory, recorders["default-scheduler"]),
            "node-ipam": NodeIpam(
                client, factory, cluster_cidr, recorder=recorders["node-ipam-controller"]
            ),
            "node-lifecycle": NodeLifecycle(client, factory, recorders["node-controller"]),
            "endpointslice": EndpointSliceController(
                client, factory, recorders["endpointslice-controller"]
            ),
            "endpoints": EndpointsController(client, factory, recorders["endpoint-controller"]),
            "lb-ipam": LoadBalancerIpam(
                client, factory, lb_pools, recorders["svcnet-lb-controller"]
            ),
        }
        async with asyncio.TaskGroup() as tg:
            run_workload_controllers(client, factory, tg, host=host)
            factory.start(tg)
            for name, rec in recorders.items():
                tg.create_task(rec.run(), name=f"events-{name}")
            for name, component in components.items():
                tg.create_task(component.run(), name=name)
            log.info(
                "controllers started: %s, replicaset, deployment, statefulset, daemonset, job",
                ", ".join(components),
            )
