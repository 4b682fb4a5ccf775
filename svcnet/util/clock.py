"""Injected time: a real clock and a fake one for tests on virtual time.

Logic takes a :class:`Clock` instead of calling ``time.*`` or ``asyncio.sleep`` so that tests
can drive hours of backoff, resync and requeue in microseconds. The fake keeps its timers in
a heap and fires them, in deadline order, only when the test advances it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: for deadlines and durations."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch: for timestamps written into objects."""
        ...

    def now(self) -> datetime:
        """Wall-clock time as an aware UTC datetime."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` once ``delay`` seconds have passed on this clock."""
        ...

    async def sleep(self, seconds: float) -> None: ...


def rfc3339(t: datetime) -> str:
    """The ``metav1.Time`` wire form: second precision, ``Z`` suffix."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# (second, its RFC 3339 text): a create stamps one, and one strftime per second is cheaper.
_STAMP: tuple[int, str] = (-1, "")


def rfc3339_at(seconds: float) -> str:
    """The ``metav1.Time`` of an epoch time, e.g. ``2024-05-01T12:00:00Z``."""
    global _STAMP
    second = int(seconds)
    if second != _STAMP[0]:
        _STAMP = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _STAMP[1]


def now_rfc3339(clock: Clock | None = None) -> str:
    """The current time as a ``metav1.Time``: what the API server stamps on the objects it
    writes (the pure layer takes it as a parameter)."""
    return rfc3339_at((clock or REAL_CLOCK).time())


class RealClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


REAL_CLOCK = RealClock()


class _FakeTimer:
    __slots__ = ("callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """Virtual time. Nothing moves until :meth:`advance` (sync) or :meth:`step` (async).

    ``advance`` fires due timers synchronously; tasks woken by them run at the next await.
    ``step`` advances timer by timer and yields to the event loop between them, so chains of
    sleeps (a backoff loop, a requeue after a reconcile) play out as they would in real time.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._wall0 = start
        self._mono = 0.0
        self._timers: list[tuple[float, int, _FakeTimer]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._wall0 + self._mono

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _FakeTimer(self._mono + max(0.0, delay), callback)
        heapq.heappush(self._timers, (timer.deadline, next(self._seq), timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        timer = self.call_later(seconds, wake)
        try:
            await fut
        finally:
            timer.cancel()

    def pending(self) -> int:
        """How many live timers are waiting."""
        return sum(1 for _, _, t in self._timers if not t.cancelled)

    def next_deadline(self) -> float | None:
        self._drop_cancelled()
        return self._timers[0][0] if self._timers else None

    def _drop_cancelled(self) -> None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)

    def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer that falls due, in order."""
        target = self._mono + seconds
        while True:
            self._drop_cancelled()
            if not self._timers or self._timers[0][0] > target:
                break
            deadline, _, timer = heapq.heappop(self._timers)
            self._mono = max(self._mono, deadline)
            timer.cancelled = True
            timer.callback()
        self._mono = target

    async def step(self, seconds: float, settle: int = 20) -> None:
        """Advance ``seconds`` timer by timer, letting the loop run after each one."""
        target = self._mono + seconds
        await _settle(settle)
        while True:
            nxt = self.next_deadline()
            if nxt is None or nxt > target:
                break
            self.advance(nxt - self._mono)
            await _settle(settle)
        self._mono = target
        await _settle(settle)


async def _settle(rounds: int) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)
