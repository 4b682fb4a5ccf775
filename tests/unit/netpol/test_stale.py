"""Conntrack entries a NetworkPolicy sync makes stale: those of narrowed local pods that the new
model denies, judged after DNAT; the syncer deletes them before the sync counts as applied.

Fixture ranges: see ``builders``; 10.96.0.5 a ClusterIP DNATed to x/a.
"""

from __future__ import annotations

from svcnet.dataplane.conntrack import Entry, FakeConntrack, FlowFilter, parse_entries
from svcnet.dataplane.nft_fake import FakeNft
from svcnet.netpol.changetracker import ChangeTracker
from svcnet.netpol.model import Direction
from svcnet.netpol.rules import NetpolConfig
from svcnet.netpol.stale import denied_entries, narrowed
from svcnet.netpol.syncer import Syncer
from svcnet.util.clock import FakeClock

from .builders import layout, pod_ip, policy

A, B, YC = pod_ip("x", "a"), pod_ip("x", "b"), pod_ip("y", "c")
ALLOW_FROM_B = policy(
    "allow-b",
    podSelector={"matchLabels": {"pod": "a"}},
    ingress=[{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}],
)


def entry(src: str, dst: str, dport: int = 80, reply_src: str | None = None) -> Entry:
    return Entry("tcp", src, dst, 40000, dport, reply_src or dst, dport)


def tracker_with(*objs: dict) -> ChangeTracker:  # type: ignore[type-arg]
    t = ChangeTracker()
    for o in layout():
        (t.upsert_pod if o["kind"] == "Pod" else t.upsert_namespace)(o)
    for o in objs:
        t.upsert_policy(o)
    return t


def test_parse_conntrack_list_lines() -> None:
    text = (
        "tcp      6 431995 ESTABLISHED src=10.244.2.22 dst=10.96.0.5 sport=40000 dport=80 "
        "src=10.244.1.10 dst=10.244.2.22 sport=8080 dport=40000 [ASSURED] mark=0 use=1\n"
        "udp      17 29 src=10.244.1.10 dst=10.244.2.22 sport=5000 dport=53 [UNREPLIED] "
        "src=10.244.2.22 dst=10.244.1.10 sport=53 dport=5000 mark=0 use=1\n"
        "icmp     1 29 src=10.244.1.10 dst=10.244.2.22 type=8 code=0 id=1 src=10.244.2.22\n"
        "conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.\n"
    )
    assert parse_entries(text) == [
        Entry("tcp", "10.244.2.22", "10.96.0.5", 40000, 80, "10.244.1.10", 8080),
        Entry("udp", "10.244.1.10", "10.244.2.22", 5000, 53, "10.244.2.22", 53),
    ]


def test_only_pods_whose_policies_changed_are_narrowed() -> None:
    before = tracker_with().compile("node-1")
    after = tracker_with(ALLOW_FROM_B).compile("node-1")
    assert narrowed(before, after) == {Direction.INGRESS: {A}, Direction.EGRESS: frozenset()}
    assert narrowed(after, after) == {d: frozenset() for d in Direction}


def test_denied_entries_are_judged_after_dnat() -> None:
    t = tracker_with(ALLOW_FROM_B)
    new = t.compile("node-1")
    pods = narrowed(None, new)
    via_service = entry(YC, "10.96.0.5", reply_src=A)
    entries = [entry(B, A), entry(YC, A), via_service, entry(YC, B)]
    assert denied_entries(new, pods, entries) == [entry(YC, A), via_service]


async def test_syncer_deletes_denied_entries_of_a_new_deny() -> None:
    t = tracker_with()
    ct = FakeConntrack(entries=[entry(B, A), entry(YC, A), entry(YC, B)])
    s = Syncer(NetpolConfig("node-1"), t, FakeNft(), clock=FakeClock(), conntrack=ct)
    await s.sync()
    assert len(ct.entries) == 3  # no policy: nothing denied
    t.upsert_policy(ALLOW_FROM_B)
    await s.sync()
    assert ct.entries == [entry(B, A), entry(YC, B)]


async def test_one_filter_deletes_every_connection_of_a_client_to_a_target_port() -> None:
    t = tracker_with()
    loop = [Entry("tcp", YC, A, sport, 80, A, 80) for sport in range(40000, 40100)]
    ct = FakeConntrack(entries=[*loop, entry(B, A)])
    s = Syncer(NetpolConfig("node-1"), t, FakeNft(), clock=FakeClock(), conntrack=ct)
    await s.sync()
    t.upsert_policy(ALLOW_FROM_B)
    await s.sync()
    assert ct.entries == [entry(B, A)]
    assert ct.deleted == [FlowFilter("tcp", orig_src=YC, reply_src=A, reply_sport=80)]
