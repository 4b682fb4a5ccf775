"""A rate-limited work queue with client-go's semantics (``k8s.io/client-go/util/workqueue``).

* An item is in the queue at most once (``dirty`` set): adding a queued key is a no-op.
* An item being processed (between ``get`` and ``done``) is never handed to a second worker;
  adding it meanwhile marks it dirty and it is queued again when ``done`` is called.
* ``add_after`` holds an item until its delay passes; of two pending delays the earlier wins.
* ``add_rate_limited`` delays by the rate limiter: per-item exponential backoff (5 ms doubling
  up to 1000 s) combined with an overall token bucket (10 qps, burst 100), like
  ``DefaultControllerRateLimiter``; ``forget`` resets an item's backoff.
* ``shutdown`` wakes every waiting ``get`` with :class:`ShutDown`.

It is bounded: because keys are deduplicated its length can only exceed ``maxsize`` with
that many distinct keys; past that an add is dropped and counted in ``dropped``. Controllers
are level-triggered and informers resync, so a dropped key is reconciled on a later pass
rather than blocking the informer that enqueued it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from svcnet.util.clock import REAL_CLOCK, Clock, TimerHandle

log = logging.getLogger(__name__)

T = TypeVar("T", bound=Hashable)
T_contra = TypeVar("T_contra", bound=Hashable, contravariant=True)


class ShutDown(Exception):
    """The queue was shut down: the worker should return."""


class RateLimiter(Protocol[T_contra]):
    def when(self, item: T_contra) -> float:
        """How long to wait before ``item`` is processed again (and count the failure)."""
        ...

    def forget(self, item: T_contra) -> None: ...

    def num_requeues(self, item: T_contra) -> int: ...


class ItemExponentialRateLimiter(Generic[T]):
    """``base * 2**failures`` seconds, capped at ``maximum``, per item."""

    def __init__(self, base: float = 0.005, maximum: float = 1000.0) -> None:
        self.base = base
        self.maximum = maximum
        self._failures: dict[T, int] = {}

    def when(self, item: T) -> float:
        n = self._failures.get(item, 0)
        self._failures[item] = n + 1
        # Exponents past ~60 overflow nothing in Python but are pointless: cap early.
        return float(min(self.base * (2 ** min(n, 62)), self.maximum))

    def forget(self, item: T) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: T) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter(Generic[T]):
    """A token bucket shared by all items: the overall retry rate of one controller."""

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Clock = REAL_CLOCK) -> None:
        self.qps = qps
        self.burst = burst
        self.clock = clock
        self._tokens = float(burst)
        self._last = clock.monotonic()

    def when(self, item: T) -> float:
        now = self.clock.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        # Reserve a future token: the wait grows with the debt, as rate.Limiter.Reserve does.
        return -self._tokens / self.qps

    def forget(self, item: T) -> None:
        pass

    def num_requeues(self, item: T) -> int:
        return 0


class MaxOfRateLimiter(Generic[T]):
    def __init__(self, *limiters: RateLimiter[T]) -> None:
        self.limiters = limiters

    def when(self, item: T) -> float:
        return max(limiter.when(item) for limiter in self.limiters)

    def forget(self, item: T) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_controller_rate_limiter(clock: Clock = REAL_CLOCK) -> MaxOfRateLimiter[str]:
    return MaxOfRateLimiter[str](
        ItemExponentialRateLimiter[str](0.005, 1000.0), BucketRateLimiter[str](10.0, 100, clock)
    )


class WorkQueue(Generic[T]):
    def __init__(
        self,
        name: str = "",
        rate_limiter: RateLimiter[T] | None = None,
        clock: Clock = REAL_CLOCK,
        maxsize: int = 100_000,
    ) -> None:
        self.name = name
        self.clock = clock
        self.rate_limiter: RateLimiter[T] = rate_limiter or MaxOfRateLimiter[T](
            ItemExponentialRateLimiter[T](), BucketRateLimiter[T](clock=clock)
        )
        self.maxsize = maxsize
        self.dropped = 0
        self.adds = 0
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._waiting: dict[T, tuple[float, TimerHandle]] = {}
        self._shutting_down = False
        self._drain = False
        self._nonempty = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    # -- adding ------------------------------------------------------------------------------

    def add(self, item: T) -> None:
        if self._shutting_down:
            return
        if item in self._dirty:
            return
        if len(self._dirty) >= self.maxsize:
            self.dropped += 1
            log.warning("workqueue %s full (%d keys): dropped %r", self.name, self.maxsize, item)
            return
        self.adds += 1
        self._dirty.add(item)
        if item in self._processing:
            return
        self._queue.append(item)
        self._nonempty.set()

    def add_after(self, item: T, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        ready_at = self.clock.monotonic() + delay
        existing = self._waiting.get(item)
        if existing is not None:
            if existing[0] <= ready_at:
                return
            existing[1].cancel()

        def fire() -> None:
            if self._waiting.get(item, (None,))[0] == ready_at:
                del self._waiting[item]
                self.add(item)

        self._waiting[item] = (ready_at, self.clock.call_later(delay, fire))

    def add_rate_limited(self, item: T) -> None:
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: T) -> None:
        self.rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self.rate_limiter.num_requeues(item)

    # -- processing --------------------------------------------------------------------------

    async def get(self) -> T:
        """The next item; call :meth:`done` with it when finished. Raises :class:`ShutDown`."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            self._nonempty.clear()
            await self._nonempty.wait()
        item = self._queue.popleft()
        self._processing.add(item)
        self._dirty.discard(item)
        self._idle.clear()
        return item

    def done(self, item: T) -> None:
        self._processing.discard(item)
        if item in self._dirty:
            self._queue.append(item)
            self._nonempty.set()
        if not self._processing:
            self._idle.set()

    # -- state -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def depth(self) -> int:
        """Queued plus waiting-for-delay items: what a metric calls the queue depth."""
        return len(self._queue) + len(self._waiting)

    @property
    def processing(self) -> int:
        return len(self._processing)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def shutdown(self) -> None:
        """Stop handing out items; queued items are discarded, waiters get ShutDown."""
        self._shutting_down = True
        for _, handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        self._queue.clear()
        self._nonempty.set()

    async def shutdown_with_drain(self) -> None:
        """Stop accepting items, then wait until the items being processed are done."""
        self._shutting_down = True
        for _, handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        self._nonempty.set()
        while self._processing or self._queue:
            self._idle.clear()
            if not self._processing and self._queue:
                # Nobody is working: drop what is left rather than wait forever.
                self._queue.clear()
                break
            await self._idle.wait()
