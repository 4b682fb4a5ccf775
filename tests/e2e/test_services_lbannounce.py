"""LoadBalancer announcement on the real kernel: the address moves between two "nodes" and the
"machine" follows at once thanks to the gratuitous ARP, without asking again.

Ranges: a scratch /24 of 172.30.0.0/16 chosen at random per test (machine .1, nodes .11/.12,
announced address .240); every namespace is named with a random ``zlb<hex>`` prefix and
removed afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from svcnet.agent.lbannounce import AddressApplier, AddressPlan, plan_addresses
from svcnet.dataplane.netns import IpRoute2, net_only_prefix

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]


@dataclass(frozen=True)
class Lan:
    machine: str  # namespace playing the machine (the bridge and its address)
    nodes: tuple[str, str]
    subnet: str  # "172.30.R"

    @property
    def lb_ip(self) -> str:
        return f"{self.subnet}.240"


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def lan() -> Iterator[Lan]:
    prefix = "zlb" + secrets.token_hex(3)
    subnet = f"172.30.{secrets.randbelow(250) + 1}"
    machine, nodes = f"{prefix}-m", (f"{prefix}-n1", f"{prefix}-n2")
    made: list[str] = []
    try:
        for ns in (machine, *nodes):
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", machine, "link", "add", "br0", "type", "bridge")
        _ip("-n", machine, "addr", "add", f"{subnet}.1/24", "dev", "br0")
        _ip("-n", machine, "link", "set", "br0", "up")
        for i, ns in enumerate(nodes, start=1):
            _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"p{i}",
                "netns", machine)  # fmt: skip
            _ip("-n", machine, "link", "set", f"p{i}", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{subnet}.{10 + i}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
        yield Lan(machine, nodes, subnet)
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "delete", ns], check=False)


def mac_of(ns: str, link: str) -> str:
    return str(json.loads(_ip("-n", ns, "-j", "link", "show", link))[0]["address"])


def neighbour_mac(ns: str, ip: str) -> str | None:
    for entry in json.loads(_ip("-n", ns, "-j", "neigh", "show", ip)):
        if entry.get("lladdr"):
            return str(entry["lladdr"])
    return None


def tcp_probe(ns: str, ip: str) -> str:
    """Connect from ``ns`` to a closed port: a RST ("refused") proves the address answers."""
    code = (
        "import socket,sys\n"
        "s=socket.socket(); s.settimeout(2)\n"
        "try:\n s.connect((sys.argv[1], 9)); print('open')\n"
        "except ConnectionRefusedError: print('refused')\n"
        "except OSError as e: print('error', e)\n"
    )
    out = subprocess.run(
        [*net_only_prefix(ns), sys.executable, "-c", code, ip],
        capture_output=True, text=True, check=True, timeout=10,
    )  # fmt: skip
    return out.stdout.strip()


def garp_from(ns: str, link: str, ip: str) -> None:
    """The agent's sender, run where the agent runs: inside the node's namespace."""
    code = (
        "import sys\nfrom svcnet.agent.lbannounce import PacketArpSender\n"
        "PacketArpSender().announce(sys.argv[1], sys.argv[2])\n"
    )
    subprocess.run(
        [*net_only_prefix(ns), sys.executable, "-c", code, link, ip], check=True, timeout=10
    )


def test_announced_address_answers_and_is_removed(lan: Lan) -> None:
    ops = IpRoute2()
    node = AddressApplier(ops, "eth0", ns=lan.nodes[0])
    node.apply(plan_addresses({lan.lb_ip}, node.present()))
    assert node.present() == {lan.lb_ip}
    routes = _ip("-n", lan.nodes[0], "route", "show")
    assert lan.lb_ip not in routes, "noprefixroute: the /32 must add no route"
    assert tcp_probe(lan.machine, lan.lb_ip) == "refused"
    assert neighbour_mac(lan.machine, lan.lb_ip) == mac_of(lan.nodes[0], "eth0")
    node.apply(plan_addresses((), node.present()))
    assert node.present() == frozenset()
    assert lan.lb_ip not in _ip("-n", lan.nodes[0], "addr", "show", "dev", "eth0")


def test_node_address_is_never_touched(lan: Lan) -> None:
    node = AddressApplier(IpRoute2(), "eth0", ns=lan.nodes[0])
    node.apply(AddressPlan(add=(), remove=(f"{lan.subnet}.11",)))
    # remove() is only ever planned from present(), which lists labelled /32s; even a wrong
    # plan cannot delete the node's /24 because the delete names the /32
    assert f"{lan.subnet}.11/24" in _ip("-n", lan.nodes[0], "addr", "show", "dev", "eth0")


def test_takeover_moves_the_machines_neighbour_entry_at_once(lan: Lan) -> None:
    ops = IpRoute2()
    first = AddressApplier(ops, "eth0", ns=lan.nodes[0])
    second = AddressApplier(ops, "eth0", ns=lan.nodes[1])
    first.apply(plan_addresses({lan.lb_ip}, first.present()))
    assert tcp_probe(lan.machine, lan.lb_ip) == "refused"
    assert neighbour_mac(lan.machine, lan.lb_ip) == mac_of(lan.nodes[0], "eth0")
    time.sleep(1.1)  # past the neighbour locktime, as a real takeover (seconds later) is

    first.apply(plan_addresses((), first.present()))
    second.apply(plan_addresses({lan.lb_ip}, second.present()))
    garp_from(lan.nodes[1], "eth0", lan.lb_ip)

    # No traffic from the machine in between: only the gratuitous ARP can have moved it.
    deadline = time.monotonic() + 1.0
    while neighbour_mac(lan.machine, lan.lb_ip) != mac_of(lan.nodes[1], "eth0"):
        assert time.monotonic() < deadline, "the machine still sends to the old node"
        time.sleep(0.02)
    assert tcp_probe(lan.machine, lan.lb_ip) == "refused"
