"""A node's flow log: dropped packets and allowed connections, in a bounded ring (pure).

The node's agent hands this module what the kernel reports (:mod:`svcnet.dataplane.nfnetlink`):

- a packet logged by a drop rule of the NetworkPolicy table: its prefix names the side that
  dropped it and the namespace (:func:`svcnet.netpol.rules.log_prefix`); the policies that
  isolate the pod are read from the compiled model the node enforces at that moment;
- conntrack's NEW and DESTROY events: a connection the node let through (a packet dropped by
  the forward hook never confirms its entry, so it has no NEW event), and its end. Nothing is
  logged per allowed packet.

Only flows of this node's pods are kept (an address of its pod block at either end, the
destination after DNAT); the node's own traffic to its pods (probes, from the pod block's
gateway address) is not NetworkPolicy's and is left out.

The ring keeps the last ``capacity`` flows, each with a sequence number, so that a reader that
follows asks for what came after the last one it saw; memory stays bounded however much
traffic there is. A pod-to-pod connection between two nodes is in both nodes' rings: the
reader merges them (:mod:`svcnet.netpol.flowview`).
"""

from __future__ import annotations

import enum
import ipaddress
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from svcnet.dataplane.nfnetlink import CtEvent, CtEventKind, LoggedPacket, Tuple
from svcnet.netpol.compiler import Compiled, judge
from svcnet.netpol.model import Direction, Protocol
from svcnet.netpol.rules import CLOSED, parse_log_prefix

RING_CAPACITY = 4096


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    DROPPED = "dropped"


class State(enum.Enum):
    NEW = "new"  # an allowed connection started
    CLOSED = "closed"  # an allowed connection's conntrack entry ended
    DROPPED = "dropped"  # a dropped packet


@dataclass(frozen=True, slots=True)
class Flow:
    """One event of one flow, as one node saw it.

    ``dst``/``dport`` are where the packet went (after DNAT); ``orig_dst``/``orig_dport`` where
    it was sent (a Service address when they differ; empty when the node could not tell, as
    for a dropped packet to a Service on a kernel whose NFLOG has no conntrack entry: then
    ``dnat`` says it was sent to one).
    """

    seq: int
    time: float
    node: str
    verdict: Verdict
    state: State
    proto: str
    src: str
    sport: int
    dst: str
    dport: int
    orig_dst: str = ""
    orig_dport: int = 0
    dnat: bool = False
    direction: str = ""  # the side that dropped: "ingress" or "egress"
    policies: tuple[str, ...] = ()  # what isolates the pod on that side
    reason: str = ""

    @property
    def key(self) -> tuple[str, str, int, str, int]:
        """The same on every node the flow crosses (DNAT happens on the sender's node)."""
        return (self.proto, self.src, self.sport, self.dst, self.dport)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "node": self.node,
            "verdict": self.verdict.value,
            "state": self.state.value,
            "protocol": self.proto,
            "src": self.src,
            "sport": self.sport,
            "dst": self.dst,
            "dport": self.dport,
            "origDst": self.orig_dst,
            "origDport": self.orig_dport,
            "dnat": self.dnat,
            "direction": self.direction,
            "policies": list(self.policies),
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Flow:
        return cls(
            int(d["seq"]),
            float(d["time"]),
            str(d["node"]),
            Verdict(d["verdict"]),
            State(d["state"]),
            str(d["protocol"]),
            str(d["src"]),
            int(d["sport"]),
            str(d["dst"]),
            int(d["dport"]),
            str(d.get("origDst") or ""),
            int(d.get("origDport") or 0),
            bool(d.get("dnat")),
            str(d.get("direction") or ""),
            tuple(str(p) for p in d.get("policies") or ()),
            str(d.get("reason") or ""),
        )


class FlowRing:
    """The last ``capacity`` flows, numbered from ``start + 1``."""

    def __init__(self, capacity: int = RING_CAPACITY, start: int = 0) -> None:
        self._flows: deque[Flow] = deque(maxlen=capacity)
        self.last_seq = start

    def __len__(self) -> int:
        return len(self._flows)

    def next_seq(self) -> int:
        self.last_seq += 1
        return self.last_seq

    def append(self, flow: Flow) -> None:
        self._flows.append(flow)

    def since(self, seq: int) -> list[Flow]:
        """Flows numbered above ``seq`` still in the ring, oldest first. A number this ring
        never gave (a reader of the agent before it restarted) reads from the start."""
        if seq > self.last_seq:
            seq = 0
        if not self._flows or seq == self.last_seq:
            return []
        first = self._flows[0].seq
        start = max(0, seq - first + 1)
        return [self._flows[i] for i in range(start, len(self._flows))]


class FlowRecorder:
    """Turns kernel events into this node's flows (see the module's docstring)."""

    def __init__(
        self,
        node: str,
        pod_cidr: str,
        ring: FlowRing,
        model: Callable[[], Compiled | None],
    ) -> None:
        self.node = node
        self.block = ipaddress.IPv4Network(pod_cidr, strict=False)
        # The node's address on its pod bridge: where probes and other node traffic come from.
        self.gateway = str(next(self.block.hosts()))
        self.ring = ring
        self.model = model

    def _local(self, ip: str) -> bool:
        return ipaddress.IPv4Address(ip) in self.block

    def _ours(self, src: str, dst: str) -> bool:
        return src != self.gateway and (self._local(src) or self._local(dst))

    def record(self, events: Iterable[LoggedPacket | CtEvent], now: float) -> None:
        for e in events:
            flow = self._dropped(e, now) if isinstance(e, LoggedPacket) else self._conn(e, now)
            if flow is not None:
                self.ring.append(flow)

    def _conn(self, e: CtEvent, now: float) -> Flow | None:
        orig, reply = e.entry.orig, e.entry.reply
        # The reply's source is where DNAT sent the connection (the original destination
        # when there was none).
        dst, dport = (reply.src, reply.sport) if reply is not None else (orig.dst, orig.dport)
        if not self._ours(orig.src, dst):
            return None
        state = State.NEW if e.kind is CtEventKind.NEW else State.CLOSED
        return Flow(
            self.ring.next_seq(),
            now,
            self.node,
            Verdict.ALLOWED,
            state,
            orig.proto,
            orig.src,
            orig.sport,
            dst,
            dport,
            orig.dst,
            orig.dport,
            dnat=(orig.dst, orig.dport) != (dst, dport),
        )

    def _dropped(self, e: LoggedPacket, now: float) -> Flow | None:
        parsed = parse_log_prefix(e.prefix)
        p = e.packet
        if parsed is None or not self._ours(p.src, p.dst):
            return None
        direction, namespace, dnat = parsed
        orig: Tuple | None = e.ct.orig if e.ct is not None else None
        policies, reason = self._why(direction, namespace, p)
        return Flow(
            self.ring.next_seq(),
            now,
            self.node,
            Verdict.DROPPED,
            State.DROPPED,
            p.proto,
            p.src,
            p.sport,
            p.dst,
            p.dport,
            orig.dst if orig is not None else "",
            orig.dport if orig is not None else 0,
            dnat=dnat or (orig is not None and (orig.dst, orig.dport) != (p.dst, p.dport)),
            direction=direction.value,
            policies=policies,
            reason=reason,
        )

    def _why(self, direction: Direction, namespace: str, p: Tuple) -> tuple[tuple[str, ...], str]:
        if namespace == CLOSED:
            return (), "pod not yet known to this node's rules (closed until programmed)"
        compiled = self.model()
        pod, peer = (p.dst, p.src) if direction is Direction.INGRESS else (p.src, p.dst)
        if compiled is None:
            return (), f"isolated for {direction.value} in namespace {namespace}"
        try:
            proto, port = Protocol(p.proto), p.dport
        except ValueError:
            # ICMP and other protocols without ports: only a rule without ports lets them
            # through (its nft rule matches no port), as a port that no rule names would.
            proto, port = Protocol.TCP, 0
        j = judge(compiled, direction, pod, peer, proto, port)
        if j.allowed:  # the policies changed since the packet was dropped
            return (), f"isolated for {direction.value} in namespace {namespace} (since changed)"
        return tuple(str(k) for k in j.isolated_by), "no rule of these policies allows it"
