"""nfnetlink messages of NFLOG (``nfnetlink_log``) and conntrack events (``ctnetlink``), pure.

pyroute2 decodes ctnetlink but not NFLOG; both are the same wire format (``nlmsghdr``, the
4-byte ``nfgenmsg``, then type-length-value attributes, nested ones included), so one small
reader of that format serves both, with no socket here (:mod:`svcnet.dataplane.netlink_events`
owns the sockets) and the unit tests feed it bytes captured from the kernel.

Kernel references: ``include/uapi/linux/netfilter/nfnetlink_log.h`` (NFULA_*, NFULNL_*),
``nfnetlink_conntrack.h`` (CTA_*), ``netlink.h`` (nlmsghdr, NLA_F_*). Attribute payloads of
these families are in network byte order; netlink headers in the host's.
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET = 0
NFULNL_MSG_CONFIG = 1
IPCTNL_MSG_CT_NEW = 0
IPCTNL_MSG_CT_DELETE = 2
# Multicast groups of ctnetlink (socket bind mask bit = group - 1).
NFNLGRP_CONNTRACK_NEW = 1
NFNLGRP_CONNTRACK_DESTROY = 3

NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
_NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER

_NLMSGHDR = struct.Struct("=IHHII")
_NFGENMSG = struct.Struct(">BBH")  # family, version, res_id (big-endian)
_NLA = struct.Struct("=HH")

# NFULA_* (packet message attributes)
NFULA_PAYLOAD = 9
NFULA_PREFIX = 10
NFULA_CT = 18
# NFULA_CFG_* and their values
NFULA_CFG_CMD = 1
NFULA_CFG_MODE = 2
NFULA_CFG_TIMEOUT = 4
NFULA_CFG_QTHRESH = 5
NFULA_CFG_FLAGS = 6
NFULNL_CFG_CMD_BIND = 1
NFULNL_COPY_PACKET = 2
NFULNL_CFG_F_CONNTRACK = 0x0002
# CTA_*
CTA_TUPLE_ORIG = 1
CTA_TUPLE_REPLY = 2
CTA_TUPLE_IP = 1
CTA_TUPLE_PROTO = 2
CTA_IP_V4_SRC = 1
CTA_IP_V4_DST = 2
CTA_PROTO_NUM = 1
CTA_PROTO_SRC_PORT = 2
CTA_PROTO_DST_PORT = 3

PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 132: "sctp"}
_PORTED = {6, 17, 132}


class MalformedError(ValueError):
    """Bytes that are not the message they claim to be (truncated, bad lengths)."""


@dataclass(frozen=True, slots=True)
class Message:
    type: int  # (subsystem << 8) | message type
    flags: int
    family: int
    res_id: int  # the NFLOG group of a packet message
    attrs: bytes  # the attribute stream after nfgenmsg


def messages(data: bytes) -> Iterator[Message]:
    """The nfnetlink messages of one ``recv`` (a datagram may hold several)."""
    off = 0
    while off + _NLMSGHDR.size <= len(data):
        length, mtype, flags, _seq, _pid = _NLMSGHDR.unpack_from(data, off)
        if length < _NLMSGHDR.size or off + length > len(data):
            raise MalformedError(f"netlink message length {length} at {off} of {len(data)}")
        body = data[off + _NLMSGHDR.size : off + length]
        if mtype == NLMSG_ERROR or len(body) < _NFGENMSG.size:
            yield Message(mtype, flags, 0, 0, body)
        else:
            family, _version, res_id = _NFGENMSG.unpack_from(body)
            yield Message(mtype, flags, family, res_id, body[_NFGENMSG.size :])
        off += (length + 3) & ~3


def attributes(data: bytes) -> dict[int, bytes]:
    """Type -> payload of one level of attributes (the last wins when repeated)."""
    out: dict[int, bytes] = {}
    off = 0
    while off + _NLA.size <= len(data):
        length, atype = _NLA.unpack_from(data, off)
        if length < _NLA.size or off + length > len(data):
            raise MalformedError(f"attribute length {length} at {off} of {len(data)}")
        out[atype & _NLA_TYPE_MASK] = data[off + _NLA.size : off + length]
        off += (length + 3) & ~3
    return out


def error_code(msg: Message) -> int:
    """The errno of an NLMSG_ERROR (0: an acknowledgement), negated as the kernel sends it."""
    if len(msg.attrs) < 4:
        raise MalformedError("short NLMSG_ERROR")
    return -int(struct.unpack_from("=i", msg.attrs)[0])


# --- conntrack ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tuple:
    proto: str
    src: str
    dst: str
    sport: int
    dport: int


@dataclass(frozen=True, slots=True)
class CtEntry:
    """A connection: as sent (``orig``) and as answered (``reply``: its source is the address
    DNAT sent the connection to)."""

    orig: Tuple
    reply: Tuple | None


def _ipv4(raw: bytes) -> str:
    if len(raw) != 4:
        raise MalformedError(f"an IPv4 address of {len(raw)} bytes")
    return str(ipaddress.IPv4Address(raw))


def _be(raw: bytes, size: int) -> int:
    if len(raw) < size:
        raise MalformedError(f"a {size}-byte number in {len(raw)} bytes")
    return int.from_bytes(raw[:size], "big")


def _tuple(data: bytes) -> Tuple | None:
    a = attributes(data)
    ip, proto = attributes(a.get(CTA_TUPLE_IP, b"")), attributes(a.get(CTA_TUPLE_PROTO, b""))
    if CTA_IP_V4_SRC not in ip or CTA_IP_V4_DST not in ip or CTA_PROTO_NUM not in proto:
        return None  # IPv6 or another family: this IPv4 cluster's tables never see it
    num = _be(proto[CTA_PROTO_NUM], 1)
    sport = _be(proto.get(CTA_PROTO_SRC_PORT, b"\0\0"), 2)
    dport = _be(proto.get(CTA_PROTO_DST_PORT, b"\0\0"), 2)
    return Tuple(
        PROTOCOLS.get(num, str(num)),
        _ipv4(ip[CTA_IP_V4_SRC]),
        _ipv4(ip[CTA_IP_V4_DST]),
        sport,
        dport,
    )


def ct_entry(attrs: bytes) -> CtEntry | None:
    """The tuples of a ctnetlink message's attributes (or of NFLOG's NFULA_CT)."""
    a = attributes(attrs)
    orig = _tuple(a.get(CTA_TUPLE_ORIG, b""))
    if orig is None:
        return None
    reply = _tuple(a[CTA_TUPLE_REPLY]) if CTA_TUPLE_REPLY in a else None
    return CtEntry(orig, reply)


class CtEventKind(enum.Enum):
    NEW = "new"
    DESTROY = "destroy"


@dataclass(frozen=True, slots=True)
class CtEvent:
    kind: CtEventKind
    entry: CtEntry


def ct_event(msg: Message) -> CtEvent | None:
    """A conntrack event (the socket subscribes to the NEW and DESTROY groups only)."""
    if msg.type >> 8 != NFNL_SUBSYS_CTNETLINK:
        return None
    kind = {IPCTNL_MSG_CT_NEW: CtEventKind.NEW, IPCTNL_MSG_CT_DELETE: CtEventKind.DESTROY}.get(
        msg.type & 0xFF
    )
    entry = ct_entry(msg.attrs) if kind is not None else None
    return None if kind is None or entry is None else CtEvent(kind, entry)


# --- NFLOG -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoggedPacket:
    """A packet a ``log group`` rule copied: its prefix, its headers as the rule saw them (after
    DNAT on the forward hook), and its connection when the kernel attached it."""

    group: int
    prefix: str
    packet: Tuple
    ct: CtEntry | None


def ip_header(payload: bytes) -> Tuple | None:
    """Protocol, addresses and ports of an IPv4 packet's first bytes; None for another."""
    if len(payload) < 20 or payload[0] >> 4 != 4:
        return None
    ihl = (payload[0] & 0x0F) * 4
    num = payload[9]
    src, dst = _ipv4(payload[12:16]), _ipv4(payload[16:20])
    sport = dport = 0
    if num in _PORTED and len(payload) >= ihl + 4:
        sport, dport = struct.unpack_from(">HH", payload, ihl)
    return Tuple(PROTOCOLS.get(num, str(num)), src, dst, sport, dport)


def logged_packet(msg: Message) -> LoggedPacket | None:
    if msg.type != (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET:
        return None
    a = attributes(msg.attrs)
    packet = ip_header(a.get(NFULA_PAYLOAD, b""))
    if packet is None:
        return None
    prefix = a.get(NFULA_PREFIX, b"").split(b"\0", 1)[0].decode(errors="replace")
    ct = ct_entry(a[NFULA_CT]) if NFULA_CT in a else None
    return LoggedPacket(msg.res_id, prefix, packet, ct)


# --- requests ----------------------------------------------------------------------------------


def _attr(atype: int, payload: bytes) -> bytes:
    raw = _NLA.pack(_NLA.size + len(payload), atype) + payload
    return raw + b"\0" * (-len(raw) % 4)


def _request(mtype: int, res_id: int, attrs: bytes, seq: int) -> bytes:
    body = _NFGENMSG.pack(0, 0, res_id) + attrs
    flags = NLM_F_REQUEST | NLM_F_ACK
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), mtype, flags, seq, 0) + body


def nflog_bind(group: int, seq: int = 1) -> bytes:
    """Bind this socket to NFLOG ``group`` (one listener per group and namespace)."""
    cmd = _attr(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND]))
    return _request((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG, group, cmd, seq)


def nflog_config(
    group: int,
    copy_range: int,
    timeout_cs: int,
    qthreshold: int,
    seq: int = 2,
) -> bytes:
    """Copy the first ``copy_range`` bytes of each packet (headers, not data) with its
    conntrack entry (the address before DNAT), and batch up to ``qthreshold`` packets or
    ``timeout_cs`` hundredths of a second per message (fewer wake-ups under a flood)."""
    attrs = (
        _attr(NFULA_CFG_MODE, struct.pack(">IBB", copy_range, NFULNL_COPY_PACKET, 0))
        + _attr(NFULA_CFG_FLAGS, struct.pack(">H", NFULNL_CFG_F_CONNTRACK))
        + _attr(NFULA_CFG_TIMEOUT, struct.pack(">I", timeout_cs))
        + _attr(NFULA_CFG_QTHRESH, struct.pack(">I", qthreshold))
    )
    return _request((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG, group, attrs, seq)


def ct_groups_mask() -> int:
    """The bind mask subscribing to new and destroyed connections (not updates)."""
    return (1 << (NFNLGRP_CONNTRACK_NEW - 1)) | (1 << (NFNLGRP_CONNTRACK_DESTROY - 1))
