"""Which conntrack entries a NetworkPolicy sync makes stale (pure).

The table accepts ``ct state established,related`` before any policy, so a connection allowed
once would outlive a deny. After a sync that may have narrowed what a local pod allows (its
isolation or a policy selecting it changed), the node's entries of that pod are judged again
against the new compiled model, and those it denies are deleted: their next packet is then
judged as a new connection, and dropped. Allowed connections keep their entries.

An entry's local pod, per direction: for ingress the reply's source (the destination after
DNAT, so a connection through a Service is judged against the pod behind it), for egress the
original source; the port is the reply's source port (the destination port after DNAT).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol as Structural
from typing import TypeVar

from svcnet.netpol.compiler import Compiled, judge
from svcnet.netpol.model import Direction, Protocol


class Entry(Structural):
    """What is read of a conntrack entry (:class:`svcnet.dataplane.conntrack.Entry`, which
    this pure module does not import: the dataplane module runs the tool)."""

    @property
    def proto(self) -> str: ...
    @property
    def orig_src(self) -> str: ...
    @property
    def reply_src(self) -> str: ...
    @property
    def reply_sport(self) -> int: ...


E = TypeVar("E", bound=Entry)


def narrowed(old: Compiled | None, new: Compiled) -> dict[Direction, frozenset[str]]:
    """Local pods isolated by ``new`` whose allowed traffic may be less than under ``old``,
    per direction: only their conntrack entries are judged again.

    Policies are additive (an isolated pod allows the union of what its policies allow), so a
    pod is narrowed only when it becomes isolated, or a policy that selected it stops doing so
    or changes its rules. A policy added to pods that are already isolated narrows nothing:
    the sync that programs it lists no conntrack table. The incremental compiler hands back
    the same object for a policy nothing touched, so the comparison looks at changes only.
    """
    out: dict[Direction, frozenset[str]] = {}
    for d in Direction:
        isolated = new.isolated[d]
        if old is None:
            out[d] = frozenset(isolated)
            continue
        pods = {ip for ip in isolated if ip not in old.isolated[d]}
        for key, before in old.policies.items():
            after = new.policies.get(key)
            if key[0] is not d or after is before:
                continue
            if after is None or (after.rules is not before.rules and after.rules != before.rules):
                lost = before.targets
            else:
                lost = before.targets - after.targets
            pods.update(ip for ip in lost if ip in isolated)
        out[d] = frozenset(pods)
    return out


def denied_entries(
    new: Compiled, pods: Mapping[Direction, frozenset[str]], entries: Iterable[E]
) -> list[E]:
    """The entries of ``pods`` (as :func:`narrowed` gives them) that ``new`` denies."""
    out: list[E] = []
    for e in entries:
        proto = Protocol(e.proto)
        if e.reply_src in pods[Direction.INGRESS]:
            j = judge(new, Direction.INGRESS, e.reply_src, e.orig_src, proto, e.reply_sport)
            if not j.allowed:
                out.append(e)
                continue
        if e.orig_src in pods[Direction.EGRESS]:
            j = judge(new, Direction.EGRESS, e.orig_src, e.reply_src, proto, e.reply_sport)
            if not j.allowed:
                out.append(e)
    return out
