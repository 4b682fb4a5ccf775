"""NetworkPolicy's sync loop: drain the change tracker, compile, apply one transaction.

As the proxy's (:class:`~svcnet.util.syncloop.SyncLoop`): :meth:`Syncer.request` (called after every recorded change) wakes the loop;
two syncs are at least ``min_interval`` apart, so a burst of changes becomes one transaction.
A sync is partial (the difference between the table last applied and the new one: a pod-label
change is a few set elements) unless the previous one failed, the table is missing or not
what we wrote (checked cheaply every ``check_interval``), or ``full_sync_period`` has passed:
then the table is rebuilt, atomically. The compiled model of the last successful sync is kept
(``compiled``): it is what the kernel enforces.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from svcnet.dataplane.conntrack import Conntrack, ConntrackError, ConntrackLister
from svcnet.dataplane.nft import NftError, Transaction
from svcnet.netpol.changetracker import ChangeTracker
from svcnet.netpol.compiler import Compiled
from svcnet.netpol.rules import (
    Desired,
    NetpolConfig,
    PolicyObjects,
    build_cleanup,
    build_full,
    build_partial,
    desired_state,
    expected_chains,
)
from svcnet.netpol.stale import denied_entries, narrowed
from svcnet.util.clock import REAL_CLOCK, Clock
from svcnet.util.gctune import paused_gc
from svcnet.util.syncloop import SyncLoop

log = logging.getLogger(__name__)


class ConntrackOps(Conntrack, ConntrackLister, Protocol):
    pass


class NftApplier(Protocol):
    async def apply(self, tx: Transaction) -> None: ...

    async def list_chains(self, family: str, table: str) -> set[str] | None: ...


@dataclass(frozen=True, slots=True)
class SyncResult:
    full: bool
    ok: bool
    operations: int
    seconds: float
    changes: int = 0
    error: str = ""


class Syncer(SyncLoop[SyncResult]):
    def __init__(
        self,
        cfg: NetpolConfig,
        tracker: ChangeTracker,
        nft: NftApplier,
        *,
        clock: Clock = REAL_CLOCK,
        min_interval: float = 0.02,
        check_interval: float = 10.0,
        full_sync_period: float = 3600.0,
        retry_interval: float = 1.0,
        on_sync: Callable[[SyncResult], None] | None = None,
        conntrack: ConntrackOps | None = None,
    ) -> None:
        super().__init__(
            clock=clock,
            min_interval=min_interval,
            check_interval=check_interval,
            retry_interval=retry_interval,
            on_sync=on_sync,
        )
        self.cfg = cfg
        self.tracker = tracker
        self.nft = nft
        self.full_sync_period = full_sync_period
        self.conntrack = conntrack
        self.state: Desired | None = None  # None: the next sync is a full one
        self.compiled: Compiled | None = None
        self._objects = PolicyObjects()  # each policy's nft objects, rebuilt when it changes
        self._last_full = float("-inf")
        self._last_check = float("-inf")
        self._drains = 0  # syncs that drained the tracker
        self._applied_drain = 0  # the latest of them whose result is in the kernel
        self._applied = asyncio.Event()
        # Every NetworkPolicy event up to this resourceVersion is in the kernel.
        self.programmed_revision = 0

    async def wait_applied(self) -> None:
        """Return once a sync that drained the tracker after this call is in the kernel:
        whatever was recorded before the call is then enforced."""
        target = self._drains + 1
        self.request()
        while self._applied_drain < target:
            await self._applied.wait()

    async def next_programmed(self, last: int) -> int:
        """Wait until :attr:`programmed_revision` differs from ``last``; return it."""
        while self.programmed_revision == last:
            await self._applied.wait()
        return self.programmed_revision

    def _mark_applied(self, drain: int) -> None:
        self._applied_drain = drain
        self.programmed_revision = self.tracker.drained_policy_revision
        self._applied.set()
        self._applied = asyncio.Event()

    def request_full(self) -> None:
        self.state = None
        self._wake.set()

    async def sync(self) -> SyncResult:
        """One sync, now. Never raises for an nft failure: the next one is then full."""
        start = self.clock.monotonic()
        if self.state is not None and start - self._last_check >= self.check_interval:
            self._last_check = start
            chains = await self.nft.list_chains(self.cfg.family, self.cfg.table)
            if chains is None or not expected_chains(self.state) <= chains:
                log.warning("netpol table %s missing or changed: full sync", self.cfg.table)
                self.state = None
        if self.state is not None and start - self._last_full >= self.full_sync_period:
            self.state = None
        changes = len(self.tracker.drain())
        self._drains += 1
        drain = self._drains
        full = self.state is None
        if not full and not changes:
            self._mark_applied(drain)  # the kernel already holds everything drained
            return SyncResult(False, True, 0, 0.0)
        with paused_gc():
            compiled = self.tracker.compile(self.cfg.node_name)
            desired = desired_state(compiled, self.cfg.pod_cidr, self.cfg.flow_log, self._objects)
        try:
            tx: Transaction | None = None
            if not full:
                assert self.state is not None
                tx = build_partial(self.cfg, self.state, desired)
                try:
                    if len(tx):
                        await self.nft.apply(tx)
                except NftError as e:
                    # A partial transaction rests on our belief about the kernel's table: when
                    # nft refuses it, rebuilding the table now repairs it.
                    log.warning("partial netpol sync failed (%s): full sync now", e)
                    full = True
            if full:
                tx = build_full(self.cfg, desired)
                await self.nft.apply(tx)
                self._last_full = self._last_check = start
        except NftError as e:
            log.error("netpol sync failed (%s): the next sync is a full one", e)
            self.state = None
            result = SyncResult(full, False, 0, self.clock.monotonic() - start, changes, str(e))
            self._record(result)
            return result
        assert tx is not None
        await self._flush_denied(compiled)
        self.state, self.compiled = desired, compiled
        self._mark_applied(drain)
        result = SyncResult(full, True, len(tx), self.clock.monotonic() - start, changes)
        self._record(result)
        return result

    async def _flush_denied(self, compiled: Compiled) -> None:
        """Delete the conntrack entries of connections the new rules deny (see :mod:`stale`),
        before the sync counts as programmed."""
        if self.conntrack is None:
            return
        pods = narrowed(self.compiled, compiled)
        if not any(pods.values()):
            return
        try:
            stale = denied_entries(compiled, pods, await self.conntrack.list())
            if stale:
                await self.conntrack.delete(sorted({e.filter() for e in stale}))
        except ConntrackError as e:
            # The rules are in: new connections are judged; only old ones may linger.
            log.warning("netpol: deleting denied conntrack entries: %s", e)

    async def cleanup(self) -> None:
        """Delete the table (it owns it: nothing else lives there)."""
        await self.nft.apply(build_cleanup(self.cfg))
        self.state = None
