"""What `svcnet up` refuses to start without, and the message naming what to install."""

from __future__ import annotations

import pytest

from svcnet.cluster.preflight import message, missing


def test_non_root_stops_at_once_whatever_is_installed() -> None:
    text = message(1000, [])
    assert text is not None and "needs root" in text


def test_root_with_everything_installed_passes() -> None:
    assert message(0, []) is None


@pytest.mark.parametrize(
    ("absent_commands", "absent_files", "packages"),
    [
        ({"nft"}, set(), ["nftables"]),
        ({"conntrack"}, set(), ["conntrack"]),
        ({"ip"}, set(), ["iproute2"]),
        (set(), {"/usr/lib/cni/bridge", "/opt/cni/bin/bridge"}, ["containernetworking-plugins"]),
        ({"nft", "conntrack"}, set(), ["conntrack", "nftables"]),
    ],
)
def test_missing_tools_name_their_debian_package(
    absent_commands: set[str], absent_files: set[str], packages: list[str]
) -> None:
    absent = missing(
        which=lambda c: None if c in absent_commands else f"/usr/bin/{c}",
        exists=lambda p: p not in absent_files,
    )
    text = message(0, absent)
    assert text is not None
    assert text.endswith("apt-get install " + " ".join(packages))
    for c in absent_commands:
        assert c in text


def test_cni_plugin_found_in_opt_is_enough() -> None:
    absent = missing(which=lambda c: "/x", exists=lambda p: p.startswith("/opt/cni/bin/"))
    assert absent == []
