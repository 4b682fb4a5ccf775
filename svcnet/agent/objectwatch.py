"""The ConfigMaps and Secrets that this node's pods mount, each watched on its own.

kubelet's watch-based object manager (``configMapAndSecretChangeDetectionStrategy: Watch``,
its default): one list+watch per referenced object (``fieldSelector=metadata.name=NAME`` in
its namespace), held while a pod refers to it and stopped when the last one lets go. A node
thus caches only what its pods use, never every Secret of the cluster; and a change, or the
creation of an object a pod waits for, reaches the pod's worker as a watch event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from svcnet.api.registry import ResourceType
from svcnet.client.informer import FuncHandler, Informer
from svcnet.client.rest import ApiClient

Listener = Callable[[], None]
SYNC_TIMEOUT = 10.0  # a first list that takes longer fails the mount, which is retried


@dataclass
class _Watched:
    informer: Informer
    task: asyncio.Task[None]
    listeners: list[Listener] = field(default_factory=list)


class ObjectWatcher:
    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self._watched: dict[tuple[str, str, str], _Watched] = {}

    def _notify(self, key: tuple[str, str, str], *_: Any) -> None:
        w = self._watched.get(key)
        for listener in list(w.listeners if w else ()):
            listener()

    def subscribe(self, rt: ResourceType, namespace: str, name: str, listener: Listener) -> None:
        key = (rt.plural, namespace, name)
        w = self._watched.get(key)
        if w is None:
            informer = Informer(self.client, rt, namespace, field_selector=f"metadata.name={name}")
            notify = lambda *a: self._notify(key, *a)  # noqa: E731 - one handler, three events
            informer.add_event_handler(
                FuncHandler(on_add=notify, on_update=notify, on_delete=notify)
            )
            task = asyncio.create_task(informer.run(), name=f"watch-{rt.plural}-{namespace}-{name}")
            w = self._watched[key] = _Watched(informer, task)
        w.listeners.append(listener)

    def unsubscribe(self, rt: ResourceType, namespace: str, name: str, listener: Listener) -> None:
        key = (rt.plural, namespace, name)
        w = self._watched.get(key)
        if w is None:
            return
        with contextlib.suppress(ValueError):
            w.listeners.remove(listener)
        if not w.listeners:
            del self._watched[key]
            w.task.cancel()

    async def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as last seen by its watch (None: it does not exist); waits for the
        first list (TimeoutError past :data:`SYNC_TIMEOUT`). Only for an object someone
        subscribed to."""
        w = self._watched[(rt.plural, namespace, name)]
        await asyncio.wait_for(w.informer.wait_for_sync(), SYNC_TIMEOUT)
        return w.informer.store.get(f"{namespace}/{name}")

    def close(self) -> None:
        for w in self._watched.values():
            w.task.cancel()
        self._watched.clear()
