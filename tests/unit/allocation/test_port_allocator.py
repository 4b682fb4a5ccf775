"""NodePort allocation. Fixture ranges: 30000-32767 (default), 30000-30099, 30000-30009."""

from __future__ import annotations

import random

import pytest

from svcnet.apiserver.allocation import AllocationError, AllocationErrorKind, PortAllocator

OUT_OF_RANGE = "provided port is not in the valid range. The range of valid ports is 30000-32767"


@pytest.mark.parametrize(
    ("taken", "ask", "kind", "detail"),
    [
        ([], 30080, None, ""),
        ([], 32767, None, ""),
        (
            [30080],
            30080,
            AllocationErrorKind.ALREADY_ALLOCATED,
            "provided port is already allocated",
        ),
        ([], 29999, AllocationErrorKind.OUT_OF_RANGE, OUT_OF_RANGE),
        ([], 32768, AllocationErrorKind.OUT_OF_RANGE, OUT_OF_RANGE),
        ([], 0, AllocationErrorKind.INVALID, "invalid port 0"),
    ],
    ids=["free", "last", "already-allocated", "below", "above", "zero"],
)
def test_allocate_specific(
    taken: list[int], ask: int, kind: AllocationErrorKind | None, detail: str
) -> None:
    alloc = PortAllocator()
    assert alloc.restore(taken) == []
    if kind is None:
        assert alloc.allocate_specific(ask) == ask
        assert alloc.has(ask)
        return
    with pytest.raises(AllocationError) as info:
        alloc.allocate_specific(ask)
    assert (info.value.kind, info.value.detail, info.value.value) == (kind, detail, ask)
    assert alloc.used == len(taken)


@pytest.mark.parametrize(
    ("low", "high", "band"),
    [
        (30000, 32767, (30000, 30085)),
        (30000, 30099, (30000, 30015)),
        (30000, 30015, None),
        (20000, 39999, (20000, 20127)),
    ],
)
def test_static_band(low: int, high: int, band: tuple[int, int] | None) -> None:
    assert PortAllocator(low, high).static_band == band


def test_dynamic_allocation_uses_the_upper_band_first_then_the_lower_band() -> None:
    alloc = PortAllocator(30000, 30099, rng=random.Random(5))
    first = [alloc.allocate() for _ in range(84)]
    assert all(port >= 30016 for port in first)
    rest = [alloc.allocate() for _ in range(16)]
    assert sorted(rest) == list(range(30000, 30016))


def test_full_range_raises_full_with_the_upstream_text() -> None:
    alloc = PortAllocator(30000, 30009)
    assert sorted(alloc.allocate() for _ in range(10)) == list(range(30000, 30010))
    with pytest.raises(AllocationError) as info:
        alloc.allocate()
    assert info.value.kind is AllocationErrorKind.FULL
    assert info.value.detail == "failed to allocate a nodePort: range is full"


def test_release_makes_a_port_free_again() -> None:
    alloc = PortAllocator(30000, 30009)
    for _ in range(10):
        alloc.allocate()
    assert alloc.release(30004)
    assert alloc.allocate() == 30004
    assert alloc.release(40000) is False


def test_reserved_ports_are_only_allocated_on_request() -> None:
    alloc = PortAllocator(30000, 30009, reserved={30000})
    assert 30000 not in {alloc.allocate() for _ in range(9)}
    with pytest.raises(AllocationError):
        alloc.allocate()
    assert alloc.allocate_specific(30000) == 30000


def test_check_specific_does_not_allocate() -> None:
    alloc = PortAllocator()
    assert alloc.check_specific(30080) == 30080
    assert not alloc.has(30080)


@pytest.mark.parametrize(("low", "high"), [(0, 10), (100, 99), (60000, 70000)])
def test_invalid_range_is_refused(low: int, high: int) -> None:
    with pytest.raises(ValueError):
        PortAllocator(low, high)
