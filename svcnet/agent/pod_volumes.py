"""One pod's volumes on this node: set up before its containers, kept current while it runs,
removed with its sandbox (kubelet's volume manager, for the volume kinds svcnet has).

- :meth:`PodVolumes.mount` plans every volume (:mod:`svcnet.runtime.volumes.plan`) from the
  ConfigMaps and Secrets as their watches see them and the pod's tokens, and writes them
  (:mod:`svcnet.runtime.volumes.writer`). The first volume that cannot be set up raises its
  :class:`MountError`: the worker reports FailedMount and tries again when a watched object
  changes (a missing ConfigMap being created starts the pod at once) or after a backoff.
- :meth:`PodVolumes.keep_current` runs beside the containers: a watch event on a mounted
  ConfigMap or Secret rewrites the API-data volumes (only what changed is written; the
  ``..data`` swap shows in running containers), and each service-account token is requested
  again past 80 % of its lifetime. kubelet notices such changes on its next pod sync (up to
  a minute, plus its cache's TTL); svcnet acts on the watch event itself, so an edit is in
  the pod within a round trip. A volume whose object went away keeps its last content, as
  in kubelet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from svcnet.agent.objectwatch import ObjectWatcher
from svcnet.agent.tokens import Token, TokenClient, TokenError, request_token
from svcnet.api import objects
from svcnet.api.errors import NotFound
from svcnet.api.registry import (
    CONFIGMAPS,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    SECRETS,
    ResourceType,
)
from svcnet.runtime.volumes.plan import (
    MountError,
    PodSources,
    TokenKey,
    VolumeInputs,
    VolumeKind,
    VolumePlan,
    plan_volume,
    pod_sources,
    volume_dir,
    volume_sources,
)
from svcnet.runtime.volumes.writer import (
    check_host_path,
    remove_pod_volumes,
    setup_empty_dir,
    write_atomic,
)
from svcnet.util.clock import Clock

log = logging.getLogger(__name__)

MountedVolumes = dict[str, tuple[str, bool]]  # name → (folder on the node, API data)


class PodVolumes:
    def __init__(
        self,
        pod: Mapping[str, Any],
        client: TokenClient,
        watcher: ObjectWatcher,
        pods_root: str,
        clock: Clock,
        on_warning: Callable[[str, str], None],
    ) -> None:
        self.pod = pod
        meta = objects.meta(pod)
        self.namespace = str(meta.get("namespace", "default"))
        self.name = str(meta.get("name", ""))
        self.uid = str(meta.get("uid", ""))
        self.client = client
        self.watcher = watcher
        self.pods_root = pods_root
        self.clock = clock
        self.on_warning = on_warning  # (reason, message): a Warning event of the pod
        self.sources: PodSources = pod_sources(pod)
        self.tokens: dict[TokenKey, Token] = {}
        self.mounted: MountedVolumes = {}
        self.changed = asyncio.Event()
        self._warned: set[str] = set()
        self._volumes_seen: dict[str, dict[str, Any]] = {}
        self._watching = False

    # -- watches ---------------------------------------------------------------------------
    def _watched(self) -> list[tuple[ResourceType, str]]:
        return (
            [(CONFIGMAPS, n) for n in sorted(self.sources.config_maps)]
            + [(SECRETS, n) for n in sorted(self.sources.secrets)]
            + [(PERSISTENTVOLUMECLAIMS, n) for n in sorted(self.sources.claims)]
        )

    def _on_object_change(self) -> None:
        self.changed.set()

    def pod_changed(self, pod: Mapping[str, Any]) -> None:
        """New labels or annotations reach downwardAPI files, as kubelet's remount does (the
        volumes and sources themselves are immutable in a pod's spec)."""
        meta, old = objects.meta(pod), objects.meta(self.pod)
        if (meta.get("labels"), meta.get("annotations")) != (
            old.get("labels"),
            old.get("annotations"),
        ):
            self.pod = pod
            self.changed.set()

    def watch(self) -> None:
        if self._watching:
            return
        self._watching = True
        for rt, name in self._watched():
            self.watcher.subscribe(rt, self.namespace, name, self._on_object_change)

    # -- setting up --------------------------------------------------------------------------
    async def _objects(self, rt: ResourceType, names: frozenset[str]) -> dict[str, Any]:
        out = {}
        for name in sorted(names):
            obj = await self.watcher.get(rt, self.namespace, name)
            if obj is not None:
                out[name] = obj
        return out

    async def _refresh_tokens(self) -> dict[TokenKey, str]:
        """Request the tokens that are missing or due; the errors of those that failed."""
        errors: dict[TokenKey, str] = {}
        now = self.clock.time()
        for key in sorted(self.sources.tokens, key=repr):
            token = self.tokens.get(key)
            if token is not None and now < token.refresh_at:
                continue
            try:
                self.tokens[key] = await request_token(
                    self.client, self.namespace, self.name, self.uid, key
                )
            except TokenError as e:
                if token is None or now >= token.expires:
                    errors[key] = str(e)
                log.warning("pod %s/%s: %s", self.namespace, self.name, e)
        return errors

    async def _claims(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The pod's claims as their watches see them, and their bound volumes (read once
        each: a volume's node path never changes)."""
        claims = await self._objects(PERSISTENTVOLUMECLAIMS, self.sources.claims)
        volumes: dict[str, Any] = {}
        for pvc in claims.values():
            name = str((pvc.get("spec") or {}).get("volumeName") or "")
            if name and name not in self._volumes_seen:
                try:
                    self._volumes_seen[name] = await self.client.request(
                        "GET", f"{PERSISTENTVOLUMES.base_path}/{PERSISTENTVOLUMES.plural}/{name}"
                    )
                except NotFound:
                    continue
            if name in self._volumes_seen:
                volumes[name] = self._volumes_seen[name]
        return claims, volumes

    def _plan(
        self,
        volume: Mapping[str, Any],
        cms: Mapping[str, Any],
        secrets: Mapping[str, Any],
        token_errors: Mapping[TokenKey, str],
        claims: tuple[Mapping[str, Any], Mapping[str, Any]] = ({}, {}),
    ) -> VolumePlan:
        keys = volume_sources(self.pod, [volume]).tokens
        errors = sorted(token_errors[k] for k in keys if k in token_errors)
        if errors:
            raise MountError(str(volume.get("name", "")), errors[0])
        values = {k: t.value for k, t in self.tokens.items()}
        inputs = VolumeInputs(cms, secrets, values, claims[0], claims[1])
        return plan_volume(self.pod, volume, inputs)

    def _apply(self, plan: VolumePlan) -> bool:
        path = volume_dir(self.pods_root, self.uid, plan)
        try:
            if plan.kind in (VolumeKind.HOST_PATH, VolumeKind.CLAIM):
                check_host_path(plan.name, plan.host_path, plan.host_type)
                wrote = False
            elif plan.kind is VolumeKind.FILES:
                wrote = write_atomic(path, plan.payload, datetime.now(UTC))
            else:
                setup_empty_dir(path, plan.memory, plan.size_limit)
                wrote = False
        except OSError as e:
            raise MountError(plan.name, str(e)) from e
        if plan.kind is VolumeKind.UNSUPPORTED and plan.name not in self._warned:
            self._warned.add(plan.name)
            self.on_warning(
                "FailedMount",
                f'volume "{plan.name}" ({plan.source}) is not supported by svcnet: '
                "mounted as an empty directory",
            )
        self.mounted[plan.name] = (path, plan.always_read_only)
        return wrote

    def _volumes(self) -> list[Mapping[str, Any]]:
        return list((self.pod.get("spec") or {}).get("volumes") or ())

    async def mount(self) -> MountedVolumes:
        """Every volume set up; raises the first :class:`MountError`."""
        self.watch()
        self.changed.clear()
        token_errors = await self._refresh_tokens()
        cms = await self._objects(CONFIGMAPS, self.sources.config_maps)
        secrets = await self._objects(SECRETS, self.sources.secrets)
        claims = await self._claims()
        for v in self._volumes():
            plan = self._plan(v, cms, secrets, token_errors, claims)
            await asyncio.to_thread(self._apply, plan)
        return dict(self.mounted)

    async def update(self) -> int:
        """The API-data volumes rewritten from the objects now; how many changed."""
        self.changed.clear()
        token_errors = await self._refresh_tokens()
        cms = await self._objects(CONFIGMAPS, self.sources.config_maps)
        secrets = await self._objects(SECRETS, self.sources.secrets)
        claims = await self._claims()
        changed = 0
        for v in self._volumes():
            try:
                plan = self._plan(v, cms, secrets, token_errors, claims)
                if plan.kind is VolumeKind.FILES:
                    changed += await asyncio.to_thread(self._apply, plan)
            except MountError as e:
                log.warning("pod %s/%s: %s", self.namespace, self.name, e.event_message)
        return changed

    def _next_token_refresh(self) -> float | None:
        due = [t.refresh_at for t in self.tokens.values()]
        return min(due) - self.clock.time() if due else None

    async def keep_current(self) -> None:
        """Until cancelled: rewrite on object changes and token refreshes."""
        while True:
            delay = self._next_token_refresh()
            timer = self.clock.call_later(delay, self.changed.set) if delay is not None else None
            try:
                await self.changed.wait()
            finally:
                if timer is not None:
                    timer.cancel()
            n = await self.update()
            if n:
                log.info("pod %s/%s: %d volume(s) updated", self.namespace, self.name, n)

    # -- removal -----------------------------------------------------------------------------
    async def remove(self) -> None:
        if self._watching:
            for rt, name in self._watched():
                self.watcher.unsubscribe(rt, self.namespace, name, self._on_object_change)
            self._watching = False
        await asyncio.to_thread(remove_pod_volumes, self.pods_root, self.uid)
