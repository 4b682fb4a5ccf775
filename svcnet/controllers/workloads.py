"""The workload controllers — ReplicaSet, Deployment, StatefulSet — started together.

``run_workload_controllers(client, factory, tg)`` is what the control-plane process calls:
it builds the three controllers (sharing the factory's informers), starts the informers,
one event recorder per controller (events name their source component as upstream does:
``replicaset-controller``, ``deployment-controller``, ``statefulset-controller``) and the
controllers' workers as tasks of ``tg``, and returns the controllers (for metrics and tests).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from svcnet.client.events import EventRecorder
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.rest import ApiClient
from svcnet.controllers.deployment.controller import COMPONENT as DEPLOYMENT_COMPONENT
from svcnet.controllers.deployment.controller import DeploymentController
from svcnet.controllers.replicaset.controller import COMPONENT as REPLICASET_COMPONENT
from svcnet.controllers.replicaset.controller import ReplicaSetController
from svcnet.controllers.statefulset.controller import COMPONENT as STATEFULSET_COMPONENT
from svcnet.controllers.statefulset.controller import StatefulSetController
from svcnet.util.clock import REAL_CLOCK, Clock


@dataclass(frozen=True)
class WorkloadControllers:
    replicasets: ReplicaSetController
    deployments: DeploymentController
    statefulsets: StatefulSetController
    recorders: tuple[EventRecorder, ...]
    tasks: tuple[asyncio.Task[None], ...]

    async def flush_events(self) -> None:
        for r in self.recorders:
            await r.flush()


def run_workload_controllers(
    client: ApiClient,
    factory: SharedInformerFactory,
    tg: asyncio.TaskGroup | None = None,
    *,
    workers: int = 2,
    clock: Clock = REAL_CLOCK,
    host: str = "",
) -> WorkloadControllers:
    """Build and start the three controllers in ``tg``; also starts the factory's informers.

    Without ``tg`` the tasks are bare (``.tasks``): the caller cancels them (test fixtures,
    whose setup and teardown run in different tasks, cannot hold a TaskGroup open)."""
    rs_rec = EventRecorder(client, REPLICASET_COMPONENT, host, clock=clock)
    d_rec = EventRecorder(client, DEPLOYMENT_COMPONENT, host, clock=clock)
    sts_rec = EventRecorder(client, STATEFULSET_COMPONENT, host, clock=clock)
    rs_c = ReplicaSetController(client, factory, rs_rec, workers=workers, clock=clock)
    d_c = DeploymentController(client, factory, d_rec, workers=workers, clock=clock)
    sts_c = StatefulSetController(client, factory, sts_rec, workers=workers, clock=clock)

    def spawn(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        return tg.create_task(coro, name=name) if tg else asyncio.create_task(coro, name=name)

    tasks = list(factory.start(tg))
    recorders = (rs_rec, d_rec, sts_rec)
    for rec in recorders:
        tasks.append(spawn(rec.run(), f"events-{rec.component}"))
    tasks.append(spawn(rs_c.run(), "replicaset-controller"))
    tasks.append(spawn(d_c.run(), "deployment-controller"))
    tasks.append(spawn(sts_c.run(), "statefulset-controller"))
    return WorkloadControllers(rs_c, d_c, sts_c, recorders, tuple(tasks))
