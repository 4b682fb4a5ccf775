"""ClusterIP allocation. Fixture ranges: 10.96.0.0/16 (default), 10.0.0.0/24, 10.0.0.0/28,
fd00:96::/112 (IPv6)."""

from __future__ import annotations

import ipaddress
import random

import pytest

from svcnet.apiserver.allocation import (
    AllocationError,
    AllocationErrorKind,
    IPAllocator,
)

RANGE_MSG = "the provided IP ({ip}) is not in the valid range. The range of valid IPs is {cidr}"


@pytest.mark.parametrize(
    ("cidr", "taken", "ask", "kind", "detail"),
    [
        ("10.96.0.0/16", [], "10.96.0.5", None, ""),
        ("10.96.0.0/16", [], "10.96.255.254", None, ""),
        (
            "10.96.0.0/16",
            ["10.96.0.5"],
            "10.96.0.5",
            AllocationErrorKind.ALREADY_ALLOCATED,
            "failed to allocate IP 10.96.0.5: provided IP is already allocated",
        ),
        (
            "10.96.0.0/16",
            [],
            "10.96.0.0",
            AllocationErrorKind.OUT_OF_RANGE,
            "failed to allocate IP 10.96.0.0: "
            + RANGE_MSG.format(ip="10.96.0.0", cidr="10.96.0.0/16"),
        ),
        (
            "10.96.0.0/16",
            [],
            "10.96.255.255",
            AllocationErrorKind.OUT_OF_RANGE,
            "failed to allocate IP 10.96.255.255: "
            + RANGE_MSG.format(ip="10.96.255.255", cidr="10.96.0.0/16"),
        ),
        (
            "10.96.0.0/16",
            [],
            "10.97.0.1",
            AllocationErrorKind.OUT_OF_RANGE,
            "failed to allocate IP 10.97.0.1: "
            + RANGE_MSG.format(ip="10.97.0.1", cidr="10.96.0.0/16"),
        ),
        (
            "10.96.0.0/16",
            [],
            "fd00::1",
            AllocationErrorKind.OUT_OF_RANGE,
            "failed to allocate IP fd00::1: " + RANGE_MSG.format(ip="fd00::1", cidr="10.96.0.0/16"),
        ),
        (
            "10.96.0.0/16",
            [],
            "10.96.0.300",
            AllocationErrorKind.INVALID,
            'failed to parse service IP "10.96.0.300"',
        ),
        ("fd00:96::/112", [], "fd00:96::a", None, ""),
        (
            "fd00:96::/112",
            [],
            "fd00:96::",
            AllocationErrorKind.OUT_OF_RANGE,
            "failed to allocate IP fd00:96::: "
            + RANGE_MSG.format(ip="fd00:96::", cidr="fd00:96::/112"),
        ),
    ],
    ids=[
        "free",
        "last-usable",
        "already-allocated",
        "network-address",
        "broadcast-address",
        "outside-cidr",
        "other-family",
        "malformed",
        "ipv6-free",
        "ipv6-subnet-router",
    ],
)
def test_allocate_specific(
    cidr: str, taken: list[str], ask: str, kind: AllocationErrorKind | None, detail: str
) -> None:
    alloc = IPAllocator(cidr)
    assert alloc.restore(taken) == []
    if kind is None:
        assert alloc.allocate_specific(ask) == ask
        assert alloc.has(ask)
        return
    with pytest.raises(AllocationError) as info:
        alloc.allocate_specific(ask)
    assert info.value.kind is kind
    assert info.value.detail == detail == str(info.value)
    assert info.value.value == ask
    assert alloc.used == len(taken)


def test_specific_ipv6_is_returned_in_canonical_form() -> None:
    alloc = IPAllocator("fd00:96::/112")
    assert alloc.allocate_specific("fd00:96:0::00a") == "fd00:96::a"
    assert alloc.has("fd00:96::a")


@pytest.mark.parametrize(
    ("cidr", "size", "band"),
    [
        ("10.96.0.0/16", 65534, ("10.96.0.1", "10.96.1.0")),
        ("10.0.0.0/24", 254, ("10.0.0.1", "10.0.0.16")),
        ("10.0.0.0/20", 4094, ("10.0.0.1", "10.0.1.0")),
        ("10.0.0.0/28", 14, None),
        ("10.0.0.0/31", 0, None),
        ("fd00:96::/112", 65535, ("fd00:96::1", "fd00:96::100")),
        ("fd00::/64", 65535, ("fd00::1", "fd00::100")),
    ],
)
def test_range_size_and_static_band(cidr: str, size: int, band: tuple[str, str] | None) -> None:
    alloc = IPAllocator(cidr)
    assert alloc.size == size
    assert alloc.static_band == band


def test_dynamic_allocation_uses_the_upper_band_first_then_the_lower_band() -> None:
    alloc = IPAllocator("10.0.0.0/24", rng=random.Random(1))
    first = [alloc.allocate() for _ in range(254 - 16)]
    assert all(int(ip.split(".")[-1]) > 16 for ip in first)
    rest = [alloc.allocate() for _ in range(16)]
    assert sorted(int(ip.split(".")[-1]) for ip in rest) == list(range(1, 17))
    assert len(set(first + rest)) == 254


def test_dynamic_allocation_in_the_default_range_avoids_the_static_band() -> None:
    alloc = IPAllocator(rng=random.Random(7))
    low, high = ipaddress.IPv4Address("10.96.1.1"), ipaddress.IPv4Address("10.96.255.254")
    for _ in range(2000):
        assert low <= ipaddress.IPv4Address(alloc.allocate()) <= high


def test_dynamic_allocation_is_spread_randomly() -> None:
    alloc = IPAllocator(rng=random.Random(3))
    picks = [alloc.allocate() for _ in range(20)]
    assert picks != sorted(picks, key=ipaddress.ip_address)


def test_full_range_raises_full_with_the_upstream_text() -> None:
    alloc = IPAllocator("10.0.0.0/28")
    got = {alloc.allocate() for _ in range(14)}
    assert len(got) == 14
    with pytest.raises(AllocationError) as info:
        alloc.allocate()
    assert info.value.kind is AllocationErrorKind.FULL
    assert info.value.detail == "failed to allocate a serviceIP: range is full"
    assert info.value.message == "range is full"


def test_reserved_addresses_are_never_allocated_dynamically_but_can_be_asked_for() -> None:
    alloc = IPAllocator("10.0.0.0/28", {"10.0.0.1", "10.0.0.10"})
    got = {alloc.allocate() for _ in range(12)}
    assert not got & {"10.0.0.1", "10.0.0.10"}
    with pytest.raises(AllocationError):
        alloc.allocate()
    assert alloc.allocate_specific("10.0.0.10") == "10.0.0.10"
    assert alloc.release("10.0.0.10")
    with pytest.raises(AllocationError):
        alloc.allocate()


def test_reserved_address_outside_the_range_is_refused() -> None:
    with pytest.raises(ValueError):
        IPAllocator("10.96.0.0/16", {"10.97.0.1"})


def test_release_makes_an_address_free_again() -> None:
    alloc = IPAllocator("10.0.0.0/28")
    for _ in range(14):
        alloc.allocate()
    assert alloc.release("10.0.0.7")
    assert alloc.free == 1
    assert alloc.allocate() == "10.0.0.7"


@pytest.mark.parametrize("ip", ["10.0.0.5", "10.9.9.9", "garbage", "10.0.0.0"])
def test_release_of_an_unallocated_address_is_a_no_op(ip: str) -> None:
    alloc = IPAllocator("10.0.0.0/28")
    assert alloc.release(ip) is False
    assert alloc.used == 0


def test_check_specific_does_not_allocate() -> None:
    alloc = IPAllocator()
    assert alloc.check_specific("10.96.0.10") == "10.96.0.10"
    assert not alloc.has("10.96.0.10")
    alloc.allocate_specific("10.96.0.10")
    with pytest.raises(AllocationError) as info:
        alloc.check_specific("10.96.0.10")
    assert info.value.kind is AllocationErrorKind.ALREADY_ALLOCATED


def test_restore_allocates_stored_ips_and_reports_the_ones_it_cannot() -> None:
    alloc = IPAllocator()
    problems = alloc.restore(["10.96.0.1", "10.96.0.10", "10.96.0.10", "10.100.0.1"])
    assert alloc.allocated() == ["10.96.0.1", "10.96.0.10"]
    assert [(p.kind, p.value) for p in problems] == [
        (AllocationErrorKind.ALREADY_ALLOCATED, "10.96.0.10"),
        (AllocationErrorKind.OUT_OF_RANGE, "10.100.0.1"),
    ]
