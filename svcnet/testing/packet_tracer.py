"""Walk a packet through the fake nftables state and report every possible outcome.

Tests of rule builders assert behaviour ("10.96.0.10:53/udp reaches each of the two pods with
probability 1/2, masqueraded") rather than rule text. The tracer follows the netfilter hooks of
one node for one packet (the first of a new connection unless ``Packet.ct_state`` says otherwise):

- a packet arriving on an interface: prerouting base chains by priority, then the routing
  decision (input if its destination, after DNAT, is a local address, otherwise forward and
  postrouting);
- a packet sent by a local process: output base chains, then postrouting.

``numgen random mod N`` splits the trace into N branches of equal probability, so the result
is the full distribution of outcomes, merged where identical. Dynamic map updates from the
packet path (``update @affinity``) are reported in the outcome; :func:`record_updates` writes
them into the fake, as the kernel would, for the next trace. ``log`` statements are reported in
the outcome too (prefix and group, in order); ``limit`` is taken as under its rate, the state of
a packet that is not part of a flood.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

from svcnet.dataplane.nft import (
    Cmp,
    DnatMap,
    Element,
    Field,
    Hook,
    KeyPart,
    Limit,
    Log,
    MarkSet,
    MarkTest,
    Masquerade,
    Numgen,
    Reject,
    RejectKind,
    SetLookup,
    Stmt,
    Verdict,
    VerdictKind,
    VmapLookup,
)
from svcnet.dataplane.nft_fake import FakeNft, FakeSet, FakeTable


class Origin(enum.Enum):
    NETWORK = "network"  # arrives on an interface (from a pod, another node, the machine)
    LOCAL = "local"  # sent by a process of this node


class Result(enum.Enum):
    ACCEPT = "accept"
    DROP = "drop"
    REJECT_TCP_RESET = "reject with tcp reset"
    REJECT_ICMP = "reject with icmp port-unreachable"


@dataclass(frozen=True, slots=True)
class Packet:
    src: str
    dst: str
    proto: str  # "tcp", "udp", "sctp", "icmp"
    dport: int
    origin: Origin = Origin.NETWORK
    iif: str = "eth0"
    # Conntrack's view of the packet: "new" for the first packet of a connection, "established"
    # for a later one or a reply (NAT chains only ever see "new" packets).
    ct_state: str = "new"


@dataclass(frozen=True, slots=True)
class AffinityUpdate:
    map_name: str
    key: tuple[str, ...]
    data: tuple[str, ...]
    timeout_seconds: int


@dataclass(frozen=True, slots=True)
class Outcome:
    probability: Fraction
    result: Result
    dnat: tuple[str, int] | None  # the new destination, when DNAT happened
    masquerade: bool
    updates: tuple[AffinityUpdate, ...] = ()
    logs: tuple[tuple[str, int], ...] = ()  # (prefix, NFLOG group) of each log statement run


@dataclass(frozen=True, slots=True)
class _State:
    src: str
    dst: str
    proto: str
    dport: int
    iif: str
    orig_dst: str
    orig_dport: int
    ct_state: str = "new"
    mark: int = 0
    dnat: bool = False
    masquerade: bool = False
    updates: tuple[AffinityUpdate, ...] = ()
    logs: tuple[tuple[str, int], ...] = ()


class _Act(enum.Enum):
    NEXT = "next"  # go on with the next rule
    RETURN = "return"  # back to the calling chain
    ACCEPT = "accept"  # ends this base chain
    DROP = "drop"
    REJECT_TCP_RESET = "reject-tcp"
    REJECT_ICMP = "reject-icmp"


_Branches = list[tuple[Fraction, _State, _Act]]
_ONE = Fraction(1)


def trace(
    nft: FakeNft,
    family: str,
    table: str | Sequence[str],
    packet: Packet,
    local_addresses: Collection[str],
) -> list[Outcome]:
    """Every outcome of the first packet of a new connection, with its probability.

    ``table`` may name several tables (the proxy's and NetworkPolicy's): the base chains of
    all of them run on each hook in the order of their priorities, as in the kernel.
    """
    names = (table,) if isinstance(table, str) else tuple(table)
    t = [nft.table(family, name) for name in names]
    st = _State(
        packet.src,
        packet.dst,
        packet.proto,
        packet.dport,
        packet.iif,
        packet.dst,
        packet.dport,
        packet.ct_state,
    )
    local = frozenset(local_addresses)
    branches: list[tuple[Fraction, _State, Result]] = []
    first = Hook.PREROUTING if packet.origin is Origin.NETWORK else Hook.OUTPUT
    for p, s, res in _run_hook(t, first, st, local):
        if res is not None:
            branches.append((p, s, res))
            continue
        if first is Hook.PREROUTING:
            hooks = [Hook.INPUT] if s.dst in local else [Hook.FORWARD, Hook.POSTROUTING]
        else:
            hooks = [Hook.POSTROUTING]
        todo: list[tuple[Fraction, _State, Result | None]] = [(p, s, None)]
        for hook in hooks:
            nxt: list[tuple[Fraction, _State, Result | None]] = []
            for p2, s2, r2 in todo:
                if r2 is not None:
                    nxt.append((p2, s2, r2))
                    continue
                nxt.extend((p2 * p3, s3, r3) for p3, s3, r3 in _run_hook(t, hook, s2, local))
            todo = nxt
        branches.extend((p2, s2, r2 or Result.ACCEPT) for p2, s2, r2 in todo)
    merged: dict[
        tuple[
            Result,
            tuple[str, int] | None,
            bool,
            tuple[AffinityUpdate, ...],
            tuple[tuple[str, int], ...],
        ],
        Fraction,
    ] = {}
    for p, s, res in branches:
        dnat = (s.dst, s.dport) if s.dnat else None
        k = (res, dnat, s.masquerade, s.updates, s.logs)
        merged[k] = merged.get(k, Fraction(0)) + p
    return sorted(
        (Outcome(p, r, d, m, u, lg) for (r, d, m, u, lg), p in merged.items()),
        key=lambda o: (o.result.value, o.dnat or ("", 0), o.masquerade),
    )


def record_updates(nft: FakeNft, family: str, table: str, outcome: Outcome) -> None:
    """Write the outcome's dynamic map updates into the fake, as the packet path would."""
    for u in outcome.updates:
        nft.add_dynamic_element(
            family, table, u.map_name, Element(u.key, u.data, u.timeout_seconds)
        )


def _run_hook(
    tables: Sequence[FakeTable], hook: Hook, st: _State, local: frozenset[str]
) -> list[tuple[Fraction, _State, Result | None]]:
    chains = sorted(
        (c.base.priority, i, name)
        for i, t in enumerate(tables)
        for name, c in t.chains.items()
        if c.base and c.base.hook is hook
    )
    todo: list[tuple[Fraction, _State, Result | None]] = [(_ONE, st, None)]
    for _, i, name in chains:
        t = tables[i]
        nxt: list[tuple[Fraction, _State, Result | None]] = []
        for p, s, r in todo:
            if r is not None:
                nxt.append((p, s, r))
                continue
            for p2, s2, act in _run_chain(t, name, s, local):
                nxt.append((p * p2, s2, _RESULT_OF.get(act)))
        todo = nxt
    return todo


_RESULT_OF = {
    _Act.DROP: Result.DROP,
    _Act.REJECT_TCP_RESET: Result.REJECT_TCP_RESET,
    _Act.REJECT_ICMP: Result.REJECT_ICMP,
}


def _run_chain(t: FakeTable, name: str, st: _State, local: frozenset[str]) -> _Branches:
    """Outcomes of a chain: RETURN when it falls off its end or returns."""
    rules = t.chains[name].rules

    def from_rule(i: int, s: _State) -> _Branches:
        if i == len(rules):
            return [(_ONE, s, _Act.RETURN)]
        out: _Branches = []
        for p, s2, act in _run_stmts(t, rules[i].stmts, 0, s, local):
            if act is _Act.NEXT:
                out.extend((p * p2, s3, a3) for p2, s3, a3 in from_rule(i + 1, s2))
            else:
                out.append((p, s2, act))
        return out

    return from_rule(0, st)


def _run_stmts(
    t: FakeTable, stmts: tuple[Stmt, ...], j: int, st: _State, local: frozenset[str]
) -> _Branches:
    if j == len(stmts):
        return [(_ONE, st, _Act.NEXT)]
    s = stmts[j]

    def go_on(state: _State) -> _Branches:
        return _run_stmts(t, stmts, j + 1, state, local)

    if isinstance(s, Cmp):
        return go_on(st) if _cmp(s, st, local) else [(_ONE, st, _Act.NEXT)]
    if isinstance(s, MarkTest):
        return go_on(st) if bool(st.mark & s.mask) == s.is_set else [(_ONE, st, _Act.NEXT)]
    if isinstance(s, MarkSet):
        return go_on(replace(st, mark=(st.mark ^ s.bits) if s.xor else (st.mark | s.bits)))
    if isinstance(s, Masquerade):
        return [(_ONE, replace(st, masquerade=True), _Act.ACCEPT)]
    if isinstance(s, Reject):
        kind = _Act.REJECT_TCP_RESET if s.kind is RejectKind.TCP_RESET else _Act.REJECT_ICMP
        return [(_ONE, st, kind)]
    if isinstance(s, Limit):
        return go_on(st)
    if isinstance(s, Log):
        return go_on(replace(st, logs=(*st.logs, (s.prefix, s.group))))
    if isinstance(s, Verdict):
        return _verdict(t, s, st, local)
    out: _Branches = []
    for p, key in _key(s.key, st, local):
        if isinstance(s, SetLookup):
            hit = _set_has(t.sets[s.set_name], key) != s.negate
            branch = go_on(st) if hit else [(_ONE, st, _Act.NEXT)]
        elif isinstance(s, VmapLookup):
            e = t.sets[s.map_name].elements.get(key)
            if e is None or not isinstance(e.data, Verdict):
                branch = [(_ONE, st, _Act.NEXT)]
            else:
                branch = _verdict(t, e.data, st, local)
        elif isinstance(s, DnatMap):
            e = t.sets[s.map_name].elements.get(key)
            if e is None or not isinstance(e.data, tuple):
                branch = [(_ONE, st, _Act.NEXT)]  # a missed lookup breaks the rule
            else:
                addr, port = e.data
                moved = replace(st, dst=addr, dport=int(port), dnat=True)
                branch = [(_ONE, moved, _Act.ACCEPT)]  # nat statements are terminal
        else:  # MapUpdate
            data = next(_key(s.data, st, local))[1]
            upd = AffinityUpdate(s.map_name, key, data, s.timeout_seconds)
            branch = go_on(replace(st, updates=(*st.updates, upd)))
        out.extend((p * p2, s2, a2) for p2, s2, a2 in branch)
    return out


def _set_has(s: FakeSet, key: tuple[str, ...]) -> bool:
    if key in s.elements:
        return True
    if "interval" not in s.spec.flags:
        return False
    return any(all(_field_matches(v, f) for v, f in zip(key, k, strict=True)) for k in s.elements)


def _field_matches(value: str, element_field: str) -> bool:
    first, sep, last = element_field.partition("-")
    if sep and first.isdigit() and last.isdigit():  # a port range: "80-90"
        return value.isdigit() and int(first) <= int(value) <= int(last)
    if "/" not in element_field:
        return value == element_field
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(element_field)
    except ValueError:
        return False


def _verdict(t: FakeTable, v: Verdict, st: _State, local: frozenset[str]) -> _Branches:
    if v.kind is VerdictKind.ACCEPT:
        return [(_ONE, st, _Act.ACCEPT)]
    if v.kind is VerdictKind.DROP:
        return [(_ONE, st, _Act.DROP)]
    if v.kind is VerdictKind.RETURN:
        return [(_ONE, st, _Act.RETURN)]
    assert v.chain is not None
    out: _Branches = []
    for p, s2, act in _run_chain(t, v.chain, st, local):
        if act is _Act.RETURN:
            # After a jump the caller goes on; after a goto, the caller itself returns.
            act = _Act.NEXT if v.kind is VerdictKind.JUMP else _Act.RETURN
        out.append((p, s2, act))
    return out


def _field(f: Field, st: _State, local: frozenset[str]) -> str:
    match f:
        case Field.IP_SADDR:
            return st.src
        case Field.IP_DADDR:
            return st.dst
        case Field.L4PROTO:
            return st.proto
        case Field.TH_DPORT:
            return str(st.dport)
        case Field.CT_ORIG_DADDR:
            return st.orig_dst
        case Field.CT_ORIG_DPORT:
            return str(st.orig_dport)
        case Field.FIB_DADDR_TYPE:
            return "local" if st.dst in local else "unicast"
        case Field.FIB_SADDR_TYPE:
            return "local" if st.src in local else "unicast"
        case Field.CT_STATE:
            return st.ct_state
        case Field.CT_STATUS:
            return "dnat" if st.dnat else ""
        case Field.IIFNAME:
            return st.iif
        case Field.OIFNAME:
            return ""
    raise ValueError(f)  # pragma: no cover


def _cmp(c: Cmp, st: _State, local: frozenset[str]) -> bool:
    value = _field(c.field, st, local)
    if c.field is Field.CT_STATE:  # a list of states: any of them matches
        hit = value in c.value.split(",")
    elif "/" in c.value:
        try:
            hit = ipaddress.ip_address(value) in ipaddress.ip_network(c.value)
        except ValueError:
            hit = False
    else:
        hit = value == c.value
    return hit != c.negate


def _key(
    key: tuple[KeyPart, ...], st: _State, local: frozenset[str]
) -> Iterator[tuple[Fraction, tuple[str, ...]]]:
    """All values of a key; a ``numgen`` part yields each slot with probability 1/N."""
    parts: list[list[tuple[Fraction, str]]] = []
    for part in key:
        if isinstance(part, Numgen):
            prob = Fraction(1, part.modulus)
            parts.append([(prob, str(part.offset + i)) for i in range(part.modulus)])
        else:
            parts.append([(_ONE, _field(part, st, local))])
    combos: list[tuple[Fraction, tuple[str, ...]]] = [(_ONE, ())]
    for options in parts:
        combos = [(p * q, (*vals, v)) for p, vals in combos for q, v in options]
    yield from combos
