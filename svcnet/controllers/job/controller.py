"""The Job controller, wired: informers (Jobs, Pods) → queue → reconcile → API; with the
TTL-after-finished controller's one duty (delete a finished Job once its
``ttlSecondsAfterFinished`` has passed, with its pods: ``Foreground`` as upstream).
"""

from __future__ import annotations

import contextlib
import logging

from svcnet.api.errors import NotFound
from svcnet.api.objects import meta, name
from svcnet.api.registry import JOBS
from svcnet.client.events import EventRecorder
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.rest import ApiClient
from svcnet.controllers.job.plan import plan_job, ttl_remaining
from svcnet.controllers.podowner import PodOwnerLoop
from svcnet.controllers.runtime import DONE, Result
from svcnet.util.clock import REAL_CLOCK, Clock, rfc3339

log = logging.getLogger(__name__)

COMPONENT = "job-controller"


class JobController:
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
        self.loop = PodOwnerLoop(
            client, factory, recorder, JOBS, self.reconcile, workers=workers, clock=clock
        )

    async def run(self) -> None:
        await self.loop.controller.run()

    async def reconcile(self, key: str) -> Result:
        loop = self.loop
        job = loop.owner_informer.store.get(key)
        if job is None:
            loop.expectations.forget(key)
            return DONE
        now = self.clock.time()
        ttl = ttl_remaining(job, now)
        if ttl is not None:
            if ttl > 0:
                return Result(requeue_after=ttl)
            log.info("job %s: ttlSecondsAfterFinished passed, deleting it", key)
            with contextlib.suppress(NotFound):
                await self.client.delete(
                    JOBS,
                    name(job),
                    meta(job).get("namespace"),
                    propagation_policy="Foreground",
                    preconditions={"uid": str(meta(job).get("uid"))},
                )
            return DONE
        satisfied = loop.expectations.satisfied(key, now)
        pods = await loop.claimed_pods(job)
        plan = plan_job(job, pods, now, rfc3339(self.clock.now()), expectations_satisfied=satisfied)
        await loop.apply(
            job,
            key,
            create=plan.create,
            delete=[(d.name, d.uid) for d in plan.delete],
            events=plan.events,
            status=plan.status,
        )
        if plan.requeue_after is not None:
            return Result(requeue_after=plan.requeue_after)
        return DONE
