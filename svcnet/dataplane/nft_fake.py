"""A faithful in-memory nftables, for unit tests of the pure rule builders.

It applies a :class:`~svcnet.dataplane.nft.Transaction` the way the kernel does: to a copy of
its state, committed only if every operation succeeds, so an error leaves the state exactly as
it was. It keeps nft's rules that matter to a rule builder: objects must exist before they are
flushed, deleted, filled or referenced (rules jumping to a chain, looking up a set; verdict-map
elements jumping to a chain); a chain or set still referenced cannot be deleted (a chain's
own rules go with it); an element key must have the set's arity and a map element must carry
data; adding an element whose key exists with other data is refused, and so is one that
overlaps another in a set with ``flags interval``; deleting a missing
element is refused; a map whose ``typeof`` data names a transport protocol (``ip daddr . tcp
dport``) is type-checked against the protocol of the first rule of a transaction that uses it
(nft 1.0.6 evaluates the map's expressions once, in that rule's context: a first user matching
``meta l4proto udp`` is refused with "conflicting protocols specified: udp vs. tcp", later
users in the same transaction are not checked). tests/e2e/test_nft_executor.py runs the same
cases against the real nft. ``dump()`` prints the state sorted, for golden comparisons.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from dataclasses import dataclass, field

from svcnet.dataplane.nft import (
    BaseChain,
    ChainOp,
    Cmp,
    DnatMap,
    Element,
    ElementOp,
    Field,
    NftBusyError,
    NftError,
    NftExistsError,
    NftNotFoundError,
    NftSyntaxError,
    Rule,
    RuleOp,
    SetOp,
    SetSpec,
    TableOp,
    Transaction,
    TransactionBuilder,
    Verb,
    Verdict,
)


@dataclass
class FakeChain:
    base: BaseChain | None
    rules: list[Rule] = field(default_factory=list)


@dataclass
class FakeSet:
    spec: SetSpec
    elements: dict[tuple[str, ...], Element] = field(default_factory=dict)


@dataclass
class FakeTable:
    chains: dict[str, FakeChain] = field(default_factory=dict)
    sets: dict[str, FakeSet] = field(default_factory=dict)

    def chain_references(self, name: str) -> int:
        n = sum(r.referenced_chains().count(name) for c in self.chains.values() for r in c.rules)
        for s in self.sets.values():
            if s.spec.is_verdict_map:
                n += sum(
                    1
                    for e in s.elements.values()
                    if isinstance(e.data, Verdict) and e.data.chain == name
                )
        return n

    def set_references(self, name: str) -> int:
        return sum(r.referenced_sets().count(name) for c in self.chains.values() for r in c.rules)


class FakeNft:
    """In-memory nftables: ``apply`` is all-or-nothing, like ``nft -f``."""

    def __init__(self) -> None:
        self.tables: dict[tuple[str, str], FakeTable] = {}
        self.transactions = 0  # how many were applied (successfully)

    # The executor's interface.
    async def apply(self, tx: Transaction) -> None:
        self.apply_sync(tx)

    def apply_sync(self, tx: Transaction) -> None:
        tables = copy.deepcopy(self.tables)
        evaluated: set[str] = set()  # maps whose typeof nft has evaluated in this transaction
        for op in tx.ops:
            _apply_op(tables, (tx.family, tx.table), op, evaluated)
        self.tables = tables
        self.transactions += 1

    async def list_chains(self, family: str, name: str) -> set[str] | None:
        t = self.tables.get((family, name))
        return set(t.chains) if t else None

    async def list_elements(self, family: str, table: str, name: str) -> list[Element]:
        try:
            s = self.table(family, table).sets[name]
        except KeyError:
            raise NftNotFoundError(f"map {name}: No such file or directory") from None
        # Timeouts are not listed back: deleting needs only key and data.
        return [Element(e.key, e.data) for _, e in sorted(s.elements.items())]

    def table(self, family: str, name: str) -> FakeTable:
        try:
            return self.tables[(family, name)]
        except KeyError:
            raise NftNotFoundError(f"table {family} {name}: No such file or directory") from None

    def table_exists(self, family: str, name: str) -> bool:
        return (family, name) in self.tables

    def chain_names(self, family: str, name: str) -> set[str]:
        t = self.tables.get((family, name))
        return set(t.chains) if t else set()

    def delete_table(self, family: str, name: str) -> None:
        """What an administrator's ``nft delete table`` does behind the proxy's back."""
        self.tables.pop((family, name), None)

    def add_dynamic_element(self, family: str, table: str, set_name: str, element: Element) -> None:
        """What the packet path's ``update @map`` does (session affinity)."""
        s = self.table(family, table).sets[set_name]
        s.elements[element.key] = element

    def counts(self, family: str, name: str) -> tuple[int, int, int]:
        t = self.table(family, name)
        rules = sum(len(c.rules) for c in t.chains.values())
        elements = sum(len(s.elements) for s in t.sets.values())
        return rules, elements, len(t.chains)

    def rebuild(self, family: str, name: str) -> Transaction:
        """One transaction that builds this table from nothing: every chain, then every set
        and its elements, then the rules. Loaded into a real nft, it shows the state as the
        kernel holds it, to compare with what the real nft made of the same transactions."""
        t = self.table(family, name)
        b = TransactionBuilder(family, name)
        b.add_table()
        for cname, c in sorted(t.chains.items()):
            b.add_chain(cname, c.base)
        for sname, st in sorted(t.sets.items()):
            b.add_set(sname, st.spec)
            if st.elements:
                b.add_elements(sname, [st.elements[k] for k in sorted(st.elements)])
        for cname, c in sorted(t.chains.items()):
            for r in c.rules:
                b.add_rule(cname, r)
        return b.build()

    def dump(self) -> str:
        """The whole state, every object and element sorted: stable for golden diffs."""
        lines: list[str] = []
        for (family, name), t in sorted(self.tables.items()):
            lines.append(f"table {family} {name}")
            for sname, s in sorted(t.sets.items()):
                kind = "map" if s.spec.is_map else "set"
                lines.append(f"  {kind} {sname} {s.spec.render()}")
                for key in sorted(s.elements):
                    lines.append(f"    {s.elements[key].render()}")
            for cname, c in sorted(t.chains.items()):
                lines.append(f"  chain {cname}" + (f" {c.base.render()}" if c.base else ""))
                for r in c.rules:
                    lines.append(f"    {r.render()}")
        return "\n".join(lines) + "\n"


class FlakyNft(FakeNft):
    """Fails the next ``fail`` transactions, as nft does on a kernel error; records the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = 0
        self.applied: list[Transaction] = []

    async def apply(self, tx: Transaction) -> None:
        if self.fail:
            self.fail -= 1
            raise NftError("Could not process rule: Cannot allocate memory")
        self.apply_sync(tx)
        self.applied.append(tx)


_TYPEOF_PROTOCOL = re.compile(r"\b(tcp|udp|sctp) dport\b")


def _check_typeof_protocol(table: FakeTable, r: Rule, evaluated: set[str]) -> None:
    """nft 1.0.6's "conflicting protocols" refusal (see the module docstring)."""
    proto = next(
        (s.value for s in r.stmts if isinstance(s, Cmp) and s.field is Field.L4PROTO), None
    )
    for s in r.stmts:
        if not isinstance(s, DnatMap) or s.map_name in evaluated:
            continue
        evaluated.add(s.map_name)
        spec = table.sets[s.map_name].spec
        m = _TYPEOF_PROTOCOL.search(spec.data_type or "") if spec.typeof else None
        if m and proto is not None and proto != m.group(1):
            raise NftSyntaxError(f"Error: conflicting protocols specified: {proto} vs. {m[1]}")


def _apply_op(
    tables: dict[tuple[str, str], FakeTable],
    tkey: tuple[str, str],
    op: object,
    evaluated: set[str],
) -> None:
    where = f"{tkey[0]} {tkey[1]}"
    if isinstance(op, TableOp):
        if op.verb is Verb.ADD:
            tables.setdefault(tkey, FakeTable())
        elif tkey not in tables:
            raise NftNotFoundError(f"table {where}: No such file or directory")
        elif op.verb is Verb.DELETE:
            del tables[tkey]
        else:
            for c in tables[tkey].chains.values():
                c.rules.clear()
            for s in tables[tkey].sets.values():
                s.elements.clear()
        return
    table = tables.get(tkey)
    if table is None:
        raise NftNotFoundError(f"table {where}: No such file or directory")
    if isinstance(op, ChainOp):
        _chain_op(table, op)
    elif isinstance(op, RuleOp):
        chain = table.chains.get(op.chain)
        if chain is None:
            raise NftNotFoundError(f"chain {op.chain}: No such file or directory")
        for ref in op.rule.referenced_chains():
            if ref not in table.chains:
                raise NftNotFoundError(f"rule jumps to chain {ref}: No such file or directory")
            if table.chains[ref].base is not None:
                raise NftSyntaxError(f"rule jumps to base chain {ref}: Operation not supported")
        for ref in op.rule.referenced_sets():
            if ref not in table.sets:
                raise NftNotFoundError(f"rule uses set {ref}: No such file or directory")
        _check_typeof_protocol(table, op.rule, evaluated)
        chain.rules.append(op.rule)
    elif isinstance(op, SetOp):
        _set_op(table, op)
    elif isinstance(op, ElementOp):
        _element_op(table, op)
    else:  # pragma: no cover - the Op union is closed
        raise TypeError(op)


def _chain_op(table: FakeTable, op: ChainOp) -> None:
    existing = table.chains.get(op.name)
    if op.verb is Verb.ADD:
        if existing is None:
            table.chains[op.name] = FakeChain(op.base)
        elif existing.base != op.base:
            raise NftExistsError(f"chain {op.name} exists with another hook: File exists")
        return
    if existing is None:
        raise NftNotFoundError(f"chain {op.name}: No such file or directory")
    if op.verb is Verb.FLUSH:
        existing.rules.clear()
        return
    # nft 1.0.6 deletes a chain together with its rules; only references keep it alive.
    if table.chain_references(op.name):
        raise NftBusyError(f"chain {op.name}: Device or resource busy")
    del table.chains[op.name]


def _set_op(table: FakeTable, op: SetOp) -> None:
    existing = table.sets.get(op.name)
    if op.verb is Verb.ADD:
        assert op.spec is not None
        if existing is None:
            table.sets[op.name] = FakeSet(op.spec)
        elif existing.spec != op.spec:
            raise NftExistsError(f"set {op.name} exists with another type: File exists")
        return
    if existing is None or existing.spec.is_map != op.is_map:
        # nft looks maps up only under "map" and sets only under "set".
        raise NftNotFoundError(f"{op.kind} {op.name}: No such file or directory")
    if op.verb is Verb.FLUSH:
        existing.elements.clear()
        return
    if table.set_references(op.name):
        raise NftBusyError(f"set {op.name}: Device or resource busy")
    del table.sets[op.name]


def _element_op(table: FakeTable, op: ElementOp) -> None:
    s = table.sets.get(op.set_name)
    if s is None:
        raise NftNotFoundError(f"set {op.set_name}: No such file or directory")
    for e in op.elements:
        if len(e.key) != s.spec.key_arity:
            raise NftSyntaxError(f"element {e.render()} does not match {s.spec.key_type}")
        if op.verb is Verb.DELETE:
            if e.key not in s.elements:
                raise NftNotFoundError(f"element {e.render()}: No such file or directory")
            del s.elements[e.key]
            continue
        if s.spec.is_map and e.data is None:
            raise NftSyntaxError(f"map {op.set_name} element {e.render()} has no data")
        if not s.spec.is_map and e.data is not None:
            raise NftSyntaxError(f"set {op.set_name} element {e.render()} has data")
        if s.spec.is_verdict_map != isinstance(e.data, Verdict):
            raise NftSyntaxError(f"element {e.render()} does not match {s.spec.data_type}")
        if (
            isinstance(e.data, Verdict)
            and e.data.chain is not None
            and e.data.chain not in table.chains
        ):
            raise NftNotFoundError(f"element jumps to {e.data.chain}: No such file or directory")
        old = s.elements.get(e.key)
        if old is not None and old.data != e.data:
            raise NftExistsError(f"element {e.render()}: File exists")
        if old is None and "interval" in s.spec.flags:
            clash = next((k for k in s.elements if _overlaps(k, e.key)), None)
            if clash is not None:
                raise NftExistsError(
                    f"element {e.render()} overlaps {' . '.join(clash)}: "
                    "conflicting intervals specified"
                )
        s.elements[e.key] = e


def _span(value: str) -> tuple[int, int] | None:
    """An interval element field as a closed integer range; None for a symbol (``tcp``)."""
    first, sep, last = value.partition("-")
    if sep and first.isdigit() and last.isdigit():
        return int(first), int(last)
    if value.isdigit():
        return int(value), int(value)
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None
    return int(net.network_address), int(net.broadcast_address)


def _overlaps(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether two elements of an interval set overlap in every field (nft refuses that)."""
    for x, y in zip(a, b, strict=True):
        sx, sy = _span(x), _span(y)
        if sx is None or sy is None:
            if x != y:
                return False
        elif sx[0] > sy[1] or sy[0] > sx[1]:
            return False
    return True
