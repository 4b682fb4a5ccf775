"""Forwarding names outside the cluster zone to upstream resolvers, with a small cache.

Like CoreDNS's forward + cache plugins, kept small: upstreams are tried in order, each with a
timeout; a truncated UDP answer is retried over TCP; answers are cached for their smallest
TTL (negative answers for the SOA minimum, RFC 2308 5), at most MAX_CACHE_TTL, and served with
TTLs reduced by the time spent in the cache. SERVFAIL and failures are not cached.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dns.message

MAX_CACHE_TTL = 3600
MAX_CACHE_ENTRIES = 10000


@dataclass(frozen=True, slots=True)
class Upstream:
    host: str
    port: int = 53

    @classmethod
    def parse(cls, text: str) -> Upstream:
        """`1.2.3.4`, `1.2.3.4:5353`, `[::1]:53` or `::1`."""
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            return cls(host, int(rest[1:]) if rest.startswith(":") else 53)
        if text.count(":") == 1:
            host, _, port = text.partition(":")
            return cls(host, int(port))
        return cls(text)


@dataclass(slots=True)
class _Entry:
    wire: bytes
    stored: float
    ttl: int


class Forwarder:
    def __init__(
        self,
        upstreams: Sequence[Upstream],
        timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_CACHE_ENTRIES,
    ) -> None:
        self.upstreams = tuple(upstreams)
        self.timeout = timeout
        self._clock = clock
        self._max = max_entries
        self._cache: OrderedDict[tuple[str, int, bool], _Entry] = OrderedDict()
        self.hits = 0
        self.misses = 0

    async def resolve(
        self, qname: str, qtype: int, do_bit: bool = False
    ) -> dns.message.Message | None:
        """The upstream's answer (from the cache when fresh), or None when every upstream failed."""
        # dnspython on the first forwarded query, not at start: `svcnet up` without
        # --upstream-dns never forwards, and Upstream.parse is all the CLI needs.
        import dns.asyncquery
        import dns.exception
        import dns.flags
        import dns.message
        import dns.rcode
        import dns.rdatatype

        key = (qname.lower(), qtype, do_bit)
        entry = self._cache.get(key)
        now = self._clock()
        if entry is not None:
            age = int(now - entry.stored)
            if age < entry.ttl:
                self.hits += 1
                self._cache.move_to_end(key)
                msg = dns.message.from_wire(entry.wire)
                for section in (msg.answer, msg.authority, msg.additional):
                    for rrset in section:
                        rrset.ttl = max(0, rrset.ttl - age)
                return msg
            del self._cache[key]
        self.misses += 1
        query = dns.message.make_query(
            qname, dns.rdatatype.RdataType(qtype), use_edns=0, want_dnssec=do_bit
        )
        query.flags |= dns.flags.RD
        for upstream in self.upstreams:
            try:
                resp = await dns.asyncquery.udp(
                    query, upstream.host, timeout=self.timeout, port=upstream.port
                )
                if resp.flags & dns.flags.TC:
                    resp = await dns.asyncquery.tcp(
                        query, upstream.host, timeout=self.timeout, port=upstream.port
                    )
            except (dns.exception.DNSException, OSError, EOFError):
                continue
            if resp.rcode() == dns.rcode.SERVFAIL:
                continue
            self._store(key, resp, now)
            return resp
        return None

    def _store(self, key: tuple[str, int, bool], resp: dns.message.Message, now: float) -> None:
        ttl = _cache_ttl(resp)
        if ttl <= 0:
            return
        self._cache[key] = _Entry(resp.to_wire(), now, ttl)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)


def _cache_ttl(resp: dns.message.Message) -> int:
    import dns.rdatatype

    if resp.answer:
        return min(MAX_CACHE_TTL, min(rrset.ttl for rrset in resp.answer))
    for rrset in resp.authority:
        if rrset.rdtype == dns.rdatatype.SOA:
            minimum = min(rrset.ttl, min(int(getattr(r, "minimum", 0)) for r in rrset))
            return min(MAX_CACHE_TTL, minimum)
    return 0
