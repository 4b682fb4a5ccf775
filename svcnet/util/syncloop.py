"""The loop that runs a data plane's syncs: kube-proxy's BoundedFrequencyRunner.

:meth:`SyncLoop.request` (called after every recorded change) wakes the loop; two syncs are at
least ``min_interval`` apart, so a burst of changes becomes one sync; a sync also runs every
``check_interval`` (to notice drift), and ``retry_interval`` after one that failed. The Service
proxy and NetworkPolicy subclass it with their own :meth:`sync`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from svcnet.util.clock import REAL_CLOCK, Clock


class Outcome(Protocol):
    @property
    def ok(self) -> bool: ...


R = TypeVar("R", bound=Outcome)


class SyncLoop(Generic[R]):
    def __init__(
        self,
        *,
        clock: Clock = REAL_CLOCK,
        min_interval: float,
        check_interval: float,
        retry_interval: float,
        on_sync: Callable[[R], None] | None = None,
    ) -> None:
        self.clock = clock
        self.min_interval = min_interval
        self.check_interval = check_interval
        self.retry_interval = retry_interval
        self.on_sync = on_sync
        self.syncs: list[R] = []  # the last 100 results
        self._wake = asyncio.Event()
        self._last_sync = float("-inf")

    def request(self) -> None:
        """Ask for a sync soon (at most once per ``min_interval``)."""
        self._wake.set()

    async def sync(self) -> R:
        raise NotImplementedError

    def _record(self, result: R) -> None:
        self._last_sync = self.clock.monotonic()
        self.syncs.append(result)
        del self.syncs[:-100]
        if self.on_sync is not None:
            self.on_sync(result)

    async def run(self) -> None:
        """Sync whenever asked (bounded by ``min_interval``) and every ``check_interval``."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.check_interval)
            wait = self._last_sync + self.min_interval - self.clock.monotonic()
            if wait > 0:
                await self.clock.sleep(wait)
            self._wake.clear()
            result = await self.sync()
            if not result.ok:
                await self.clock.sleep(self.retry_interval)
                self._wake.set()
