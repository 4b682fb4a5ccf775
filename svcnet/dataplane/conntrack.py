"""Deleting conntrack entries: the ``conntrack`` tool, and a fake that records what it was asked.

UDP has no connection teardown: a client keeps sending to the endpoint its first packet was
DNATed to for as long as the conntrack entry lives, even after that endpoint is gone. The proxy
therefore deletes, like kube-proxy, the entries of removed UDP endpoints and, when a UDP Service
gets endpoints again, the entries that cached the time it had none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class ConntrackError(Exception):
    pass


@dataclass(frozen=True, slots=True, order=True)
class FlowFilter:
    """Entries to delete: protocol, original destination, and optionally the DNAT target; or
    by the original source and the reply's source and port (every connection of one client to
    one DNAT target, whatever address it was sent to)."""

    proto: str  # "tcp", "udp" or "sctp"
    orig_dst: str | None = None
    orig_dport: int | None = None
    dnat_to: str | None = None
    orig_src: str | None = None
    reply_src: str | None = None
    reply_sport: int | None = None

    def argv(self) -> list[str]:
        args = ["-D", "-p", self.proto]
        for flag, value in (
            ("--orig-dst", self.orig_dst),
            ("--orig-port-dst", self.orig_dport),
            ("--dst-nat", self.dnat_to),
            ("--orig-src", self.orig_src),
            ("--reply-src", self.reply_src),
            ("--reply-port-src", self.reply_sport),
        ):
            if value is not None:
                args += [flag, str(value)]
        return args


@dataclass(frozen=True, slots=True, order=True)
class Entry:
    """One conntrack entry: the original direction and the reply's source (the DNAT target)."""

    proto: str
    orig_src: str
    orig_dst: str
    orig_sport: int
    orig_dport: int
    reply_src: str
    reply_sport: int

    def filter(self) -> FlowFilter:
        """What deletes every entry from this client to this DNAT target and port: one
        ``conntrack -D`` for all of them (a client opening connections in a loop leaves
        thousands, which NetworkPolicy judges alike)."""
        return FlowFilter(
            self.proto,
            orig_src=self.orig_src,
            reply_src=self.reply_src,
            reply_sport=self.reply_sport,
        )


def parse_entries(text: str) -> list[Entry]:
    """``conntrack -L`` lines (TCP, UDP, SCTP; others skipped): the first src/dst/sport/dport
    are the original direction, the second the reply."""
    out: list[Entry] = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] not in ("tcp", "udp", "sctp"):
            continue
        fields: dict[str, list[str]] = {}
        for w in words:
            key, eq, value = w.partition("=")
            if eq:
                fields.setdefault(key, []).append(value)
        try:
            (osrc, rsrc), (odst, _), (osport, rsport), (odport, _) = (
                fields["src"][:2],
                fields["dst"][:2],
                fields["sport"][:2],
                fields["dport"][:2],
            )
            out.append(Entry(words[0], osrc, odst, int(osport), int(odport), rsrc, int(rsport)))
        except (KeyError, ValueError):
            continue
    return out


class Conntrack(Protocol):
    async def delete(self, flows: list[FlowFilter]) -> None: ...


class ConntrackLister(Protocol):
    async def list(self) -> list[Entry]: ...


class ConntrackExecutor:
    """Runs ``conntrack -D`` (optionally inside a named network namespace)."""

    def __init__(self, netns: str | None = None, conntrack: str = "conntrack") -> None:
        self.netns = netns
        self.conntrack = conntrack

    async def delete(self, flows: list[FlowFilter]) -> None:
        import asyncio  # here, so that the pure planner importing FlowFilter imports no I/O

        for flow in flows:
            argv = [self.conntrack, *flow.argv()]
            if self.netns:
                argv = ["ip", "netns", "exec", self.netns, *argv]
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            _, err = await proc.communicate()
            # Exit status 1 with "0 flow entries have been deleted" is not an error.
            if proc.returncode not in (0, 1) or (
                proc.returncode == 1 and b"flow entries have been deleted" not in err
            ):
                raise ConntrackError(err.decode(errors="replace").strip())

    async def list(self) -> list[Entry]:
        """Every TCP, UDP and SCTP entry of the namespace."""
        import asyncio

        argv = [self.conntrack, "-L"]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise ConntrackError(err.decode(errors="replace").strip())
        return parse_entries(out.decode(errors="replace"))


@dataclass
class FakeConntrack:
    """Entries as a list; ``delete`` removes those matching a filter and records the filter."""

    deleted: list[FlowFilter] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)

    async def delete(self, flows: list[FlowFilter]) -> None:
        self.deleted.extend(flows)
        self.entries = [e for e in self.entries if not any(_matches(f, e) for f in flows)]

    async def list(self) -> list[Entry]:
        return list(self.entries)


def _matches(f: FlowFilter, e: Entry) -> bool:
    return (
        f.proto == e.proto
        and f.orig_dst in (None, e.orig_dst)
        and f.orig_dport in (None, e.orig_dport)
        and f.dnat_to in (None, e.reply_src)
        and f.orig_src in (None, e.orig_src)
        and f.reply_src in (None, e.reply_src)
        and f.reply_sport in (None, e.reply_sport)
    )
