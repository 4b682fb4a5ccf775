"""The workload controllers — ReplicaSet, Deployment, StatefulSet, DaemonSet, Job, CronJob,
ReplicationController.

``build_workload_controllers`` builds them (sharing the factory's informers) with one event
recorder each, named by the module's COMPONENT as upstream names the source
(``replicaset-controller``, ``deployment-controller``, ``statefulset-controller``,
``daemonset-controller``, ``job-controller``, ``cronjob-controller``,
``replication-controller``); the control-plane process starts them with the
cluster-wide ones (:mod:`svcnet.cluster.controllers`). ``run_workload_controllers`` builds and
starts them alone (integration tests) and returns them with their tasks.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from svcnet.api.registry import REPLICATIONCONTROLLERS
from svcnet.client.events import EventRecorder
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.rest import ApiClient
from svcnet.controllers.cronjob.controller import COMPONENT as CRONJOB_COMPONENT
from svcnet.controllers.cronjob.controller import CronJobController
from svcnet.controllers.daemonset.controller import COMPONENT as DAEMONSET_COMPONENT
from svcnet.controllers.daemonset.controller import DaemonSetController
from svcnet.controllers.deployment.controller import COMPONENT as DEPLOYMENT_COMPONENT
from svcnet.controllers.deployment.controller import DeploymentController
from svcnet.controllers.disruption.controller import COMPONENT as DISRUPTION_SOURCE
from svcnet.controllers.disruption.controller import DisruptionController
from svcnet.controllers.job.controller import COMPONENT as JOB_COMPONENT
from svcnet.controllers.job.controller import JobController
from svcnet.controllers.podautoscaler.controller import COMPONENT as HPA_COMPONENT
from svcnet.controllers.podautoscaler.controller import HorizontalPodAutoscalerController
from svcnet.controllers.replicaset.controller import COMPONENT as REPLICASET_COMPONENT
from svcnet.controllers.replicaset.controller import ReplicaSetController
from svcnet.controllers.start import Runnable, start_controllers
from svcnet.controllers.statefulset.controller import COMPONENT as STATEFULSET_COMPONENT
from svcnet.controllers.statefulset.controller import StatefulSetController
from svcnet.util.clock import REAL_CLOCK, Clock

# Upstream's replication manager reports as "replication-controller".
REPLICATION_COMPONENT = "replication-controller"


@dataclass(frozen=True)
class WorkloadControllers:
    replicasets: ReplicaSetController
    deployments: DeploymentController
    statefulsets: StatefulSetController
    daemonsets: DaemonSetController
    jobs: JobController
    cronjobs: CronJobController
    replicationcontrollers: ReplicaSetController
    disruption: DisruptionController
    autoscalers: HorizontalPodAutoscalerController
    recorders: tuple[EventRecorder, ...]
    tasks: tuple[asyncio.Task[None], ...] = ()

    def controllers(self) -> list[tuple[str, Runnable]]:
        """Each controller under its module's COMPONENT, which names its task."""
        return [
            (REPLICASET_COMPONENT, self.replicasets),
            (DEPLOYMENT_COMPONENT, self.deployments),
            (STATEFULSET_COMPONENT, self.statefulsets),
            (DAEMONSET_COMPONENT, self.daemonsets),
            (JOB_COMPONENT, self.jobs),
            (CRONJOB_COMPONENT, self.cronjobs),
            (REPLICATION_COMPONENT, self.replicationcontrollers),
            ("disruption-controller", self.disruption),
            (HPA_COMPONENT, self.autoscalers),
        ]

    async def flush_events(self) -> None:
        for r in self.recorders:
            await r.flush()


def build_workload_controllers(
    client: ApiClient,
    factory: SharedInformerFactory,
    *,
    workers: int = 2,
    clock: Clock = REAL_CLOCK,
    host: str = "",
) -> WorkloadControllers:
    """The controllers and their event recorders, built (their informers registered), not started."""

    def recorder(component: str) -> EventRecorder:
        return EventRecorder(client, component, host, clock=clock)

    recorders = tuple(
        recorder(c)
        for c in (
            REPLICASET_COMPONENT,
            DEPLOYMENT_COMPONENT,
            STATEFULSET_COMPONENT,
            DAEMONSET_COMPONENT,
            JOB_COMPONENT,
            CRONJOB_COMPONENT,
            REPLICATION_COMPONENT,
            DISRUPTION_SOURCE,
            HPA_COMPONENT,
        )
    )
    rs_rec, d_rec, sts_rec, ds_rec, job_rec, cj_rec, rc_rec, pdb_rec, hpa_rec = recorders
    return WorkloadControllers(
        ReplicaSetController(client, factory, rs_rec, workers=workers, clock=clock),
        DeploymentController(client, factory, d_rec, workers=workers, clock=clock),
        StatefulSetController(client, factory, sts_rec, workers=workers, clock=clock),
        DaemonSetController(client, factory, ds_rec, workers=workers, clock=clock),
        JobController(client, factory, job_rec, workers=workers, clock=clock),
        CronJobController(client, factory, cj_rec, workers=workers, clock=clock),
        ReplicaSetController(
            client, factory, rc_rec, workers=workers, clock=clock, owners=REPLICATIONCONTROLLERS
        ),
        DisruptionController(client, factory, pdb_rec, clock=clock),
        HorizontalPodAutoscalerController(client, factory, hpa_rec, clock=clock),
        recorders,
    )


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
    built = build_workload_controllers(client, factory, workers=workers, clock=clock, host=host)
    tasks = start_controllers(factory, tg, built.recorders, built.controllers())
    return dataclasses.replace(built, tasks=tuple(tasks))
