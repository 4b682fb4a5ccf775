"""Starting built controllers: the factory's informers, one task per event recorder and one
per controller, in a TaskGroup or (test fixtures) as bare tasks the caller cancels."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any, Protocol

from svcnet.client.events import EventRecorder
from svcnet.client.informer import SharedInformerFactory


class Runnable(Protocol):
    def run(self) -> Coroutine[Any, Any, None]: ...


def start_controllers(
    factory: SharedInformerFactory,
    tg: asyncio.TaskGroup | None,
    recorders: Iterable[EventRecorder],
    controllers: Iterable[tuple[str, Runnable]],
) -> list[asyncio.Task[None]]:
    """Start everything, controllers last; each controller's task is named by its key.

    Build every controller first: each registers its informers with the factory when built."""

    def spawn(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        return tg.create_task(coro, name=name) if tg else asyncio.create_task(coro, name=name)

    tasks = list(factory.start(tg))
    tasks += [spawn(rec.run(), f"events-{rec.component}") for rec in recorders]
    tasks += [spawn(c.run(), name) for name, c in controllers]
    return tasks
