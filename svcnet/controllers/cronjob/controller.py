"""The CronJob controller, wired: informers (CronJobs, Jobs) → queue → reconcile → API.

A Job event enqueues the CronJob that controls it; each sync returns the time until the
next schedule as its requeue, so the controller wakes on the schedule without polling. The
clock is injected: tests drive a fake one past a schedule time instead of waiting a minute.
"""

from __future__ import annotations

import logging

from svcnet.api.errors import AlreadyExists, ApiError, NotFound
from svcnet.api.objects import ObjView, meta, name, uid
from svcnet.api.registry import CRONJOBS, JOBS
from svcnet.client.events import NORMAL, WARNING, EventRecorder
from svcnet.client.informer import (
    NAMESPACE_INDEX,
    DeletedFinalStateUnknown,
    Informer,
    SharedInformerFactory,
    index_by_namespace,
    unwrap,
)
from svcnet.client.rest import ApiClient
from svcnet.controllers.cronjob.plan import add_active, plan_cron_job
from svcnet.controllers.ownership import resolve_controller_ref
from svcnet.controllers.podutil import controller_ref
from svcnet.controllers.runtime import (
    DONE,
    Controller,
    Result,
    TemporaryError,
    enqueue_own_key,
    on_any_change,
    write_status_if_changed,
)
from svcnet.util.clock import REAL_CLOCK, Clock

log = logging.getLogger(__name__)

COMPONENT = "cronjob-controller"


class CronJobController:
    def __init__(
        self,
        client: ApiClient,
        factory: SharedInformerFactory,
        recorder: EventRecorder,
        *,
        workers: int = 2,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.client = client
        self.clock = clock
        self.recorder = recorder
        indexers = {NAMESPACE_INDEX: index_by_namespace}
        self.cronjobs: Informer = factory.informer_for(CRONJOBS, indexers=indexers)
        self.jobs: Informer = factory.informer_for(JOBS, indexers=indexers)
        self.controller = Controller(
            CRONJOBS.singular,
            self.reconcile,
            workers=workers,
            informers=[self.cronjobs, self.jobs],
            recorder=recorder,
            clock=clock,
        )
        self.cronjobs.add_event_handler(enqueue_own_key(self.controller))
        self.jobs.add_event_handler(on_any_change(self._job_changed))

    def _job_changed(self, obj: ObjView | DeletedFinalStateUnknown) -> None:
        job = unwrap(obj)
        key = resolve_controller_ref(self.cronjobs.store, CRONJOBS.kind, job, controller_ref(job))
        if key is not None:
            self.controller.enqueue(key)

    async def run(self) -> None:
        await self.controller.run()

    async def reconcile(self, key: str) -> Result:
        cj = self.cronjobs.store.get(key)
        if cj is None:
            return DONE
        ns = str(meta(cj).get("namespace") or "")
        jobs = [
            j
            for j in self.jobs.store.by_index(NAMESPACE_INDEX, ns)
            if (controller_ref(j) or {}).get("uid") == uid(cj)
        ]
        plan = plan_cron_job(cj, jobs, self.clock.now())
        for event in plan.events:
            self.recorder.event(cj, event.type, event.reason, event.message)
        for job_name, job_uid in plan.delete:
            try:
                await self.client.delete(
                    JOBS,
                    job_name,
                    ns,
                    propagation_policy="Background",
                    preconditions={"uid": job_uid},
                )
            except NotFound:
                continue
            except ApiError as e:
                self.recorder.event(cj, WARNING, "FailedDelete", f"Deleted job: {e}")
                raise TemporaryError(f"deleting job {job_name}: {e}") from e
            self.recorder.event(cj, NORMAL, "SuccessfulDelete", f"Deleted job {job_name}")
        if plan.create is not None:
            try:
                created = await self.client.create(plan.create, namespace=ns)
            except AlreadyExists:
                # Created by an earlier sync whose status write was lost: adopt it if ours.
                created = await self.client.get(JOBS, str(plan.create["metadata"]["name"]), ns)
                if (controller_ref(created) or {}).get("uid") != uid(cj):
                    return DONE
            except ApiError as e:
                self.recorder.event(cj, WARNING, "FailedCreate", f"Error creating job: {e}")
                raise TemporaryError(f"creating job: {e}") from e
            else:
                self.recorder.event(cj, NORMAL, "SuccessfulCreate", f"Created job {name(created)}")
            add_active(plan.status, created)
        await write_status_if_changed(self.client, cj, plan.status)
        if plan.requeue_after is not None:
            return Result(requeue_after=plan.requeue_after)
        return DONE
