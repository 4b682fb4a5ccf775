"""The real ``nft`` agrees with the fake: the same transactions are refused with the same
typed errors and leave the table unchanged (the rollback); the accepted ones are accepted;
and after either, the real kernel's table equals the fake's (``nft -j list table`` of both,
normalised: svcnet/testing/nft_compare.py). The proxy's own syncs (full, partial, a refused
one and the full sync after it) are compared the same way after each step.

Runs in scratch network namespaces of its own (removed in ``finally``).
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from svcnet.dataplane.conntrack import FakeConntrack
from svcnet.dataplane.nft import (
    Element,
    ElementOp,
    NftError,
    Transaction,
    TransactionBuilder,
    Verb,
)
from svcnet.dataplane.nft_exec import NftExecutor
from svcnet.dataplane.nft_fake import FakeNft
from svcnet.proxy.changetracker import ChangeTracker
from svcnet.proxy.rules import FAMILY, TABLE, ProxyConfig
from svcnet.proxy.syncer import Syncer
from svcnet.testing.nft_compare import fake_table_in_kernel, real_table

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]


def _unit_module(name: str, relative: str) -> ModuleType:
    """A module of the unit tests (their cases and builders), loaded by path."""
    path = Path(__file__).resolve().parents[1] / "unit" / relative
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CASES = _unit_module("nft_fake_cases", "dataplane/test_nft_fake.py")
B = _unit_module("proxy_builders", "proxy/builders.py")

# Fixture ranges as in tests/unit/proxy/builders.py: pods 10.244.0.0/16, Services 10.96.0.0/16.
SERVICES = [
    B.service("web", "10.96.0.5", sessionAffinity="ClientIP"),
    B.service(
        "dns", "10.96.0.10", [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53}]
    ),
    B.service("np", "10.96.0.7", type="NodePort",
              ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]),
]  # fmt: skip


def slice_of(service: str, *ips: str) -> dict[str, Any]:
    eps = [B.endpoint(ip, "node-1" if ip.startswith("10.244.1.") else "node-2") for ip in ips]
    if service == "dns":
        return B.endpoint_slice("dns", eps, [{"name": "dns", "port": 53, "protocol": "UDP"}])
    return B.endpoint_slice(service, eps)


SLICES = [
    slice_of("web", "10.244.1.5", "10.244.2.5"),
    slice_of("dns", "10.244.1.53", "10.244.2.53"),
    slice_of("np", "10.244.2.8"),
]


@pytest.fixture
def netns() -> Iterator[Callable[[str], NftExecutor]]:
    """Scratch namespaces by suffix, each with an executor; all removed afterwards."""
    made: list[str] = []

    def make(suffix: str) -> NftExecutor:
        ns = f"kpxx-{os.getpid() % 100000}-{suffix}"
        subprocess.run(["ip", "netns", "add", ns], check=True)
        made.append(ns)
        return NftExecutor(netns=ns)

    try:
        yield make
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], check=False)


@dataclass
class Pair:
    """The real nft and the fake, given the same transactions; a scratch kernel to load the
    fake's table into for comparison."""

    real: NftExecutor
    fake: FakeNft
    scratch: NftExecutor

    def apply(self, tx: Transaction) -> NftError | None:
        """Apply to both; the error both raised (they must agree on refusing)."""
        errors: list[NftError | None] = []
        for apply in (self.real.apply_sync, self.fake.apply_sync):
            try:
                apply(tx)
                errors.append(None)
            except NftError as e:
                errors.append(e)
        real, fake = errors
        assert type(real) is type(fake), f"real nft: {real!r}; fake: {fake!r}"
        return real

    def assert_same_tables(self, family: str, table: str) -> None:
        real = real_table(self.real, family, table)
        fake = fake_table_in_kernel(self.fake, self.scratch, family, table)
        assert real == fake, "\n".join(_diff(fake, real))


def _diff(fake: object, real: object) -> list[str]:
    return list(
        difflib.unified_diff(
            json.dumps(fake, indent=1, sort_keys=True).splitlines(),
            json.dumps(real, indent=1, sort_keys=True).splitlines(),
            "fake",
            "real",
            lineterm="",
        )
    )


@pytest.fixture
def pair(netns: Callable[[str], NftExecutor]) -> Pair:
    p = Pair(netns("real"), FakeNft(), netns("scratch"))
    assert p.apply(CASES.base().build()) is None
    p.assert_same_tables("ip", "t")
    return p


@pytest.mark.parametrize(
    ("name", "build", "error"), CASES.REFUSED, ids=[r[0] for r in CASES.REFUSED]
)
def test_real_nft_refuses_like_the_fake_and_both_keep_the_table(
    pair: Pair, name: str, build: Callable[[TransactionBuilder], None], error: type[NftError]
) -> None:
    before = pair.real.list_table("ip", "t")
    assert isinstance(pair.apply(CASES.tx(build).build()), error)
    assert pair.real.list_table("ip", "t") == before
    pair.assert_same_tables("ip", "t")


@pytest.mark.parametrize(("name", "build"), CASES.ACCEPTED, ids=[a[0] for a in CASES.ACCEPTED])
def test_real_nft_accepts_like_the_fake_and_both_hold_the_same_table(
    pair: Pair, name: str, build: Callable[[TransactionBuilder], None]
) -> None:
    assert pair.apply(CASES.tx(build).build()) is None
    pair.assert_same_tables("ip", "t")


class TeeNft:
    """The proxy's applier: every transaction to the real nft and to the fake (see Pair);
    the reads come from the real one. ``poison`` appends an operation both must refuse to
    the next transaction, so that its rollback is compared too."""

    def __init__(self, pair: Pair) -> None:
        self.pair = pair
        self.poison = False
        self.refused = 0

    async def apply(self, tx: Transaction) -> None:
        if self.poison:
            self.poison = False
            bad = ElementOp(Verb.DELETE, "no-such-map", (Element(("10.0.0.1",)),))
            tx = replace(tx, ops=(*tx.ops, bad))
        error = self.pair.apply(tx)
        # After each transaction, accepted or refused (and rolled back): the syncer goes
        # straight on to a full sync after a refusal, within the same sync() call.
        self.pair.assert_same_tables(tx.family, tx.table)
        if error is not None:
            self.refused += 1
            raise error

    async def list_chains(self, family: str, table: str) -> set[str] | None:
        return await self.pair.real.list_chains(family, table)

    async def list_elements(self, family: str, table: str, name: str) -> list[Element]:
        return await self.pair.real.list_elements(family, table, name)


async def test_proxy_syncs_leave_the_same_table_in_the_real_nft_and_the_fake(
    netns: Callable[[str], NftExecutor],
) -> None:
    pair = Pair(netns("real"), FakeNft(), netns("scratch"))
    tee = TeeNft(pair)
    tracker = ChangeTracker()
    cfg = ProxyConfig(node_name="node-1", cluster_cidr="10.244.0.0/16", node_ips=(B.NODE_IP,))
    syncer = Syncer(cfg, tracker, tee, FakeConntrack())

    def step(*objs: dict[str, Any], poison: bool = False) -> None:
        for o in objs:
            if o["kind"] == "Service":
                tracker.upsert_service(o)
            else:
                tracker.upsert_slice(o)
        tee.poison = poison

    steps: list[tuple[str, Callable[[], None]]] = [
        ("full sync", lambda: step(*SERVICES, *SLICES)),
        ("endpoint added", lambda: step(slice_of("web", "10.244.1.5", "10.244.2.5", "10.244.2.6"))),
        ("refused partial sync, then a full one", lambda: step(slice_of("web", "10.244.2.6"), poison=True)),
        ("service removed", lambda: tracker.delete_service(SERVICES[1])),
        ("endpoints gone", lambda: step(slice_of("web"))),
        ("endpoints back", lambda: step(slice_of("web", "10.244.1.7"))),
    ]  # fmt: skip
    fulls = []
    for name, change in steps:
        change()
        result = await syncer.sync()
        assert result.ok, (name, result)
        fulls.append(result.full)
        pair.assert_same_tables(FAMILY, TABLE)
    assert fulls == [True, False, True, False, False, False]
    assert tee.refused == 1
