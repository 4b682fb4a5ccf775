"""The fake keeps the kernel's rules. Ranges: 192.0.2.0/24 (TEST-NET-1) only."""

from __future__ import annotations

import pytest

from svcnet.dataplane.fake_netns import FakeNetns
from svcnet.dataplane.netns import AlreadyExists, NetnsError, NotFound, Route, RouteType


def make() -> FakeNetns:
    ops = FakeNetns()
    ops.add_netns("a")
    ops.add_veth(None, "va", "a", "eth0")
    return ops


def test_adding_a_namespace_twice_is_file_exists() -> None:
    with pytest.raises(AlreadyExists):
        make().add_netns("a")


def test_deleting_a_namespace_removes_the_peer_of_its_veth() -> None:
    ops = make()
    ops.delete_netns("a")
    assert [link.name for link in ops.list_links(None)] == ["lo"]


def test_deleting_one_veth_end_removes_the_other() -> None:
    ops = make()
    ops.delete_link(None, "va")
    assert [link.name for link in ops.list_links("a")] == ["lo"]


def test_operations_on_a_missing_namespace_fail_not_found() -> None:
    with pytest.raises(NotFound):
        FakeNetns().set_up("nope", "lo")


def test_gateway_off_any_connected_subnet_is_rejected() -> None:
    ops = make()
    with pytest.raises(NetnsError, match="invalid gateway"):
        ops.replace_route("a", Route("10.0.0.0/8", via="192.0.2.9"))


def test_connected_route_exists_only_while_the_link_is_up() -> None:
    ops = make()
    ops.add_address("a", "eth0", "192.0.2.5/24")
    assert ops.route_get("a", "192.0.2.9").type is RouteType.UNREACHABLE
    ops.set_up("a", "eth0")
    assert ops.route_get("a", "192.0.2.9").dev == "eth0"


@pytest.mark.parametrize(
    ("dst", "expected"),
    [
        ("10.1.2.3", ("unicast", "192.0.2.1")),  # /24 beats /16
        ("10.1.9.9", ("unreachable", None)),  # only the fallback covers it
        ("10.2.0.1", ("unreachable", None)),  # nothing covers it
    ],
)
def test_route_lookup_is_longest_prefix_then_metric(
    dst: str, expected: tuple[str, str | None]
) -> None:
    ops = make()
    ops.add_address("a", "eth0", "192.0.2.5/24")
    ops.set_up("a", "eth0")
    ops.replace_route("a", Route("10.1.0.0/16", type=RouteType.UNREACHABLE, metric=10))
    ops.replace_route("a", Route("10.1.2.0/24", via="192.0.2.1"))
    got = ops.route_get("a", dst)
    assert (got.type.value, got.via) == expected


@pytest.mark.parametrize(
    ("second", "exists"),
    [
        (Route("10.1.0.0/16", type=RouteType.UNREACHABLE, metric=10), True),
        (Route("10.1.0.0/16", dev="eth0", metric=10), True),  # type and dev are not the key
        (Route("10.1.0.0/16", type=RouteType.UNREACHABLE, metric=11), False),
        (Route("10.1.0.0/24", type=RouteType.UNREACHABLE, metric=10), False),
    ],
)
def test_adding_a_route_with_the_same_destination_and_metric_is_file_exists(
    second: Route, exists: bool
) -> None:
    ops = make()
    ops.set_up("a", "eth0")
    ops.add_route("a", Route("10.1.0.0/16", type=RouteType.UNREACHABLE, metric=10))
    if exists:
        with pytest.raises(AlreadyExists):
            ops.add_route("a", second)
    else:
        ops.add_route("a", second)
        assert second in ops.list_routes("a")
