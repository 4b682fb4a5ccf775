"""The level-triggered controller runtime: work queue → ``reconcile(key)`` → retry policy.

Informer handlers enqueue keys; ``N`` workers take keys from the queue and call
``reconcile(key)``, which re-reads current state from the caches and is safe to repeat. The
outcome decides what happens to the key — in one place, here:

* ``Result()`` — done: the key's backoff is forgotten.
* ``Result(requeue_after=s)`` — done for now, look again in ``s`` seconds.
* ``Result(requeue=True)`` — look again soon, with the per-key backoff.
* :class:`PermanentError` — retrying cannot help (invalid spec…): logged, a Warning event
  when the error names an object, backoff forgotten, no retry.
* :class:`TemporaryError` (with an optional delay) or any other exception — retried with
  per-key exponential backoff.

No reconcile runs before every informer the controller depends on has synced: acting on a
partial cache would delete what merely has not been listed yet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from svcnet.api.errors import Conflict, NotFound
from svcnet.api.objects import ObjView, name
from svcnet.client.events import WARNING
from svcnet.client.informer import DeletedFinalStateUnknown, FuncHandler, meta_namespace_key
from svcnet.client.rest import ApiClient
from svcnet.client.workqueue import ShutDown, WorkQueue, default_controller_rate_limiter
from svcnet.util.clock import REAL_CLOCK, Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    requeue: bool = False
    requeue_after: float | None = None


DONE = Result()


class PermanentError(Exception):
    """Retrying will not help. ``involved`` (an object) gets a Warning event with ``reason``."""

    def __init__(
        self,
        message: str,
        *,
        reason: str = "ReconcileFailed",
        involved: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.involved = involved


class TemporaryError(Exception):
    """Try again: after ``delay`` seconds if given, else after the key's backoff."""

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class EventSink(Protocol):
    """What the runtime needs of :class:`svcnet.client.events.EventRecorder`."""

    def event(self, obj: Mapping[str, Any], event_type: str, reason: str, message: str) -> None: ...


class Synced(Protocol):
    def has_synced(self) -> bool: ...

    async def wait_for_sync(self) -> None: ...


Reconcile = Callable[[str], Awaitable[Result | None]]


class Controller:
    def __init__(
        self,
        name: str,
        reconcile: Reconcile,
        *,
        queue: WorkQueue[str] | None = None,
        workers: int = 1,
        informers: Sequence[Synced] = (),
        recorder: EventSink | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.name = name
        self.reconcile = reconcile
        self.clock = clock
        self.queue: WorkQueue[str] = (
            queue
            if queue is not None
            else WorkQueue(name, default_controller_rate_limiter(clock), clock)
        )
        self.workers = workers
        self.informers = list(informers)
        self.recorder = recorder
        # Metrics: plain counters the owner can read or export.
        self.reconciles = 0
        self.errors = 0
        self.permanent_errors = 0
        self.requeues = 0
        self.synced = False

    @property
    def queue_depth(self) -> int:
        return self.queue.depth

    def enqueue(self, key: str) -> None:
        self.queue.add(key)

    async def run(self) -> None:
        """Wait for the caches, then run the workers until cancelled."""
        try:
            for informer in self.informers:
                await informer.wait_for_sync()
            self.synced = True
            log.info("controller %s: caches synced, starting %d workers", self.name, self.workers)
            async with asyncio.TaskGroup() as tg:
                for i in range(self.workers):
                    tg.create_task(self._worker(), name=f"{self.name}-worker-{i}")
        finally:
            self.queue.shutdown()

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self.process(key)
            finally:
                self.queue.done(key)

    async def process(self, key: str) -> None:
        """One reconcile of ``key`` and the retry decision (exposed for tests)."""
        self.reconciles += 1
        try:
            result = await self.reconcile(key) or DONE
        except asyncio.CancelledError:
            raise
        except PermanentError as e:
            self.errors += 1
            self.permanent_errors += 1
            self.queue.forget(key)
            log.error("controller %s: %s: %s (not retried)", self.name, key, e.message)
            if self.recorder is not None and e.involved is not None:
                self.recorder.event(e.involved, WARNING, e.reason, e.message)
            return
        except TemporaryError as e:
            self.errors += 1
            self.requeues += 1
            log.info("controller %s: %s: %s (will retry)", self.name, key, e)
            if e.delay is not None:
                self.queue.add_after(key, e.delay)
            else:
                self.queue.add_rate_limited(key)
            return
        except Exception:
            self.errors += 1
            self.requeues += 1
            log.exception("controller %s: reconciling %s failed (will retry)", self.name, key)
            self.queue.add_rate_limited(key)
            return
        if result.requeue_after is not None:
            self.queue.forget(key)
            self.queue.add_after(key, result.requeue_after)
        elif result.requeue:
            self.requeues += 1
            self.queue.add_rate_limited(key)
        else:
            self.queue.forget(key)


async def write_status_if_changed(
    client: ApiClient, obj: ObjView, new_status: dict[str, Any]
) -> None:
    """Write ``new_status`` unless the cached object has it already; an object gone meanwhile
    needs none, a conflict means the cache is behind: the sync is retried on a fresh copy."""
    if dict(obj.get("status") or {}) == new_status:
        return
    try:
        await client.update_status({**obj, "status": new_status})
    except NotFound:
        return
    except Conflict as e:
        raise TemporaryError(f"status of {obj.get('kind')} {name(obj)}: {e}") from e


def enqueue_own_key(controller: Controller) -> FuncHandler:
    """The handler of a controller's own kind: every add and update queues the object's key
    (a delete needs no sync: the object's dependents are the garbage collector's)."""
    return FuncHandler(
        on_add=lambda o: controller.enqueue(meta_namespace_key(o)),
        on_update=lambda _o, n: controller.enqueue(meta_namespace_key(n)),
        on_delete=lambda _o: None,
    )


def on_any_change(fn: Callable[[ObjView | DeletedFinalStateUnknown], None]) -> FuncHandler:
    """A handler calling ``fn`` with the new state of any add, update or delete."""
    return FuncHandler(on_add=fn, on_update=lambda _o, n: fn(n), on_delete=fn)
