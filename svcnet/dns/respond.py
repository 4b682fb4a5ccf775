"""From a query packet to a reply packet (or to "forward this"), without I/O.

Pure. The fast path reads the header and question by hand (wire.parse_query), finds the
precomputed answer by one dict lookup and copies the ID and question into it. Everything
else — compressed or odd names, EDNS versions, other classes, several records — goes through
dnspython once to be judged and, when it is a plain question after all, rewritten into the
fast shape. The acceptance rules are those of miekg/dns's DefaultMsgAcceptFunc, which CoreDNS
uses: a response is ignored, an opcode other than QUERY gets NOTIMP, QDCOUNT ≠ 1 (or more
than one answer/authority record, or more than two additional) gets FORMERR, and a message
that does not parse gets FORMERR when its header can be read, silence otherwise.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from svcnet.dns.records import RecordTable
from svcnet.dns.wire import (
    RCODE_FORMERR,
    RCODE_NOTIMP,
    RCODE_REFUSED,
    RCODE_SERVFAIL,
    TYPE_OPT,
    Answer,
    Query,
    build_response,
    header_only,
    parse_query,
    question_labels,
)

TCP_MAX = 65535
MAX_CACHED_REPLIES = 50_000

if TYPE_CHECKING:
    import dns.message
    import dns.rcode

# dnspython (~5.6 MiB resident, 48 modules) is imported only by the slow paths below, when
# the first odd packet arrives: an idle or fast-path-only server never loads it.


@dataclass(frozen=True, slots=True)
class Forward:
    """Ask an upstream: the whole question (`answer` None) or the out-of-zone target of a CNAME
    that `answer` already holds."""

    packet: bytes  # the query in the fast shape
    query: Query
    qname: str  # the question name as asked (case kept)
    answer: Answer | None = None


Reply = bytes | Forward | None


class Responder:
    def __init__(self, table: RecordTable, forwarding: bool = False) -> None:
        self.table = table
        self.forwarding = forwarding
        self._generation = table.generation
        self._replies_udp: dict[bytes, bytes] = {}
        self._replies_tcp: dict[bytes, bytes] = {}

    def respond(self, data: bytes, tcp: bool = False) -> Reply:
        """The reply to one query packet; Forward when an upstream must be asked; None: silence."""
        table = self.table
        if table.generation != self._generation:
            self._replies_udp.clear()
            self._replies_tcp.clear()
            self._generation = table.generation
        replies = self._replies_tcp if tcp else self._replies_udp
        # The same query bytes (all but the ID) get the same reply bytes until the table
        # changes: patch the ID into the reply made the first time.
        rest = data[2:]
        tail = replies.get(rest)
        if tail is not None:
            return data[:2] + tail
        q = parse_query(data)
        if q is None:
            return self._careful(data, tcp)
        reply = self._answer(data, q, tcp)
        if type(reply) is bytes:
            if len(replies) >= MAX_CACHED_REPLIES:
                replies.clear()  # a flood of distinct names: start over rather than grow
            replies[rest] = reply[2:]
        return reply

    def _answer(self, data: bytes, q: Query, tcp: bool) -> Reply:
        table = self.table
        answer = table.fast.get(q.key)
        if answer is None:
            labels = question_labels(data, q)
            if labels is None:
                return self._refused(data)
            answer = table.lookup_labels(labels, q.qtype)
            if answer.forward and self.forwarding:
                return Forward(data, q, _qname_text(data, q))
            if answer.external and self.forwarding:
                return Forward(data, q, _qname_text(data, q), answer)
        return build_response(data, q, answer, table.soa, TCP_MAX if tcp else q.udp_size)

    def reply_with(self, data: bytes, q: Query, answer: Answer, tcp: bool) -> bytes:
        """A reply carrying `answer` (the server's fallback when an upstream fails)."""
        return build_response(data, q, answer, self.table.soa, TCP_MAX if tcp else q.udp_size)

    def servfail(self, data: bytes, q: Query, tcp: bool) -> bytes:
        return self.reply_with(data, q, Answer(RCODE_SERVFAIL), tcp)

    def _careful(self, data: bytes, tcp: bool) -> Reply:
        if len(data) < 12 or data[2] & 0x80:
            return None
        if (data[2] >> 3) & 0x0F != 0:
            return header_only(data, RCODE_NOTIMP)
        qd, an, ns, ar = struct.unpack_from(">HHHH", data, 4)
        if qd != 1 or an > 1 or ns > 1 or ar > 2:
            return header_only(data, RCODE_FORMERR)
        import dns.exception
        import dns.message
        import dns.rcode
        import dns.rdataclass

        try:
            msg = dns.message.from_wire(data)
        except (dns.exception.DNSException, ValueError, IndexError, struct.error):
            return header_only(data, RCODE_FORMERR)
        if not msg.question:
            return header_only(data, RCODE_FORMERR)
        question = msg.question[0]
        if msg.edns > 0:
            # RFC 6891 6.1.3: an unknown EDNS version gets BADVERS, with our OPT at version 0.
            return self._make_response(msg, dns.rcode.BADVERS, tcp)
        if question.rdclass != dns.rdataclass.IN:
            return self._make_response(msg, dns.rcode.Rcode(RCODE_REFUSED), tcp)
        # A plain question that only looked odd (a compressed name, an OPT carrying
        # options, trailing records): rewrite it into the fast shape and answer that.
        try:
            canonical = _canonical_query(data, msg)
        except (dns.exception.DNSException, ValueError):
            return header_only(data, RCODE_FORMERR)
        q = parse_query(canonical)
        if q is None:
            return header_only(data, RCODE_FORMERR)
        return self._answer(canonical, q, tcp)

    def _refused(self, data: bytes) -> bytes | None:
        # Labels with dots or non-ASCII bytes cannot name anything we serve.
        import dns.exception
        import dns.message
        import dns.rcode

        try:
            msg = dns.message.from_wire(data)
        except (dns.exception.DNSException, ValueError, IndexError, struct.error):
            return header_only(data, RCODE_FORMERR)
        return self._make_response(msg, dns.rcode.Rcode(RCODE_REFUSED), False)

    def _make_response(self, msg: dns.message.Message, rcode: dns.rcode.Rcode, tcp: bool) -> bytes:
        import dns.exception
        import dns.flags
        import dns.message

        resp = dns.message.make_response(msg)
        resp.flags &= ~dns.flags.RA
        if msg.edns >= 0:
            resp.use_edns(0, 0, 1232)
        resp.set_rcode(rcode)  # after use_edns: the extended bits of BADVERS live in the OPT
        limit = TCP_MAX if tcp else max(512, msg.payload if msg.edns >= 0 else 512)
        try:
            return resp.to_wire(max_size=limit)
        except dns.exception.TooBig:
            resp.answer = []
            resp.flags |= dns.flags.TC
            return resp.to_wire()


def _canonical_query(data: bytes, msg: dns.message.Message) -> bytes:
    import dns.flags

    question = msg.question[0]
    flags = data[2:4]
    ar = 1 if msg.edns == 0 else 0
    out = data[0:2] + bytes([flags[0] & 0x01, flags[1] & 0x10]) + struct.pack(">HHHH", 1, 0, 0, ar)
    out += bytes(question.name.to_wire() or b"") + struct.pack(
        ">HH", question.rdtype, question.rdclass
    )
    if ar:
        do = 0x8000 if msg.ednsflags & dns.flags.DO else 0
        out += b"\x00" + struct.pack(">HHBBHH", TYPE_OPT, max(512, msg.payload), 0, 0, do, 0)
    return out


def _qname_text(data: bytes, q: Query) -> str:
    import dns.name

    name, _ = dns.name.from_wire(data, 12)
    return name.to_text()
