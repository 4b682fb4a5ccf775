"""The cluster-wide controllers the control-plane process runs, sharing one client and one
informer factory (as kube-controller-manager shares its informers)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from svcnet.client.informer import SharedInformerFactory
from svcnet.client.kubeconfig import load_kubeconfig
from svcnet.client.rest import ApiClient
from svcnet.controllers.gc import GarbageCollector
from svcnet.controllers.workloads import run_workload_controllers

log = logging.getLogger(__name__)


async def run(kubeconfig: Path) -> None:
    """Run every controller until cancelled."""
    config = load_kubeconfig(kubeconfig)
    async with ApiClient(config) as client:
        factory = SharedInformerFactory(client)
        # Controllers register their informers with the factory when built: build them all
        # before starting it.
        gc = GarbageCollector(client, factory)
        async with asyncio.TaskGroup() as tg:
            run_workload_controllers(client, factory, tg)
            factory.start(tg)
            tg.create_task(gc.run(), name="garbage-collector")
            log.info("controllers started: garbage-collector, replicaset, deployment, statefulset")
