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
    """Entries to delete: protocol, original destination, and optionally the DNAT target."""

    proto: str  # "udp" or "sctp"
    orig_dst: str
    orig_dport: int | None = None
    dnat_to: str | None = None

    def argv(self) -> list[str]:
        args = ["-D", "-p", self.proto, "--orig-dst", self.orig_dst]
        if self.orig_dport is not None:
            args += ["--orig-port-dst", str(self.orig_dport)]
        if self.dnat_to is not None:
            args += ["--dst-nat", self.dnat_to]
        return args


class Conntrack(Protocol):
    async def delete(self, flows: list[FlowFilter]) -> None: ...


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


@dataclass
class FakeConntrack:
    deleted: list[FlowFilter] = field(default_factory=list)

    async def delete(self, flows: list[FlowFilter]) -> None:
        self.deleted.extend(flows)
