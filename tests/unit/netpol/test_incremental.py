"""The incremental compiler: after any sequence of changes, the tracker's compile of a node
equals a compile from scratch of the same objects (and the nft objects kept per policy the
table built anew), and a change recompiles only the policies it can touch.

Fixture ranges: see ``builders``.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from svcnet.netpol.changetracker import ChangeTracker
from svcnet.netpol.compiler import Compiled, CompiledPolicy, compile_policies, judge
from svcnet.netpol.model import Direction, PolicyKey, Protocol
from svcnet.netpol.rules import FLOW_LOG, PolicyObjects, desired_state
from svcnet.netpol.stale import narrowed

from .builders import NAMESPACES, NODE_IPS, POD_NAMES, layout, namespace, pod, pod_ip, policy
from .test_partial import _feed, _objects_after


def _from_scratch(tracker: ChangeTracker, node: str) -> Compiled:
    return compile_policies(
        node, tracker._policies.values(), tracker._pods.values(), tracker._namespaces.values()
    )


@pytest.mark.parametrize("seed", range(12))
def test_incremental_compile_equals_a_compile_from_scratch(seed: int) -> None:
    rng = random.Random(seed)
    tracker = ChangeTracker()
    for o in layout():
        _feed(tracker, o)
    memos = {node: PolicyObjects() for node in NODE_IPS}
    previous: dict[str, Compiled] = {}
    for step in range(60):
        for o in _objects_after(step, rng):
            _feed(tracker, o)
        if rng.random() < 0.3:
            # An egress rule with a named port to any peer: its destinations are every pod.
            _feed(
                tracker,
                policy(
                    "named-any",
                    ns=rng.choice("xyz"),
                    policy_types=["Egress"],
                    egress=[{"ports": [{"port": "serve-81-tcp"}]}],
                ),
            )
        for node in NODE_IPS:
            compiled = tracker.compile(node)
            scratch = _from_scratch(tracker, node)
            assert compiled == scratch, (seed, step, node)
            # The nft objects kept per policy make the same table as building them anew.
            kept = desired_state(compiled, "10.244.0.0/16", FLOW_LOG, memos[node])
            assert kept == desired_state(scratch, "10.244.0.0/16", FLOW_LOG), (seed, step, node)
            # The pods whose conntrack entries are not judged again lost nothing.
            before = previous.get(node)
            if before is not None:
                for d, pods in narrowed(before, compiled).items():
                    _widened_or_equal(before, compiled, pods, d)
            previous[node] = compiled


def _widened_or_equal(old: Compiled, new: Compiled, pods: frozenset[str], d: Direction) -> None:
    """Every connection ``old`` allows for a local pod outside ``pods``, ``new`` allows too."""
    peers = [pod_ip(ns, name) for ns in NAMESPACES for name in POD_NAMES] + ["192.168.0.1"]
    for ip in set(new.isolated[d]) - pods:
        for peer in peers:
            for proto in (Protocol.TCP, Protocol.UDP):
                for port in (80, 81):
                    if judge(old, d, ip, peer, proto, port).allowed:
                        assert judge(new, d, ip, peer, proto, port).allowed, (ip, peer, port)


def _forms(tracker: ChangeTracker, node: str) -> dict[tuple[Direction, PolicyKey], CompiledPolicy]:
    return dict(tracker.compile(node).policies)


ALLOW_FROM_Y = policy(
    "from-y",
    ns="x",
    podSelector={"matchLabels": {"pod": "a"}},
    ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}],
)
DENY_Z = policy("deny", ns="z", policy_types=["Ingress"])


@pytest.mark.parametrize(
    ("change", "recompiled"),
    [
        (policy("new", ns="y", policy_types=["Ingress"]), {"y/new"}),
        (pod("z", "a", {"pod": "a", "v": "2"}), {"z/deny"}),  # its namespace's policies
        (pod("y", "b", {"pod": "b", "v": "2"}), {"x/from-y"}),  # a namespaceSelector's pod
        (namespace("z", {"ns": "z", "v": "2"}), {"x/from-y"}),  # namespace labels
    ],
)
def test_a_change_recompiles_only_what_it_touches(
    change: dict[str, Any], recompiled: set[str]
) -> None:
    tracker = ChangeTracker()
    for o in [*layout(), ALLOW_FROM_Y, DENY_Z]:
        _feed(tracker, o)
    before = _forms(tracker, "node-1")
    _feed(tracker, change)
    after = _forms(tracker, "node-1")
    redone = {str(k[1]) for k, v in after.items() if before.get(k) is not v}
    assert redone == recompiled
