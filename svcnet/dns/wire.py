"""DNS wire format: the few encoders the record table needs and the query fast path.

Pure (no I/O). An answer is kept as wire-ready bytes whose owner names point at the question
(offset 12, RFC 1035 4.1.4 compression), so a response is the query's ID and flags, fixed
counts, the question copied from the query and the precomputed sections: no name is encoded
per query. The SOA of negative answers is the only part assembled per response, because its
owner points at the zone suffix of the question (so it keeps the query's case, as CoreDNS
does) and its serial follows the last change.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from dataclasses import dataclass
from typing import NamedTuple

TYPE_A = 1
TYPE_NS = 2
TYPE_CNAME = 5
TYPE_SOA = 6
TYPE_PTR = 12
TYPE_MX = 15
TYPE_TXT = 16
TYPE_AAAA = 28
TYPE_SRV = 33
TYPE_OPT = 41
TYPE_IXFR = 251
TYPE_AXFR = 252
CLASS_IN = 1

RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3
RCODE_NOTIMP = 4
RCODE_REFUSED = 5
RCODE_BADVERS = 16  # extended: upper 8 bits in the OPT TTL

SOA_NONE = 0
SOA_ANSWER = 1
SOA_AUTHORITY = 2

# Without EDNS a UDP reply is at most 512 bytes (RFC 1035 4.2.1); with EDNS the client's size,
# but never below 512. Our own advertised size is the 1232 of DNS flag day 2020.
PLAIN_UDP_SIZE = 512
SERVER_UDP_SIZE = 1232

_RR_FIXED = struct.Struct(">HHIH")
_SOA_TAIL = struct.Struct(">IIIII")


class WireError(ValueError):
    """A name or value that cannot be put on the wire."""


# Table builds encode the same names and addresses many times (a service's name is its own key,
# its SRV target and the owner of its additional records): memoise both encoders.
@functools.lru_cache(maxsize=1 << 16)
def encode_name(name: str) -> bytes:
    """Uncompressed wire form of a dotted name (trailing dot optional)."""
    out = bytearray()
    stripped = name.rstrip(".")
    if stripped:
        for label in stripped.split("."):
            raw = label.encode("ascii")
            if not 0 < len(raw) < 64:
                raise WireError(f"bad label in {name!r}")
            out.append(len(raw))
            out += raw
    out.append(0)
    if len(out) > 255:
        raise WireError(f"name too long: {name!r}")
    return bytes(out)


def encode_rr(owner: bytes, rtype: int, ttl: int, rdata: bytes) -> bytes:
    return owner + _RR_FIXED.pack(rtype, CLASS_IN, ttl, len(rdata)) + rdata


@functools.lru_cache(maxsize=1 << 16)
def rdata_address(ip: str) -> bytes:
    return ipaddress.ip_address(ip).packed


def rdata_srv(priority: int, weight: int, port: int, target: str) -> bytes:
    # RFC 2782: the SRV target is never compressed.
    return struct.pack(">HHH", priority, weight, port) + encode_name(target)


def rdata_txt(text: str) -> bytes:
    raw = text.encode()
    return bytes([len(raw)]) + raw


QUESTION_POINTER = b"\xc0\x0c"


@dataclass(frozen=True, slots=True)
class Answer:
    """A wire-ready reply to one (name, type), independent of the query's ID and case."""

    rcode: int
    answer: bytes = b""  # RRs of the answer section
    an_count: int = 0
    additional: bytes = b""
    ar_count: int = 0
    soa: int = SOA_NONE  # where the zone's SOA goes
    zone: str = ""  # the zone whose SOA it is
    forward: bool = False  # forward to an upstream when there is one (fallthrough)
    external: str = ""  # an out-of-zone CNAME target the server may resolve upstream


@dataclass(frozen=True, slots=True)
class Soa:
    """The SOA values of a zone (CoreDNS plugin.SOA): the serial is the last change's time."""

    ttl: int
    serial: int
    minimum: int

    def record(self, zone_offset: int) -> bytes:
        ptr = struct.pack(">H", 0xC000 | zone_offset)
        # mname ns.dns.<zone>, rname hostmaster.<zone>, both pointing at the question's zone.
        rdata = (
            b"\x02ns\x03dns"
            + ptr
            + b"\x0ahostmaster"
            + ptr
            + _SOA_TAIL.pack(self.serial & 0xFFFFFFFF, 7200, 1800, 86400, self.minimum)
        )
        return ptr + _RR_FIXED.pack(TYPE_SOA, CLASS_IN, self.ttl, len(rdata)) + rdata


class Query(NamedTuple):
    """What the fast path reads from a query: enough to answer without decoding more.

    A NamedTuple, not a frozen dataclass: it is made once per query and a frozen dataclass's
    __init__ (object.__setattr__ per field) costs more than the rest of the fast path."""

    key: bytes  # lowercased name wire + qtype: the record table's index key
    qtype: int
    question_end: int  # offset just past QCLASS
    name_len: int  # wire length of QNAME
    edns: bool
    udp_size: int  # payload size the client accepts over UDP
    do_bit: bool


_ONE_QUESTION = b"\x00\x01\x00\x00\x00\x00"


def parse_query(data: bytes) -> Query | None:
    """Parse the common shape of query by hand; None sends the packet to the careful path.

    The common shape: QR=0, opcode QUERY, one question of class IN with an uncompressed name,
    no answer or authority records, and either nothing or one OPT (version 0) after it.
    Only label lengths are read here: the labels themselves are decoded on a table miss.
    """
    n = len(data)
    if n < 17 or data[2] & 0xF8 or data[4:10] != _ONE_QUESTION:
        return None
    arcount = (data[10] << 8) | data[11]
    if arcount > 1:
        return None
    i = 12
    try:
        length = data[i]
        while length:
            if length > 63:
                return None
            i += length + 1
            length = data[i]
    except IndexError:
        return None
    name_end = i + 1
    if name_end - 12 > 255:
        return None
    question_end = name_end + 4
    if question_end > n or data[name_end + 2] != 0 or data[name_end + 3] != 1:
        return None
    qtype = (data[name_end] << 8) | data[name_end + 1]
    if arcount == 0:
        if question_end != n:
            return None
        key = data[12:name_end].lower() + data[name_end : name_end + 2]
        return Query(key, qtype, question_end, name_end - 12, False, PLAIN_UDP_SIZE, False)
    # OPT RR: root name, TYPE 41, CLASS = payload size, TTL = ext-rcode|version|flags.
    if question_end + 11 > n or data[question_end] != 0:
        return None
    rtype, size, _ext, version, flags, rdlen = struct.unpack_from(">HHBBHH", data, question_end + 1)
    if rtype != TYPE_OPT or version != 0 or question_end + 11 + rdlen != n:
        return None
    key = data[12:name_end].lower() + data[name_end : name_end + 2]
    return Query(
        key,
        qtype,
        question_end,
        name_end - 12,
        True,
        max(PLAIN_UDP_SIZE, size),
        bool(flags & 0x8000),
    )


def question_labels(data: bytes, query: Query) -> tuple[str, ...] | None:
    """The lowercased labels of a parsed query's name, or None when a label holds a dot or a
    byte outside ASCII (the dotted form would be ambiguous: such a name names nothing here)."""
    labels: list[str] = []
    i = 12
    end = 12 + query.name_len - 1
    while i < end:
        length = data[i]
        raw = data[i + 1 : i + 1 + length]
        if b"." in raw or not raw.isascii():
            return None
        labels.append(raw.decode("ascii").lower())
        i += 1 + length
    return tuple(labels)


def opt_record(do_bit: bool, ext_rcode: int = 0) -> bytes:
    flags = 0x8000 if do_bit else 0
    return b"\x00" + struct.pack(">HHBBHH", TYPE_OPT, SERVER_UDP_SIZE, ext_rcode, 0, flags, 0)


def build_response(data: bytes, query: Query, answer: Answer, soa: Soa, max_size: int) -> bytes:
    """The reply to `data` (parsed as `query`) carrying `answer`, at most max_size bytes.

    Flags as CoreDNS (miekg SetReply + Authoritative): QR, AA, RD and CD copied; no RA.
    Too large for max_size → header and question only, with TC (RFC 2181 9).
    """
    question = data[12 : query.question_end]
    an = answer.an_count
    ns = 0
    mid = b""
    if answer.soa:
        soa_rr = soa.record(12 + query.name_len - len_zone(answer.zone))
        if answer.soa == SOA_ANSWER:
            an += 1
            mid = answer.answer + soa_rr
        else:
            ns = 1
            mid = answer.answer + soa_rr
    else:
        mid = answer.answer
    ar = answer.ar_count + (1 if query.edns else 0)
    flags1 = 0x84 | (data[2] & 0x01)
    flags2 = (data[3] & 0x10) | (answer.rcode & 0x0F)
    opt = opt_record(query.do_bit) if query.edns else b""
    out = b"".join(
        (
            data[0:2],
            struct.pack(">BBHHHH", flags1, flags2, 1, an, ns, ar),
            question,
            mid,
            answer.additional,
            opt,
        )
    )
    if len(out) <= max_size:
        return out
    return (
        data[0:2]
        + struct.pack(">BBHHHH", flags1 | 0x02, flags2, 1, 0, 0, 1 if query.edns else 0)
        + question
        + opt
    )


_ZONE_LEN: dict[str, int] = {}


def len_zone(zone: str) -> int:
    """Wire length of a zone name, memoised (there are only a few zones)."""
    n = _ZONE_LEN.get(zone)
    if n is None:
        n = len(encode_name(zone))
        _ZONE_LEN[zone] = n
    return n


def header_only(data: bytes, rcode: int) -> bytes | None:
    """A reply with only a header (FORMERR/NOTIMP for what cannot be parsed), or None to stay
    silent when even the header is unreadable or the packet is itself a response."""
    if len(data) < 12 or data[2] & 0x80:
        return None
    flags1 = 0x80 | (data[2] & 0x79)  # QR, opcode and RD copied
    return data[0:2] + struct.pack(">BBHHHH", flags1, rcode & 0x0F, 0, 0, 0, 0)
