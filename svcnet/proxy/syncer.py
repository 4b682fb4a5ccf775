"""The proxy's sync loop: drain the change tracker, build one transaction, apply it once.

Like kube-proxy's BoundedFrequencyRunner (:class:`~svcnet.util.syncloop.SyncLoop`):
:meth:`Syncer.request` (called after every recorded change) wakes the loop; two syncs are at
least ``min_interval`` apart, so a burst of changes becomes one transaction. A sync is partial (only the changed Services) unless the previous one
failed, the table is missing or not what we wrote (checked cheaply every ``check_interval``),
or ``full_sync_period`` has passed: then everything is rewritten. After the rules, conntrack
entries made stale for UDP/SCTP are deleted (kube-proxy's order: rules first, so that new
packets are already DNATed to live endpoints).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from svcnet.dataplane.conntrack import Conntrack, ConntrackError
from svcnet.dataplane.nft import Element, NftError, Transaction, TransactionBuilder
from svcnet.proxy.changetracker import Change, ChangeTracker
from svcnet.proxy.model import ServiceKey
from svcnet.proxy.rules import (
    AFFINITY,
    ProxyConfig,
    ProxyState,
    build_cleanup,
    build_full,
    build_partial,
    commit,
    expected_chains,
)
from svcnet.proxy.stale import AffinityEntry, removed_affinity_endpoints, stale_flows
from svcnet.util.clock import REAL_CLOCK, Clock
from svcnet.util.syncloop import SyncLoop

log = logging.getLogger(__name__)


class NftApplier(Protocol):
    async def apply(self, tx: Transaction) -> None: ...

    async def list_elements(self, family: str, table: str, name: str) -> list[Element]: ...

    async def list_chains(self, family: str, table: str) -> set[str] | None: ...


@dataclass(frozen=True, slots=True)
class SyncResult:
    full: bool
    ok: bool
    operations: int
    seconds: float
    error: str = ""


class Syncer(SyncLoop[SyncResult]):
    def __init__(
        self,
        cfg: ProxyConfig,
        tracker: ChangeTracker,
        nft: NftApplier,
        conntrack: Conntrack,
        *,
        clock: Clock = REAL_CLOCK,
        min_interval: float = 0.05,
        check_interval: float = 10.0,
        full_sync_period: float = 3600.0,
        retry_interval: float = 1.0,
        on_sync: Callable[[SyncResult], None] | None = None,
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
        self.conntrack = conntrack
        self.full_sync_period = full_sync_period
        self.state: ProxyState | None = None  # None: the next sync is a full one
        self._last_full = float("-inf")
        self._last_check = float("-inf")
        # Changes drained by a sync that failed: their conntrack and affinity clean-up still
        # has to run once a later sync has programmed the rules.
        self._unflushed: dict[ServiceKey, Change] = {}

    def request_full(self) -> None:
        self.state = None
        self._wake.set()

    async def sync(self) -> SyncResult:
        """One sync, now. Never raises for an nft failure: the next one is then full."""
        start = self.clock.monotonic()
        if self.state is not None and start - self._last_check >= self.check_interval:
            self._last_check = start
            chains = await self.nft.list_chains(self.cfg.family, self.cfg.table)
            if chains is None or not expected_chains(self.cfg, self.state) <= chains:
                log.warning("proxy table %s missing or changed: full sync", self.cfg.table)
                self.state = None
        if self.state is not None and start - self._last_full >= self.full_sync_period:
            self.state = None
        changes = self.tracker.drain()
        full = self.state is None
        tx: Transaction | None = None
        try:
            if not full:
                try:
                    tx = await self._apply_partial(changes)
                except NftError as e:
                    # A partial transaction rests on our belief about the kernel's table;
                    # when nft refuses it (the table changed behind our back, or a kernel
                    # error) a full sync now repairs it instead of a retry later, as
                    # kube-proxy does.
                    log.warning("partial proxy sync failed (%s): full sync now", e)
                    self.state, full = None, True
            if full:
                tx = await self._apply_full(start)
        except NftError as e:
            log.error("proxy sync failed (%s): the next sync is a full one", e)
            self.state = None
            self._unflushed = _merge_changes(self._unflushed, changes)
            result = SyncResult(full, False, 0, self.clock.monotonic() - start, str(e))
            self._record(result)
            return result
        assert tx is not None
        changes, self._unflushed = _merge_changes(self._unflushed, changes), {}
        gone = removed_affinity_endpoints(changes, self.cfg.node_ips)
        if gone:  # also after a full sync: it keeps the affinity map as it is
            await self._forget_affinity(gone)
        flows = stale_flows(changes, self.cfg.node_ips)
        if flows:
            try:
                await self.conntrack.delete(flows)
            except ConntrackError as e:
                log.warning("conntrack flush failed: %s", e)
        result = SyncResult(full, True, len(tx), self.clock.monotonic() - start)
        self._record(result)
        return result

    async def _apply_full(self, start: float) -> Transaction:
        existing = await self.nft.list_chains(self.cfg.family, self.cfg.table) or set()
        services = {k: s.port_endpoints() for k, s in self.tracker.snapshots().items()}
        tx, state = build_full(self.cfg, services, existing)
        await self.nft.apply(tx)
        self.state = state
        self._last_full = self._last_check = start
        return tx

    async def _apply_partial(self, changes: dict[ServiceKey, Change]) -> Transaction:
        assert self.state is not None
        changed = {k: c.current.port_endpoints() for k, c in changes.items() if c.current}
        removed = [k for k, c in changes.items() if c.current is None]
        tx, delta = build_partial(self.cfg, self.state, changed, removed)
        if len(tx):
            await self.nft.apply(tx)
        commit(self.state, delta)
        return tx

    async def cleanup(self) -> None:
        """Delete the proxy's table (it owns it: nothing else lives there)."""
        await self.nft.apply(build_cleanup(self.cfg))
        self.state = None

    async def _forget_affinity(self, gone: dict[AffinityEntry, set[tuple[str, str]]]) -> None:
        """Delete affinity entries that point at endpoints which are gone."""
        fam, table = self.cfg.family, self.cfg.table
        try:
            elements = await self.nft.list_elements(fam, table, AFFINITY)
        except NftError as err:
            log.warning("listing session affinity failed: %s", err)
            return
        stale = [
            e
            for e in elements
            if isinstance(e.data, tuple) and e.data in gone.get((e.key[1], e.key[2], e.key[3]), ())
        ]
        if not stale:
            return
        b = TransactionBuilder(fam, table)
        b.delete_elements(AFFINITY, stale)
        try:
            await self.nft.apply(b.build())
        except NftError:
            # One entry expired between listing and deleting: delete the others one by one.
            for e in stale:
                one = TransactionBuilder(fam, table)
                one.delete_elements(AFFINITY, [e])
                with contextlib.suppress(NftError):
                    await self.nft.apply(one.build())


def _merge_changes(
    older: dict[ServiceKey, Change], newer: dict[ServiceKey, Change]
) -> dict[ServiceKey, Change]:
    """Two batches as one: each key keeps its oldest ``previous`` and newest ``current``."""
    merged = dict(older)
    for key, change in newer.items():
        before = merged.get(key)
        merged[key] = Change(before.previous, change.current) if before else change
    return merged
