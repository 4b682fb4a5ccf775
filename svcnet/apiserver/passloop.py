"""The loop of the API server's own controllers (CRDs, APIServices): a pass when a write of
theirs wakes them, and a periodic pass that repairs what no wake announced."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

# A pass after a wake waits this long, so that the write that woke it has landed.
SETTLE = 0.02


class PassLoop:
    """Subclasses define ``sync`` (one level-triggered pass) and ``what`` (for the log)."""

    what = "pass"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def sync(self) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
                await asyncio.sleep(SETTLE)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed", self.what)
