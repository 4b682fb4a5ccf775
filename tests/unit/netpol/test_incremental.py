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
from svcnet.netpol.compiler import Compiled, CompiledPolicy, compile_policies
from svcnet.netpol.model import Direction, PolicyKey
from svcnet.netpol.rules import PolicyObjects, desired_state
from svcnet.netpol.stale import narrowed

from .builders import NODE_IPS, layout, namespace, pod, policy
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
            kept = desired_state(compiled, "10.244.0.0/16", memos[node])
            assert kept == desired_state(scratch, "10.244.0.0/16"), (seed, step, node)
            # The pods whose conntrack entries are judged again: found from changed policies.
            before = previous.get(node)
            assert narrowed(before, compiled) == _narrowed_by_signature(before, scratch)
            previous[node] = compiled


def _narrowed_by_signature(old: Compiled | None, new: Compiled) -> dict[Direction, frozenset[str]]:
    """What :func:`narrowed` means: isolated pods whose list of selecting policies differs."""

    def signatures(c: Compiled | None, d: Direction) -> dict[str, list[CompiledPolicy]]:
        out: dict[str, list[CompiledPolicy]] = {}
        for (direction, _), pol in (c.policies if c else {}).items():
            if direction is d:
                for ip in pol.targets:
                    out.setdefault(ip, []).append(pol)
        return out

    result = {}
    for d in Direction:
        before, after = signatures(old, d), signatures(new, d)
        result[d] = frozenset(
            ip for ip in new.isolated[d] if after.get(ip, []) != before.get(ip, [])
        )
    return result


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
