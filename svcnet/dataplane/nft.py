"""nftables transactions as values (the executor that runs them is :mod:`svcnet.dataplane.nft_exec`).

A :class:`Transaction` is an ordered tuple of typed operations on one table (knftables'
model). It renders to an ``nft -f -`` script of ``add``/``flush``/``delete`` commands, which
``nft`` applies atomically: either every command takes effect or none does. Rules are typed too
(a small statement vocabulary, :data:`Stmt`), so that the fake (:mod:`svcnet.dataplane.nft_fake`)
can check references and the packet tracer can evaluate them without parsing nft syntax.

Only the statements the components of svcnet need exist; each renders to exactly one nft
fragment. Values inside keys and elements are nft literals (``10.96.0.1``, ``tcp``, ``80``).

This module is pure, so that the rule builders that import it stay pure (the purity contract
in pyproject.toml): no subprocess, asyncio or socket here.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

# --- errors ------------------------------------------------------------------------------------


class NftError(Exception):
    """A transaction was refused; nothing of it was applied."""

    def __init__(self, message: str, script: str = "") -> None:
        super().__init__(message)
        self.script = script


class NftNotFoundError(NftError):
    """An object the transaction names (table, chain, set, element) does not exist."""


class NftExistsError(NftError):
    """An object the transaction creates with ``create`` or adds twice already exists."""


class NftBusyError(NftError):
    """An object to delete is still referenced (a chain jumped to, a set looked up)."""


class NftSyntaxError(NftError):
    """``nft`` could not parse or type-check the script: a bug in the rule builder."""


# --- rule vocabulary ---------------------------------------------------------------------------


class Field(enum.Enum):
    """Packet and conntrack fields a key or a comparison reads."""

    IP_SADDR = "ip saddr"
    IP_DADDR = "ip daddr"
    L4PROTO = "meta l4proto"
    TH_DPORT = "th dport"
    CT_ORIG_DADDR = "ct original ip daddr"
    # Needs a protocol context in the same rule (``meta l4proto tcp``) for nft 1.0.6 to type it.
    CT_ORIG_DPORT = "ct original proto-dst"
    FIB_DADDR_TYPE = "fib daddr type"
    FIB_SADDR_TYPE = "fib saddr type"
    CT_STATE = "ct state"
    CT_STATUS = "ct status"
    IIFNAME = "iifname"
    OIFNAME = "oifname"


@dataclass(frozen=True, slots=True)
class Numgen:
    """``numgen random mod N offset O``: a uniformly random slot in ``O .. O+N-1``."""

    modulus: int
    offset: int = 0

    def render(self) -> str:
        off = f" offset {self.offset}" if self.offset else ""
        return f"numgen random mod {self.modulus}{off}"


KeyPart = Field | Numgen


def render_key(key: Sequence[KeyPart]) -> str:
    return " . ".join(p.render() if isinstance(p, Numgen) else p.value for p in key)


@dataclass(frozen=True, slots=True)
class Cmp:
    """``FIELD VALUE`` or ``FIELD != VALUE``; VALUE may be a prefix (``10.244.0.0/16``)."""

    field: Field
    value: str
    negate: bool = False

    def render(self) -> str:
        op = "!= " if self.negate else ""
        return f"{self.field.value} {op}{self.value}"


@dataclass(frozen=True, slots=True)
class MarkTest:
    """``meta mark & MASK == 0`` (``is_set=False``) or ``!= 0`` (``is_set=True``)."""

    mask: int
    is_set: bool

    def render(self) -> str:
        return f"meta mark & {self.mask:#x} {'!=' if self.is_set else '=='} 0"


@dataclass(frozen=True, slots=True)
class SetLookup:
    """``KEY @set`` (``KEY != @set`` with ``negate``): whether the key is an element of the set.

    In a set with ``flags interval`` an element field may be a prefix (``10.0.0.0/8``).
    """

    key: tuple[KeyPart, ...]
    set_name: str
    negate: bool = False

    def render(self) -> str:
        return f"{render_key(self.key)} {'!= ' if self.negate else ''}@{self.set_name}"


@dataclass(frozen=True, slots=True)
class VmapLookup:
    """``KEY vmap @map``: the element's verdict is taken; a miss falls through to the next rule."""

    key: tuple[KeyPart, ...]
    map_name: str

    def render(self) -> str:
        return f"{render_key(self.key)} vmap @{self.map_name}"


@dataclass(frozen=True, slots=True)
class DnatMap:
    """``dnat to KEY map @map``: the element's ``addr . port`` is the new destination.

    A miss leaves the packet untouched and evaluation goes on with the next rule; a hit is
    terminal (nat statements accept).
    """

    key: tuple[KeyPart, ...]
    map_name: str

    def render(self) -> str:
        return f"dnat to {render_key(self.key)} map @{self.map_name}"


@dataclass(frozen=True, slots=True)
class MapUpdate:
    """``update @map { KEY timeout Ns : DATA }`` from the packet path (a dynamic map)."""

    map_name: str
    key: tuple[KeyPart, ...]
    data: tuple[KeyPart, ...]
    timeout_seconds: int

    def render(self) -> str:
        return (
            f"update @{self.map_name} {{ {render_key(self.key)} "
            f"timeout {self.timeout_seconds}s : {render_key(self.data)} }}"
        )


@dataclass(frozen=True, slots=True)
class MarkSet:
    """``meta mark set meta mark or BITS`` (``xor=False``) or ``xor BITS``."""

    bits: int
    xor: bool = False

    def render(self) -> str:
        return f"meta mark set meta mark {'xor' if self.xor else 'or'} {self.bits:#x}"


@dataclass(frozen=True, slots=True)
class Masquerade:
    fully_random: bool = True

    def render(self) -> str:
        return "masquerade fully-random" if self.fully_random else "masquerade"


class RejectKind(enum.Enum):
    TCP_RESET = "reject with tcp reset"
    ICMP_PORT_UNREACHABLE = "reject"


@dataclass(frozen=True, slots=True)
class Reject:
    kind: RejectKind

    def render(self) -> str:
        return self.kind.value


@dataclass(frozen=True, slots=True)
class Limit:
    """``limit rate R/second burst B packets``: matches while under the rate (a token bucket
    per rule); over it, the rule stops matching and evaluation goes on with the next rule."""

    rate: int
    burst: int

    def render(self) -> str:
        return f"limit rate {self.rate}/second burst {self.burst} packets"


# The kernel's NF_LOG_PREFIXLEN is 128 bytes, its terminating NUL included.
LOG_PREFIX_MAX = 127


@dataclass(frozen=True, slots=True)
class Log:
    """``log prefix "P" group G``: a copy of the packet to NFLOG group ``G`` (a netlink
    multicast, read by :mod:`svcnet.dataplane.netlink_events`); not a verdict."""

    prefix: str
    group: int

    def __post_init__(self) -> None:
        if len(self.prefix.encode()) > LOG_PREFIX_MAX or '"' in self.prefix:
            raise ValueError(f"nft log prefix too long or quoted: {self.prefix!r}")

    def render(self) -> str:
        return f'log prefix "{self.prefix}" group {self.group}'


class VerdictKind(enum.Enum):
    ACCEPT = "accept"
    DROP = "drop"
    RETURN = "return"
    JUMP = "jump"
    GOTO = "goto"


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: VerdictKind
    chain: str | None = None

    def render(self) -> str:
        return self.kind.value if self.chain is None else f"{self.kind.value} {self.chain}"


def goto(chain: str) -> Verdict:
    return Verdict(VerdictKind.GOTO, chain)


def jump(chain: str) -> Verdict:
    return Verdict(VerdictKind.JUMP, chain)


ACCEPT = Verdict(VerdictKind.ACCEPT)
DROP = Verdict(VerdictKind.DROP)
RETURN = Verdict(VerdictKind.RETURN)

Stmt = (
    Cmp
    | MarkTest
    | SetLookup
    | VmapLookup
    | DnatMap
    | MapUpdate
    | MarkSet
    | Masquerade
    | Reject
    | Limit
    | Log
    | Verdict
)


@dataclass(frozen=True, slots=True)
class Rule:
    stmts: tuple[Stmt, ...]
    comment: str | None = None

    def render(self) -> str:
        text = " ".join(s.render() for s in self.stmts)
        if self.comment:
            text += f' comment "{self.comment}"'
        return text

    def referenced_chains(self) -> list[str]:
        return [s.chain for s in self.stmts if isinstance(s, Verdict) and s.chain is not None]

    def referenced_sets(self) -> list[str]:
        out: list[str] = []
        for s in self.stmts:
            if isinstance(s, SetLookup):
                out.append(s.set_name)
            elif isinstance(s, VmapLookup | DnatMap | MapUpdate):
                out.append(s.map_name)
        return out


def rule(*stmts: Stmt, comment: str | None = None) -> Rule:
    return Rule(tuple(stmts), comment)


# --- objects -----------------------------------------------------------------------------------


class ChainType(enum.Enum):
    FILTER = "filter"
    NAT = "nat"


class Hook(enum.Enum):
    PREROUTING = "prerouting"
    INPUT = "input"
    FORWARD = "forward"
    OUTPUT = "output"
    POSTROUTING = "postrouting"


@dataclass(frozen=True, slots=True)
class BaseChain:
    type: ChainType
    hook: Hook
    priority: int

    def render(self) -> str:
        return f"{{ type {self.type.value} hook {self.hook.value} priority {self.priority} ; }}"


@dataclass(frozen=True, slots=True)
class SetSpec:
    """A named set (``data_type is None``) or map.

    ``key_type``/``data_type`` are nft type expressions (``ipv4_addr . inet_proto``) or, with
    ``typeof=True``, ``typeof`` expressions (needed for ``numgen`` keys). ``data_type`` of
    ``"verdict"`` makes a verdict map.
    """

    key_type: str
    data_type: str | None = None
    typeof: bool = False
    flags: tuple[str, ...] = ()
    timeout_seconds: int | None = None
    size: int | None = None
    comment: str | None = None

    @property
    def is_map(self) -> bool:
        return self.data_type is not None

    @property
    def is_verdict_map(self) -> bool:
        return self.data_type == "verdict"

    @property
    def key_arity(self) -> int:
        return self.key_type.count(" . ") + 1

    def render(self) -> str:
        kw = "typeof" if self.typeof else "type"
        parts = [f"{kw} {self.key_type}" + (f" : {self.data_type}" if self.data_type else "")]
        if self.flags:
            parts.append("flags " + ",".join(self.flags))
        if self.timeout_seconds is not None:
            parts.append(f"timeout {self.timeout_seconds}s")
        if self.size is not None:
            parts.append(f"size {self.size}")
        if self.comment:
            parts.append(f'comment "{self.comment}"')
        return "{ " + " ; ".join(parts) + " ; }"


ElementData = tuple[str, ...] | Verdict | None


class Element(NamedTuple):
    """One set or map element. A NamedTuple, not a dataclass: a full sync builds 10^5 of them."""

    key: tuple[str, ...]
    data: ElementData = None
    timeout_seconds: int | None = None

    def render(self) -> str:
        text = " . ".join(self.key)
        if self.timeout_seconds is not None:
            text += f" timeout {self.timeout_seconds}s"
        data = self.data
        if isinstance(data, Verdict):
            text += f" : {data.render()}"
        elif data is not None:
            text += " : " + " . ".join(data)
        return text


# --- operations --------------------------------------------------------------------------------


class Verb(enum.Enum):
    ADD = "add"
    FLUSH = "flush"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class TableOp:
    verb: Verb


@dataclass(frozen=True, slots=True)
class ChainOp:
    verb: Verb
    name: str
    base: BaseChain | None = None


@dataclass(frozen=True, slots=True)
class RuleOp:
    """Only ``add`` (append): rules are replaced by flushing their chain, as kube-proxy does."""

    chain: str
    rule: Rule


@dataclass(frozen=True, slots=True)
class SetOp:
    """``add`` carries the spec; ``flush``/``delete`` must say whether it is a map, as nft
    finds a map only under ``map`` and a set only under ``set``."""

    verb: Verb
    name: str
    spec: SetSpec | None = None
    is_map: bool = False

    @property
    def kind(self) -> str:
        return "map" if (self.spec.is_map if self.spec is not None else self.is_map) else "set"


@dataclass(frozen=True, slots=True)
class ElementOp:
    verb: Verb  # ADD or DELETE
    set_name: str
    elements: tuple[Element, ...]


Op = TableOp | ChainOp | RuleOp | SetOp | ElementOp

# Elements per ``add element`` command: large enough to keep the script short, small enough
# that one line stays well below nft's parser limits.
_ELEMENTS_PER_LINE = 1000


@dataclass(frozen=True, slots=True)
class Transaction:
    """Operations on one table, applied all-or-nothing by ``nft -f``."""

    family: str
    table: str
    ops: tuple[Op, ...] = ()

    def __len__(self) -> int:
        return len(self.ops)

    def render(self) -> str:
        t = f"{self.family} {self.table}"
        lines: list[str] = []
        for op in self.ops:
            if isinstance(op, TableOp):
                lines.append(f"{op.verb.value} table {t}")
            elif isinstance(op, ChainOp):
                line = f"{op.verb.value} chain {t} {op.name}"
                if op.verb is Verb.ADD and op.base is not None:
                    line += " " + op.base.render()
                lines.append(line)
            elif isinstance(op, RuleOp):
                lines.append(f"add rule {t} {op.chain} {op.rule.render()}")
            elif isinstance(op, SetOp):
                line = f"{op.verb.value} {op.kind} {t} {op.name}"
                if op.verb is Verb.ADD and op.spec is not None:
                    line += " " + op.spec.render()
                lines.append(line)
            else:
                for i in range(0, len(op.elements), _ELEMENTS_PER_LINE):
                    chunk = op.elements[i : i + _ELEMENTS_PER_LINE]
                    body = ", ".join(e.render() for e in chunk)
                    lines.append(f"{op.verb.value} element {t} {op.set_name} {{ {body} }}")
        return "\n".join(lines) + "\n"


@dataclass
class TransactionBuilder:
    """Accumulates operations; :meth:`build` freezes them into a :class:`Transaction`."""

    family: str
    table: str
    ops: list[Op] = field(default_factory=list)

    def add_table(self) -> None:
        self.ops.append(TableOp(Verb.ADD))

    def delete_table(self) -> None:
        self.ops.append(TableOp(Verb.DELETE))

    def flush_table(self) -> None:
        self.ops.append(TableOp(Verb.FLUSH))

    def add_chain(self, name: str, base: BaseChain | None = None) -> None:
        self.ops.append(ChainOp(Verb.ADD, name, base))

    def flush_chain(self, name: str) -> None:
        self.ops.append(ChainOp(Verb.FLUSH, name))

    def delete_chain(self, name: str) -> None:
        self.ops.append(ChainOp(Verb.DELETE, name))

    def add_rule(self, chain: str, r: Rule) -> None:
        self.ops.append(RuleOp(chain, r))

    def add_set(self, name: str, spec: SetSpec) -> None:
        self.ops.append(SetOp(Verb.ADD, name, spec))

    def flush_set(self, name: str, is_map: bool = False) -> None:
        self.ops.append(SetOp(Verb.FLUSH, name, is_map=is_map))

    def delete_set(self, name: str, is_map: bool = False) -> None:
        self.ops.append(SetOp(Verb.DELETE, name, is_map=is_map))

    def add_elements(self, set_name: str, elements: Iterable[Element]) -> None:
        els = tuple(elements)
        if els:
            self.ops.append(ElementOp(Verb.ADD, set_name, els))

    def delete_elements(self, set_name: str, elements: Iterable[Element]) -> None:
        els = tuple(elements)
        if els:
            self.ops.append(ElementOp(Verb.DELETE, set_name, els))

    def build(self) -> Transaction:
        return Transaction(self.family, self.table, tuple(self.ops))
