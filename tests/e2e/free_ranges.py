"""Ranges and names for test clusters that nothing on the machine holds.

A test cluster shares the machine with whatever else runs there: a user's cluster at svcnet's
defaults, other test sessions' clusters, the machine's own networks. Its ranges must overlap
none of them, or its routes shadow theirs and theirs shadow its own. So each pick reads what
the machine routes now (every table, every address) and draws at random among the blocks of a
pool that overlap none of it, nor svcnet's defaults (a user may start the default cluster while
the tests run), nor a block another test holds and has not released yet (a test's own cluster
next to its module's, another session's before its ``up``): each pick holds an flock on a file
named after the block. A process that picks without these (older tests, a user) may still take
a block between the pick and ``up``: then ``up`` refuses (svcnet checks the machine again) and
cluster_fixture draws again; it never damages.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from svcnet.api.ranges import DEFAULT_CLUSTER_CIDR, DEFAULT_SERVICE_CIDR, DEFAULT_UNDERLAY_CIDR

Net = ipaddress.IPv4Network

# svcnet's default ranges (the LoadBalancer pool lies in the underlay).
DEFAULTS = tuple(
    Net(c) for c in (DEFAULT_UNDERLAY_CIDR, DEFAULT_CLUSTER_CIDR, DEFAULT_SERVICE_CIDR)
)


@dataclass(frozen=True)
class Pool:
    underlay: str  # drawn as a /24
    pods: str  # drawn as a /16
    services: str  # drawn as a /16


# The dataplane fixtures (conftest.e2e_config) and the whole-cluster ones (cluster_fixture).
DATAPLANE = Pool(underlay="172.31.0.0/16", pods="10.224.0.0/12", services="10.240.0.0/12")
CLUSTER = Pool(underlay="172.29.0.0/16", pods="10.160.0.0/12", services="10.176.0.0/12")


@dataclass(frozen=True)
class Ranges:
    underlay: str
    pods: str
    services: str

    @property
    def lb(self) -> str:
        return lb_pool(self.underlay)


def lb_pool(underlay: str) -> str:
    """The LoadBalancer pool of a test cluster: its underlay's last /28."""
    return str(list(Net(underlay).subnets(new_prefix=28))[-1])


# Blocks handed out and not released yet, by any test process on the machine: one locked
# file each, removed on release (tmpfs: a file left by a killed process is unlocked, and the
# next draw of that block takes it).
RESERVATIONS = "/run/svcnet-test-ranges"


def _ip_json(*args: str) -> list[dict[str, object]]:
    out = subprocess.run(
        ["ip", "-j", "-4", *args], capture_output=True, text=True, check=True
    ).stdout
    data: list[dict[str, object]] = json.loads(out or "[]")
    return data


def machine_networks() -> list[Net]:
    """Every IPv4 network the machine routes (any table but the default routes) or has an
    address in."""
    nets = []
    for r in _ip_json("route", "show", "table", "all"):
        dst = str(r.get("dst", ""))
        if dst and dst != "default":
            nets.append(ipaddress.ip_network(dst, strict=False))
    for link in _ip_json("addr"):
        for a in link.get("addr_info") or []:  # type: ignore[attr-defined]
            nets.append(ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}").network)
    return [n for n in nets if isinstance(n, Net) and n.prefixlen > 0]


def _reserve(block: Net) -> int | None:
    """Hold ``block`` for this process (an flock on a file named after it, which the kernel
    releases when the process ends however it ends), or None when another holder has it."""
    os.makedirs(RESERVATIONS, exist_ok=True)
    path = _lock_path(block)
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # The holder before us may have removed the file between our open and our lock: a
        # lock on a file no longer at that path holds nothing.
        if os.fstat(fd).st_ino != os.stat(path).st_ino:
            raise BlockingIOError
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        return None
    return fd


def _release(block: Net, fd: int) -> None:
    os.unlink(_lock_path(block))  # while still locked, so no one locks the old file meanwhile
    os.close(fd)


def _lock_path(block: Net) -> str:
    return os.path.join(RESERVATIONS, str(block).replace("/", "_"))


def _draw(pool: str, prefixlen: int, taken: list[Net], held: dict[Net, int]) -> Net:
    free = [
        b for b in Net(pool).subnets(new_prefix=prefixlen) if not any(b.overlaps(t) for t in taken)
    ]
    while free:
        block = free.pop(secrets.randbelow(len(free)))
        if (fd := _reserve(block)) is not None:
            held[block] = fd
            return block
    raise RuntimeError(f"no /{prefixlen} of {pool} is free on this machine")


@contextmanager
def free_ranges(pool: Pool) -> Iterator[Ranges]:
    """Underlay, pod and Service ranges that nothing holds, reserved until exit."""
    taken = [*machine_networks(), *DEFAULTS]
    held: dict[Net, int] = {}
    try:
        underlay = _draw(pool.underlay, 24, taken, held)
        pods = _draw(pool.pods, 16, [*taken, underlay], held)
        services = _draw(pool.services, 16, [*taken, underlay, pods], held)
        yield Ranges(str(underlay), str(pods), str(services))
    finally:
        for block, fd in held.items():
            _release(block, fd)


def free_prefix(first: str, hex_digits: int) -> str:
    """A name prefix no namespace, link or nft table on the machine starts with."""
    netns = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    links = [str(link["ifname"]) for link in _ip_json("link")]
    tables = subprocess.run(
        ["nft", "list", "tables"], capture_output=True, text=True, check=True
    ).stdout.split()
    for _ in range(100):
        prefix = first + secrets.token_hex(4)[:hex_digits]
        if not any(n.startswith(prefix) for n in [*netns, *links, *tables]):
            return prefix
    raise RuntimeError("no free name prefix")
