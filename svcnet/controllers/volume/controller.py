"""The PersistentVolume controller, wired: claims, volumes and classes → two queues of keys
(``claim:ns/name``, ``volume:name``) → :mod:`svcnet.controllers.volume.plan` → API writes.

Each write is a compare-and-swap on the object as the informer saw it: a conflict means the
cache was behind, and the key is retried from the newer state (client-go's habit). A volume's
change requeues its claim and a claim's change its volume, since binding spans both.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from svcnet.api import objects
from svcnet.api.errors import ApiError, Conflict, NotFound
from svcnet.api.registry import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, STORAGECLASSES
from svcnet.client.events import EventRecorder
from svcnet.client.informer import FuncHandler, SharedInformerFactory, unwrap
from svcnet.client.rest import ApiClient
from svcnet.controllers.runtime import DONE, Controller, Result, TemporaryError
from svcnet.controllers.volume.plan import (
    ClaimStep,
    VolumeStep,
    bound_claim,
    bound_status,
    bound_volume,
    claim_key,
    plan_claim,
    plan_volume,
)
from svcnet.util.clock import REAL_CLOCK, Clock

log = logging.getLogger(__name__)

COMPONENT = "persistentvolume-controller"  # its events' source, as upstream
CLAIM, VOLUME = "claim:", "volume:"


class PersistentVolumeController:
    def __init__(
        self,
        client: ApiClient,
        factory: SharedInformerFactory,
        recorder: EventRecorder,
        *,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.claims = factory.informer_for(PERSISTENTVOLUMECLAIMS)
        self.volumes = factory.informer_for(PERSISTENTVOLUMES)
        self.classes = factory.informer_for(STORAGECLASSES)
        self.controller = Controller(
            COMPONENT,
            self.reconcile,
            workers=1,
            informers=[self.claims, self.volumes, self.classes],
            clock=clock,
        )
        self._events: dict[str, set[tuple[str, str]]] = {}  # uid → (reason, message) sent
        self.claims.add_event_handler(
            FuncHandler(
                on_add=self._claim_changed,
                on_update=lambda _o, n: self._claim_changed(n),
                on_delete=lambda o: self._claim_changed(self._forget(unwrap(o))),
            )
        )
        self.volumes.add_event_handler(
            FuncHandler(
                on_add=self._volume_changed,
                on_update=lambda _o, n: self._volume_changed(n),
                on_delete=lambda o: self._volume_changed(self._forget(unwrap(o))),
            )
        )
        # A class created later unblocks the claims that name it.
        self.classes.add_event_handler(FuncHandler(on_add=lambda _sc: self._all_claims()))

    def _claim_changed(self, pvc: Mapping[str, Any]) -> None:
        self.controller.enqueue(CLAIM + claim_key(pvc))
        volume = objects.spec(pvc).get("volumeName")
        if volume:
            self.controller.enqueue(VOLUME + str(volume))
        for pv in self.volumes.store.list():
            ref = objects.spec(pv).get("claimRef") or {}
            if f"{ref.get('namespace')}/{ref.get('name')}" == claim_key(pvc):
                self.controller.enqueue(VOLUME + objects.name(pv))

    def _volume_changed(self, pv: Mapping[str, Any]) -> None:
        self.controller.enqueue(VOLUME + objects.name(pv))
        ref = objects.spec(pv).get("claimRef")
        if ref:
            self.controller.enqueue(f"{CLAIM}{ref.get('namespace')}/{ref.get('name')}")
        else:  # an Available volume may serve any waiting claim
            self._all_claims()

    def _all_claims(self) -> None:
        for pvc in self.claims.store.list():
            if not objects.spec(pvc).get("volumeName"):
                self.controller.enqueue(CLAIM + claim_key(pvc))

    async def run(self) -> None:
        await self.controller.run()

    # -- reconcile ----------------------------------------------------------------------------
    async def reconcile(self, key: str) -> Result:
        try:
            if key.startswith(CLAIM):
                return await self._sync_claim(key[len(CLAIM) :])
            return await self._sync_volume(key[len(VOLUME) :])
        except Conflict as e:
            raise TemporaryError(f"{key}: {e}", delay=0.1) from e
        except NotFound:
            return Result(requeue=True)
        except ApiError as e:
            raise TemporaryError(f"{key}: {e}") from e

    def _forget(self, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        self._events.pop(str(objects.meta(obj).get("uid")), None)
        return obj

    def _event(self, obj: Mapping[str, Any], event: tuple[str, str, str] | None) -> None:
        # One event per object and reason while it waits, not one per resync.
        if event is None:
            return
        sent = self._events.setdefault(str(objects.meta(obj).get("uid")), set())
        if (event[1], event[2]) not in sent:
            sent.add((event[1], event[2]))
            self.recorder.event(obj, *event)

    async def _sync_claim(self, key: str) -> Result:
        pvc = self.claims.store.get(key)
        if pvc is None:
            return DONE
        volumes = {objects.name(pv): pv for pv in self.volumes.store.list()}
        classes = {objects.name(sc): sc for sc in self.classes.store.list()}
        plan = plan_claim(pvc, volumes, classes)
        self._event(pvc, plan.event)
        if plan.step is ClaimStep.STATUS and plan.status is not None:
            await self.client.update_status({**pvc, "status": dict(plan.status)})
        elif plan.step is ClaimStep.ANNOTATE:
            await self.client.patch(
                PERSISTENTVOLUMECLAIMS,
                objects.name(pvc),
                {"metadata": {"annotations": dict(plan.annotations)}},
                namespace=objects.namespace(pvc),
            )
        elif plan.step is ClaimStep.BIND:
            await self._bind(pvc, volumes[plan.volume])
        return DONE

    async def _bind(self, pvc: Mapping[str, Any], pv: Mapping[str, Any]) -> None:
        ref = objects.spec(pv).get("claimRef") or {}
        if ref.get("uid") != objects.meta(pvc).get("uid"):
            pv = await self.client.update(bound_volume(pv, pvc))
        if objects.spec(pv).get("claimRef") and (pv.get("status") or {}).get("phase") != "Bound":
            pv = await self.client.update_status({**pv, "status": {"phase": "Bound"}})
        claim = await self.client.update(bound_claim(pvc, pv))
        await self.client.update_status({**claim, "status": bound_status(pv)})
        log.info("bound claim %s to volume %s", claim_key(pvc), objects.name(pv))

    async def _sync_volume(self, name: str) -> Result:
        pv = self.volumes.store.get(name)
        if pv is None:
            return DONE
        claims = {claim_key(c): c for c in self.claims.store.list()}
        plan = plan_volume(pv, claims)
        self._event(pv, plan.event)
        if plan.step is VolumeStep.STATUS and plan.status is not None:
            await self.client.update_status({**pv, "status": dict(plan.status)})
        # VolumeStep.RECLAIM is the provisioner's: it removes the data, then the object.
        return DONE


__all__ = ["COMPONENT", "PersistentVolumeController"]
