"""The workload controllers — ReplicaSet, Deployment, StatefulSet, DaemonSet, Job — started
together.

``run_workload_controllers(client, factory, tg)`` is what the control-plane process calls:
it builds the controllers (sharing the factory's informers), starts the informers,
one event recorder per controller (events name their source component as upstream does:
``replicaset-controller``, ``deployment-controller``, ``statefulset-controller``,
``daemonset-controller``, ``job-controller``) and the
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
from svcnet.controllers.daemonset.controller import COMPONENT as DAEMONSET_COMPONENT
from svcnet.controllers.daemonset.controller import DaemonSetController
from svcnet.controllers.deployment.controller import COMPONENT as DEPLOYMENT_COMPONENT
from svcnet.controllers.deployment.controller import DeploymentController
from svcnet.controllers.job.controller import COMPONENT as JOB_COMPONENT
from svcnet.controllers.job.controller import JobController
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
    daemonsets: DaemonSetController
    jobs: JobController
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
    """Build and start the controllers in ``tg``; also starts the factory's informers.

    Without ``tg`` the tasks are bare (``.tasks``): the caller cancels them (test fixtures,
    whose setup and teardown run in different tasks, cannot hold a TaskGroup open)."""
    rs_rec = EventRecorder(client, REPLICASET_COMPONENT, host, clock=clock)
    d_rec = EventRecorder(client, DEPLOYMENT_COMPONENT, host, clock=clock)
    sts_rec = EventRecorder(client, STATEFULSET_COMPONENT, host, clock=clock)
    rs_c = ReplicaSetController(client, factory, rs_rec, workers=workers, clock=clock)
    d_c = DeploymentController(client, factory, d_rec, workers=workers, clock=clock)
    sts_c = StatefulSetController(client, factory, sts_rec, workers=workers, clock=clock)
    ds_rec = EventRecorder(client, DAEMONSET_COMPONENT, host, clock=clock)
    job_rec = EventRecorder(client, JOB_COMPONENT, host, clock=clock)
    ds_c = DaemonSetController(client, factory, ds_rec, workers=workers, clock=clock)
    job_c = JobController(client, factory, job_rec, workers=workers, clock=clock)

    def spawn(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        return tg.create_task(coro, name=name) if tg else asyncio.create_task(coro, name=name)

    tasks = list(factory.start(tg))
    recorders = (rs_rec, d_rec, sts_rec, ds_rec, job_rec)
    for rec in recorders:
        tasks.append(spawn(rec.run(), f"events-{rec.component}"))
    tasks.append(spawn(rs_c.run(), "replicaset-controller"))
    tasks.append(spawn(d_c.run(), "deployment-controller"))
    tasks.append(spawn(sts_c.run(), "statefulset-controller"))
    tasks.append(spawn(ds_c.run(), DAEMONSET_COMPONENT))
    tasks.append(spawn(job_c.run(), JOB_COMPONENT))
    return WorkloadControllers(rs_c, d_c, sts_c, ds_c, job_c, recorders, tuple(tasks))
