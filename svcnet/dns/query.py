"""One DNS question to the cluster DNS, for `svcnet dns query NAME [TYPE]`.

UDP first, retried over TCP when the reply is truncated, like dig. The answer is printed in
dig's sections so that users read what they would read from dig inside a pod.
"""

from __future__ import annotations

import dns.asyncquery
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from svcnet.api.ranges import CLUSTER_DNS_IP


async def query(
    name: str,
    qtype: str = "A",
    server: str = CLUSTER_DNS_IP,
    port: int = 53,
    timeout: float = 2.0,
    search: tuple[str, ...] = (),
) -> dns.message.Message:
    """Ask `server` for (name, qtype); a relative name is tried with each search suffix first,
    as the resolver does with ndots:5 (the first answer that is not NXDOMAIN wins)."""
    candidates = (
        [name] if name.endswith(".") else [*(f"{name}.{s.strip('.')}." for s in search), f"{name}."]
    )
    reply: dns.message.Message | None = None
    for candidate in candidates:
        q = dns.message.make_query(
            candidate, dns.rdatatype.from_text(qtype), use_edns=0, payload=1232
        )
        reply = await dns.asyncquery.udp(q, server, port=port, timeout=timeout)
        if reply.flags & dns.flags.TC:
            reply = await dns.asyncquery.tcp(q, server, port=port, timeout=timeout)
        if reply.rcode() != dns.rcode.NXDOMAIN:
            return reply
    assert reply is not None
    return reply


def format_reply(reply: dns.message.Message) -> str:
    """dig-like text: status line, then the non-empty sections."""
    lines = [f"status: {dns.rcode.to_text(reply.rcode())}"]
    for title, section in (
        ("ANSWER", reply.answer),
        ("AUTHORITY", reply.authority),
        ("ADDITIONAL", reply.additional),
    ):
        if section:
            lines.append(f";; {title} SECTION:")
            lines.extend(rrset.to_text() for rrset in section)
    return "\n".join(lines)
