"""LoadBalancer addresses announced on the underlay, as MetalLB's layer-2 speaker does.

The LB IPAM controller picks, for each LoadBalancer address, the one node that announces it
and names that node in the Service's ``svcnet.io/announcing-node`` annotation. The agent of
that node puts every ingress IP of the Service on its underlay link (``eth0``) as a ``/32``
with ``noprefixroute`` and the label ``eth0:lb``, so:

* the kernel answers ARP for the address on that link (and only that node's kernel does), and
  the machine's packets for it reach this node, where the proxy's ``service-ips`` map DNATs
  them like any externalIP (kube-proxy programs LB IPs on every node; the address is what
  decides where the traffic arrives);
* the label marks the addresses this module owns: a restarted agent finds and reconciles
  them, and never touches the node's own address;
* ``noprefixroute``: a /32 needs no route of its own, and no route may shadow the node's /16.

On every new address a gratuitous ARP (a broadcast ARP request and reply with sender =
target = the address, as MetalLB's ``arp.go`` sends) moves the neighbour entries of the
machine and the other nodes at once, instead of after their entries go stale (a takeover
otherwise blackholes traffic for up to ~30 s). It is repeated after a second because Linux
ignores a neighbour update that arrives within ``locktime`` (1 s) of the previous one. The
frames are written on an ``AF_PACKET`` socket, so no ``arping`` package is needed.

Compute, then apply: :func:`desired_addresses` and :func:`plan_addresses` are pure; the
:class:`AddressApplier` is the thin kernel edge (``ip addr`` through :class:`NetnsOps`); the
:class:`LbAnnouncer` is the informer-driven loop, level-triggered and repaired periodically.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import socket
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from svcnet.api.objects import ObjView
from svcnet.api.registry import SERVICES
from svcnet.api.wellknown import LB_ANNOUNCE_ANNOTATION
from svcnet.client.informer import FuncHandler, SharedInformerFactory
from svcnet.dataplane.netns import NetnsError, NetnsOps

log = logging.getLogger(__name__)


DEFAULT_LINK = "eth0"
LABEL_SUFFIX = ":lb"
RESYNC_PERIOD = 30.0
# Sent at once, then again after Linux's default neighbour locktime (1 s) has passed.
GARP_SCHEDULE: tuple[float, ...] = (0.0, 1.1)

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
BROADCAST_MAC = b"\xff" * 6
ARP_REQUEST = 1
ARP_REPLY = 2


# -- pure planning ---------------------------------------------------------------------------


def announced_by(service: ObjView) -> str | None:
    ann = ((service.get("metadata") or {}).get("annotations")) or {}
    node = ann.get(LB_ANNOUNCE_ANNOTATION)
    return str(node) if node else None


def ingress_ips(service: ObjView) -> tuple[str, ...]:
    """The IPv4 ingress addresses of a LoadBalancer Service (hostname-only entries ignored)."""
    if ((service.get("spec") or {}).get("type")) != "LoadBalancer":
        return ()
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    out = []
    for entry in ingress:
        ip = entry.get("ip") if isinstance(entry, Mapping) else None
        if not ip:
            continue
        try:
            if ipaddress.ip_address(str(ip)).version == 4:
                out.append(str(ip))
        except ValueError:
            continue  # the API server validates; an old object is no reason to fail a sync
    return tuple(out)


def desired_addresses(services: Iterable[ObjView], node_name: str) -> frozenset[str]:
    """The addresses this node must hold: ingress IPs of Services it is named to announce."""
    out: set[str] = set()
    for svc in services:
        if announced_by(svc) == node_name:
            out.update(ingress_ips(svc))
    return frozenset(out)


@dataclass(frozen=True)
class AddressPlan:
    add: tuple[str, ...]
    remove: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.add and not self.remove


def plan_addresses(desired: Iterable[str], present: Iterable[str]) -> AddressPlan:
    """What to add and remove so that the owned addresses on the link are exactly ``desired``."""
    want, have = set(desired), set(present)
    return AddressPlan(add=tuple(sorted(want - have)), remove=tuple(sorted(have - want)))


def owned_addresses(ip_addr_json: Sequence[Mapping[str, Any]], link: str) -> frozenset[str]:
    """From ``ip -j addr show dev LINK``: the /32s carrying our label (ours, and only ours)."""
    label = link + LABEL_SUFFIX
    out = set()
    for entry in ip_addr_json:
        for a in entry.get("addr_info") or ():
            if a.get("family") == "inet" and a.get("label") == label and a.get("prefixlen") == 32:
                out.add(str(a["local"]))
    return frozenset(out)


def gratuitous_arp_frames(mac: bytes, ip: str) -> tuple[bytes, bytes]:
    """A broadcast ARP request and reply announcing ``ip`` at ``mac`` (RFC 5227 §3 style).

    Both: Linux updates an existing neighbour entry from either, and some peers only act on
    one of them (MetalLB sends both for the same reason).
    """
    if len(mac) != 6:
        raise ValueError(f"not an Ethernet address: {mac!r}")
    addr = socket.inet_aton(ip)
    eth = BROADCAST_MAC + mac + struct.pack("!H", ETH_P_ARP)
    frames = []
    for op, target_mac in ((ARP_REQUEST, b"\x00" * 6), (ARP_REPLY, BROADCAST_MAC)):
        arp = struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, op) + mac + addr + target_mac + addr
        frames.append(eth + arp)
    return frames[0], frames[1]


# -- the kernel edge -------------------------------------------------------------------------


class ArpSender(Protocol):
    def announce(self, link: str, ip: str) -> None: ...


class PacketArpSender:
    """Gratuitous ARP on an AF_PACKET socket of the calling process's network namespace."""

    def announce(self, link: str, ip: str) -> None:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as s:
            s.bind((link, ETH_P_ARP))
            # getsockname() of a bound packet socket ends with the link's hardware address;
            # /sys/class/net would show the root namespace's links, not this namespace's.
            mac = s.getsockname()[4]
            for frame in gratuitous_arp_frames(mac, ip):
                s.send(frame)


class AddressTarget(Protocol):
    """The link whose owned addresses the announcer manages (:class:`AddressApplier`)."""

    def present(self) -> frozenset[str]: ...
    def apply(self, plan: AddressPlan) -> None: ...
    def announce(self, ip: str) -> None: ...


class AddressApplier:
    """Moves the owned addresses of one link to a desired set through ``ip addr``.

    ``ns`` is None inside the agent (it already runs in the node's namespace).
    """

    def __init__(
        self,
        ops: NetnsOps,
        link: str = DEFAULT_LINK,
        ns: str | None = None,
        arp: ArpSender | None = None,
    ) -> None:
        self.ops = ops
        self.link = link
        self.ns = ns
        self.arp = arp

    def _ip(self, *args: str) -> str:
        res = self.ops.run(self.ns, ["ip", *args])
        if res.returncode != 0:
            raise NetnsError(" ".join(args), res.stderr.decode(errors="replace").strip())
        return res.stdout.decode()

    def present(self) -> frozenset[str]:
        out = self._ip("-j", "addr", "show", "dev", self.link)
        return owned_addresses(json.loads(out or "[]"), self.link)

    def apply(self, plan: AddressPlan) -> None:
        for ip in plan.remove:
            with contextlib.suppress(NetnsError):  # already gone is what we want
                self._ip("addr", "del", f"{ip}/32", "dev", self.link)
        for ip in plan.add:
            try:
                self._ip(
                    "addr", "add", f"{ip}/32", "dev", self.link,
                    "noprefixroute", "label", self.link + LABEL_SUFFIX,
                )  # fmt: skip
            except NetnsError as e:
                if "exists" not in e.detail.lower():
                    raise

    def announce(self, ip: str) -> None:
        if self.arp is None:
            return
        if self.ns is not None:
            raise NetnsError("gratuitous arp", "only from inside the namespace (ns=None)")
        self.arp.announce(self.link, ip)


# -- the loop --------------------------------------------------------------------------------


class LbAnnouncer:
    """Keeps this node's announced LoadBalancer addresses equal to what the Services say."""

    def __init__(
        self,
        factory: SharedInformerFactory,
        node_name: str,
        applier: AddressTarget,
        *,
        resync_period: float = RESYNC_PERIOD,
        garp_schedule: tuple[float, ...] = GARP_SCHEDULE,
    ) -> None:
        self.node_name = node_name
        self.applier = applier
        self.resync_period = resync_period
        self.garp_schedule = garp_schedule
        self._dirty = asyncio.Event()
        self._services = factory.informer_for(SERVICES)
        self._services.add_event_handler(
            FuncHandler(
                on_add=lambda _o: self._dirty.set(),
                on_update=lambda _o, _n: self._dirty.set(),
                on_delete=lambda _o: self._dirty.set(),
            )
        )
        self.held: frozenset[str] = frozenset()
        self.syncs = 0

    def desired(self) -> frozenset[str]:
        return desired_addresses(self._services.store.list(), self.node_name)

    async def sync_once(self, tg: asyncio.TaskGroup | None = None) -> AddressPlan:
        present = await asyncio.to_thread(self.applier.present)
        plan = plan_addresses(self.desired(), present)
        if not plan.empty:
            await asyncio.to_thread(self.applier.apply, plan)
            log.info("lb announce on %s: +%s -%s", self.node_name, plan.add, plan.remove)
        self.held = (present - set(plan.remove)) | set(plan.add)
        self.syncs += 1
        for ip in plan.add:
            coro = self._garp(ip)
            if tg is not None:
                tg.create_task(coro, name=f"garp-{ip}")
            else:
                await coro
        return plan

    async def _garp(self, ip: str) -> None:
        elapsed = 0.0
        for at in self.garp_schedule:
            await asyncio.sleep(max(0.0, at - elapsed))
            elapsed = at
            if ip not in self.held:
                return  # given away meanwhile: announcing it would steal it back
            try:
                await asyncio.to_thread(self.applier.announce, ip)
            except OSError as e:
                log.warning("gratuitous ARP for %s failed: %s", ip, e)

    async def run(self) -> None:
        """Run until cancelled; on the way out give back every address (a stopped agent must
        stop answering ARP, so that the node elected next is the only one that does)."""
        await self._services.wait_for_sync()
        try:
            async with asyncio.TaskGroup() as tg:
                while True:
                    self._dirty.clear()
                    try:
                        await self.sync_once(tg)
                    except (NetnsError, OSError) as e:
                        log.warning("lb announce sync failed, retrying: %s", e)
                        await asyncio.sleep(1.0)
                        self._dirty.set()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._dirty.wait(), self.resync_period)
        finally:
            self.held = frozenset()
            with contextlib.suppress(NetnsError, OSError):
                present = self.applier.present()
                self.applier.apply(plan_addresses((), present))


def default_announcer(
    factory: SharedInformerFactory, node_name: str, ops: NetnsOps, link: str = DEFAULT_LINK
) -> LbAnnouncer:
    """The announcer an agent runs inside its node's namespace."""
    return LbAnnouncer(factory, node_name, AddressApplier(ops, link, None, PacketArpSender()))
