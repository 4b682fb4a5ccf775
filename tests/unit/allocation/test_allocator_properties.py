"""Property tests: random sequences of allocate / allocate_specific / release against a set model.

Never two owners of one value; a release makes the value free; FULL exactly when the model has
no free value left. Fixture ranges: 10.0.0.0/27 (30 addresses), 30000-30039.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from svcnet.apiserver.allocation import (
    AllocationError,
    AllocationErrorKind,
    IPAllocator,
    PortAllocator,
)

IPS = [f"10.0.0.{i}" for i in range(1, 31)]
PORTS = list(range(30000, 30040))

OPS = st.lists(
    st.tuples(st.sampled_from(["next", "specific", "release"]), st.integers(0, 39)),
    max_size=120,
)


def run_ops(alloc: Any, values: Sequence[Any], ops: list[tuple[str, int]]) -> None:
    owned: set[object] = set()
    for op, index in ops:
        value = values[index % len(values)]
        if op == "next":
            try:
                got = alloc.allocate()
            except AllocationError as e:
                assert e.kind is AllocationErrorKind.FULL
                assert len(owned) == len(values)
                continue
            assert got not in owned, f"{got} handed out twice"
            owned.add(got)
        elif op == "specific":
            try:
                alloc.allocate_specific(value)
            except AllocationError as e:
                assert e.kind is AllocationErrorKind.ALREADY_ALLOCATED
                assert value in owned
                continue
            assert value not in owned
            owned.add(value)
        else:
            assert alloc.release(value) == (value in owned)
            owned.discard(value)
            assert not alloc.has(value)
        assert alloc.used == len(owned)
        assert set(alloc.allocated()) == owned


@settings(max_examples=200)
@given(ops=OPS, seed=st.integers(0, 2**32))
def test_ip_allocator_matches_a_set_model(ops: list[tuple[str, int]], seed: int) -> None:
    run_ops(IPAllocator("10.0.0.0/27", rng=random.Random(seed)), IPS, ops)


@settings(max_examples=200)
@given(ops=OPS, seed=st.integers(0, 2**32))
def test_port_allocator_matches_a_set_model(ops: list[tuple[str, int]], seed: int) -> None:
    run_ops(PortAllocator(30000, 30039, rng=random.Random(seed)), PORTS, ops)


@settings(max_examples=50)
@given(seed=st.integers(0, 2**32), release=st.lists(st.sampled_from(IPS), unique=True))
def test_filling_releasing_and_refilling_hands_out_exactly_the_freed_ips(
    seed: int, release: list[str]
) -> None:
    alloc = IPAllocator("10.0.0.0/27", rng=random.Random(seed))
    assert sorted(alloc.allocate() for _ in IPS) == sorted(IPS)
    for ip in release:
        alloc.release(ip)
    assert sorted(alloc.allocate() for _ in release) == sorted(release)
    try:
        alloc.allocate()
    except AllocationError as e:
        assert e.kind is AllocationErrorKind.FULL
    else:
        raise AssertionError("allocated from a full range")


@settings(max_examples=100)
@given(
    seed=st.integers(0, 2**32),
    reserved=st.sets(st.sampled_from(IPS), max_size=10),
    released=st.sets(st.sampled_from(IPS)),
)
def test_dynamic_allocation_never_hands_out_a_reserved_ip(
    seed: int, reserved: set[str], released: set[str]
) -> None:
    alloc = IPAllocator("10.0.0.0/27", reserved, rng=random.Random(seed))
    dynamic = [alloc.allocate() for _ in range(len(IPS) - len(reserved))]
    assert set(dynamic) == set(IPS) - reserved
    for ip in released:
        alloc.release(ip)
    again = [alloc.allocate() for _ in range(len(released - reserved))]
    assert set(again) == released - reserved
    for ip in reserved:
        assert alloc.allocate_specific(ip) == ip
    assert alloc.free == 0
