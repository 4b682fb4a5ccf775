"""The node's local-path provisioner (``svcnet.io/local-path``), run by the agent: the node's
folders are made and removed by the node that holds them, as k3s does with a helper pod on
that node. Decisions are :mod:`svcnet.controllers.volume.localpath_plan`'s; this module only
makes or removes a folder and writes the PersistentVolume.

Keys: ``claim:ns/name`` (provision) and ``volume:name`` (reclaim Delete). A folder is made
before its PV exists and removed before its PV is deleted, so that an object never names a
folder that is not there; a removal refuses any path outside this node's storage folder, and
waits while a pod of this node still has the folder mounted (a claim deleted under a running
pod: upstream's pvc-protection finalizer keeps the claim itself until then, svcnet has no such
finalizer and keeps the data instead).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from svcnet.api import objects
from svcnet.api.errors import AlreadyExists, ApiError, NotFound
from svcnet.api.registry import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, STORAGECLASSES
from svcnet.client.events import EventRecorder
from svcnet.client.informer import FuncHandler, SharedInformerFactory
from svcnet.client.rest import ApiClient
from svcnet.controllers.runtime import DONE, Controller, Result, TemporaryError
from svcnet.controllers.volume.localpath_plan import (
    claim_folder,
    provisioned_volume,
    to_delete,
    wants_volume,
)
from svcnet.controllers.volume.plan import claim_key

log = logging.getLogger(__name__)

CLAIM, VOLUME = "claim:", "volume:"
IN_USE_RETRY = 2.0  # seconds between looks at a folder a pod still mounts


def _inside(root: Path, path: str) -> bool:
    real = Path(os.path.realpath(path))
    return real != root and root in real.parents


class LocalPathProvisioner:
    def __init__(
        self,
        client: ApiClient,
        factory: SharedInformerFactory,
        recorder: EventRecorder,
        node: str,
        storage_root: Path,
        in_use: Callable[[str], bool] = lambda _folder: False,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.node = node
        self.in_use = in_use
        self.root = Path(os.path.realpath(storage_root))
        self.claims = factory.informer_for(PERSISTENTVOLUMECLAIMS)
        self.volumes = factory.informer_for(PERSISTENTVOLUMES)
        self.classes = factory.informer_for(STORAGECLASSES)
        self.controller = Controller(
            f"local-path-provisioner-{node}",
            self.reconcile,
            informers=[self.claims, self.volumes, self.classes],
        )
        enqueue = self.controller.enqueue
        self.claims.add_event_handler(
            FuncHandler(
                on_add=lambda c: enqueue(CLAIM + claim_key(c)),
                on_update=lambda _o, c: enqueue(CLAIM + claim_key(c)),
            )
        )
        self.volumes.add_event_handler(
            FuncHandler(
                on_add=lambda v: enqueue(VOLUME + objects.name(v)),
                on_update=lambda _o, v: enqueue(VOLUME + objects.name(v)),
            )
        )

    async def run(self) -> None:
        await self.controller.run()

    async def reconcile(self, key: str) -> Result:
        try:
            if key.startswith(CLAIM):
                await self._provision(key[len(CLAIM) :])
            else:
                await self._reclaim(key[len(VOLUME) :])
        except OSError as e:
            raise TemporaryError(f"{key}: {e}") from e
        except ApiError as e:
            raise TemporaryError(f"{key}: {e}") from e
        return DONE

    async def _provision(self, key: str) -> None:
        pvc = self.claims.store.get(key)
        volumes: Mapping[str, Any] = {objects.name(v): v for v in self.volumes.store.list()}
        if pvc is None or not wants_volume(pvc, self.node, volumes):
            return
        class_name = str(objects.spec(pvc).get("storageClassName") or "")
        sc = self.classes.store.get(class_name)
        if sc is None:
            return
        folder = claim_folder(str(self.root), pvc)
        self.recorder.event(
            pvc,
            "Normal",
            "Provisioning",
            f'External provisioner is provisioning volume for claim "{key}"',
        )
        await asyncio.to_thread(os.makedirs, folder, 0o777, True)
        await asyncio.to_thread(os.chmod, folder, 0o777)  # any container user may write
        pv = provisioned_volume(pvc, sc, self.node, folder)
        try:
            await self.client.create(pv)
        except AlreadyExists:
            return
        self.recorder.event(
            pvc,
            "Normal",
            "ProvisioningSucceeded",
            f"Successfully provisioned volume {objects.name(pv)}",
        )
        log.info("provisioned %s for claim %s in %s", objects.name(pv), key, folder)

    async def _reclaim(self, name: str) -> None:
        pv = self.volumes.store.get(name)
        if pv is None:
            return
        folder = to_delete(pv, self.node)
        if folder is None:
            return
        if not _inside(self.root, folder):
            log.warning("volume %s: %s is outside %s; not removed", name, folder, self.root)
            return
        if self.in_use(folder):
            raise TemporaryError(f"volume {name}: {folder} is mounted by a pod", delay=IN_USE_RETRY)
        await asyncio.to_thread(shutil.rmtree, folder, True)
        try:
            await self.client.delete(
                PERSISTENTVOLUMES, name, preconditions={"uid": str(objects.meta(pv).get("uid"))}
            )
        except NotFound:
            return
        log.info("reclaimed volume %s: removed %s", name, folder)
