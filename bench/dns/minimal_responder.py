"""The Python ceiling for the DNS benchmark: a uvloop UDP responder that does nothing but look
up precomputed reply bytes by the query bytes (all but the ID) and patch the ID in.

It answers only the exact queries dnsperf sends for `web-N.default.svc.cluster.local A` (no
EDNS) and is no DNS server: it shows what one Python process can do at best on this machine,
next to which svcnet dns's figure is read.

    python -m bench.dns.minimal_responder PORT SERVICES
"""

from __future__ import annotations

import asyncio
import sys
from typing import cast

import dns.flags
import dns.message
import dns.rrset
import uvloop


def replies(services: int) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for i in range(services):
        name = f"web-{i}.default.svc.cluster.local."
        q = dns.message.make_query(name, "A", use_edns=False)
        q.flags = dns.flags.RD  # what dnsperf sends
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        r.answer.append(
            dns.rrset.from_text(name, 5, "IN", "A", f"10.96.{10 + i // 250}.{i % 250 + 1}")
        )
        out[q.to_wire()[2:]] = r.to_wire()[2:]
    return out


class Responder(asyncio.DatagramProtocol):
    def __init__(self, table: dict[bytes, bytes]) -> None:
        self.table = table
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        tail = self.table.get(data[2:])
        if tail is not None and self.transport is not None:
            self.transport.sendto(data[:2] + tail, addr)


async def serve(port: int, services: int) -> None:
    table = replies(services)
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: Responder(table), local_addr=("127.0.0.1", port))
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1]), int(sys.argv[2])))
