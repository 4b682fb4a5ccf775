"""The desired nftables state of NetworkPolicy on one node, and the transactions that reach it.

Layout (one table ``ip svcnet-netpol``, this node's pods only). Two base chains on the forward
hook, after the Service proxy's DNAT (nat prerouting, priority -100), so traffic to a
ClusterIP, NodePort or LoadBalancer address is judged against the pod it was sent to:

- ``forward-egress`` (priority 0): replies of allowed connections pass (``ct state
  established,related``); a new connection from an egress-isolated local pod goes, through the
  verdict map ``egress-pods`` (pod address -> ``goto ns-eg-<namespace>``), to its namespace's
  chain, which jumps to the chain of every egress policy of that namespace and drops what none
  accepted. ``accept`` ends this base chain only: the packet goes on to
- ``forward-ingress`` (priority 1): the same for the destination, through ``ingress-pods`` and
  ``ns-in-<namespace>``.

A policy chain (``pol-in-<id>`` / ``pol-eg-<id>``) first returns for pods it does not select
(set ``targets-<digest>``), then has one accepting rule per rule of the policy (two when it has
both numeric and named ports): the peer address in the interval set ``peers-<digest>``
(selected pods' addresses and ipBlocks), the protocol and port in ``ports-<digest>`` (ranges)
or, for named ports, ``ip daddr . l4proto . dport`` in ``named-<digest>`` (resolved per
destination pod). Each set is named by a digest of what defines it (namespace and selectors,
ports), so policies repeating a selector share its set: nft 1.0.6 reads every set of the table
before each transaction, and its cost grows with the number of sets. Pods live only in set
elements, so the rule count grows with policies and rules, never with pods.

Traffic the node itself sends to its pods (probes) leaves through the output hook and traffic
from a pod to its node arrives through input: neither is filtered, as upstream requires the
node to always reach its pods. A pod's traffic to itself never leaves its namespace.

Every drop is logged first (:class:`FlowLog`): a rate-limited ``log group N`` whose prefix says
which side isolated the packet (``np:in:<namespace>``, ``np:eg:<namespace>``, or ``np:in:(closed)``
/ ``np:eg:(closed)`` for an address of the pod block no sync knows yet; ``:svc`` appended when
the packet was sent to a Service address), so that ``svcnet flows``
shows the drop and, from the compiled model, the policies that isolate the pod. Nothing is
logged for allowed packets (conntrack's events show those connections).

The desired state is a value (:class:`Desired`); a partial sync is the difference between the
state last applied and the new one, so a pod-label change is a few element changes; a full sync
deletes and rebuilds the table in one atomic transaction (there is never an open moment).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from svcnet.dataplane.nft import (
    ACCEPT,
    DROP,
    RETURN,
    BaseChain,
    ChainType,
    Cmp,
    Element,
    Field,
    Hook,
    Limit,
    Log,
    Rule,
    SetLookup,
    SetSpec,
    Stmt,
    Transaction,
    TransactionBuilder,
    VmapLookup,
    goto,
    jump,
    rule,
)
from svcnet.netpol.compiler import Compiled, CompiledPolicy, CompiledRule
from svcnet.netpol.model import Direction, PolicyKey

FAMILY = "ip"
TABLE = "svcnet-netpol"

FORWARD_EGRESS = "forward-egress"
FORWARD_INGRESS = "forward-ingress"
# The proxy DNATs in nat prerouting/output at -100 and rejects traffic to Services without
# endpoints in filter forward at -110; both come before these.
BASE_CHAINS: Mapping[str, BaseChain] = {
    FORWARD_EGRESS: BaseChain(ChainType.FILTER, Hook.FORWARD, 0),
    FORWARD_INGRESS: BaseChain(ChainType.FILTER, Hook.FORWARD, 1),
}
POD_MAPS: Mapping[Direction, str] = {
    Direction.EGRESS: "egress-pods",
    Direction.INGRESS: "ingress-pods",
}
LOCAL_PODS = "local-pods"
_SHORT = {Direction.INGRESS: "in", Direction.EGRESS: "eg"}
# The pod's own address, and the peer's, per direction.
_POD_FIELD = {Direction.INGRESS: Field.IP_DADDR, Direction.EGRESS: Field.IP_SADDR}
_PEER_FIELD = {Direction.INGRESS: Field.IP_SADDR, Direction.EGRESS: Field.IP_DADDR}

_POD_MAP_SPEC = SetSpec("ipv4_addr", "verdict")
_ADDRESSES = SetSpec("ipv4_addr")
_PEERS = SetSpec("ipv4_addr", flags=("interval",))
_PORTS = SetSpec("inet_proto . inet_service", flags=("interval",))
_NAMED = SetSpec("ipv4_addr . inet_proto . inet_service")
_ESTABLISHED = Cmp(Field.CT_STATE, "established,related")
# nft names are at most 255 bytes; a policy's namespace and name can be longer together.
_MAX_ID = 200


LOG_PREFIX = "np"
# The log prefix's namespace part for the fail-closed rule: no namespace name has parentheses.
CLOSED = "(closed)"


@dataclass(frozen=True, slots=True)
class FlowLog:
    """The log statements before each drop: NFLOG ``group``, at most ``rate`` packets a second
    (``burst`` at once) per log rule, so that a flood of dropped packets costs the node's agent
    a bounded amount of work; packets over the rate are dropped unlogged."""

    group: int = 11
    rate: int = 100
    burst: int = 50


FLOW_LOG = FlowLog()


DNAT_SUFFIX = "svc"


def log_prefix(direction: Direction, namespace: str, dnat: bool = False) -> str:
    """``np:in:<namespace>[:svc]``: the side that dropped, the namespace whose policies isolate
    the pod (:data:`CLOSED` for the fail-closed rule), and whether the packet was sent to a
    Service address (DNATed; the kernel's NFLOG may not carry the address itself: without
    ``CONFIG_NETFILTER_NETLINK_GLUE_CT`` it has no conntrack entry). At most 73 bytes, within
    nft's 127."""
    text = f"{LOG_PREFIX}:{_SHORT[direction]}:{namespace}"
    return f"{text}:{DNAT_SUFFIX}" if dnat else text


def parse_log_prefix(prefix: str) -> tuple[Direction, str, bool] | None:
    """The inverse of :func:`log_prefix`; None for a prefix this table did not write."""
    parts = prefix.split(":")
    by_short = {v: k for k, v in _SHORT.items()}
    if (
        len(parts) not in (3, 4)
        or parts[0] != LOG_PREFIX
        or parts[1] not in by_short
        or not parts[2]
        or parts[3:] not in ([], [DNAT_SUFFIX])
    ):
        return None
    return by_short[parts[1]], parts[2], len(parts) == 4


_DNAT = Cmp(Field.CT_STATUS, "dnat")
_NOT_DNAT = Cmp(Field.CT_STATUS, "dnat", negate=True)


def _logged_drop(
    flow_log: FlowLog | None, direction: Direction, namespace: str, *match: Stmt
) -> tuple[Rule, ...]:
    """``match`` dropped, logged first when ``flow_log`` is set. The log rules stand alone
    because a ``limit`` over its rate ends its rule, and the drop must not depend on it; two of
    them, to say in the prefix whether the packet was DNATed (each has its own rate)."""
    drop = rule(*match, DROP)
    if flow_log is None:
        return (drop,)
    limit = Limit(flow_log.rate, flow_log.burst)
    return (
        rule(*match, _NOT_DNAT, limit, Log(log_prefix(direction, namespace), flow_log.group)),
        rule(*match, _DNAT, limit, Log(log_prefix(direction, namespace, True), flow_log.group)),
        drop,
    )


@dataclass(frozen=True, slots=True)
class NetpolConfig:
    node_name: str
    # The node's pod block: an address in it that no compile has seen as a local pod is closed
    # both ways (see :func:`desired_state`); empty: no such rule (unit tests of policies alone).
    pod_cidr: str = ""
    family: str = FAMILY
    table: str = TABLE
    flow_log: FlowLog | None = FLOW_LOG  # None: drops are not logged


def namespace_chain(direction: Direction, namespace: str) -> str:
    return f"ns-{_SHORT[direction]}-{namespace}"


def policy_id(key: PolicyKey) -> str:
    """``namespace.name`` (a namespace has no dot), or a digest of it when too long."""
    text = f"{key.namespace}.{key.name}"
    if len(text) <= _MAX_ID:
        return text
    return f"{key.namespace}.{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def policy_chain(direction: Direction, key: PolicyKey) -> str:
    return f"pol-{_SHORT[direction]}-{policy_id(key)}"


@dataclass(frozen=True, slots=True)
class Desired:
    """The table's content: chains (hook, rules) and sets (spec, elements), by name."""

    chains: Mapping[str, tuple[BaseChain | None, tuple[Rule, ...]]] = field(default_factory=dict)
    sets: Mapping[str, tuple[SetSpec, frozenset[Element]]] = field(default_factory=dict)

    def rule_count(self) -> int:
        return sum(len(rules) for _, rules in self.chains.values())

    def element_count(self) -> int:
        return sum(len(els) for _, els in self.sets.values())


_Chains = dict[str, tuple[BaseChain | None, tuple[Rule, ...]]]
_Sets = dict[str, tuple[SetSpec, frozenset[Element]]]


def _policy_objects(pol: CompiledPolicy) -> tuple[_Chains, _Sets]:
    """The chain of one policy and the sets it looks up."""
    d = pol.direction
    sets: _Sets = {}
    targets = f"targets-{pol.selector_id}"
    sets[targets] = (_ADDRESSES, frozenset(Element((ip,)) for ip in pol.targets))
    rules: list[Rule] = [rule(SetLookup((_POD_FIELD[d],), targets, negate=True), RETURN)]
    for r in pol.rules:
        rules.extend(_rule_rules(pol, r, sets))
    return {policy_chain(d, pol.key): (None, tuple(rules))}, sets


class PolicyObjects:
    """Each policy's chain and sets, kept while its compiled form is the same object.

    :class:`~svcnet.netpol.compiler.IncrementalCompiler` hands back the very same
    :class:`CompiledPolicy` for a policy nothing touched, so a sync after one change builds
    the nft objects of that change only, and the unchanged sets stay the same values (which
    :func:`build_partial` then skips without comparing their elements).
    """

    def __init__(self) -> None:
        self._memo: dict[tuple[Direction, PolicyKey], tuple[CompiledPolicy, _Chains, _Sets]] = {}

    def of(self, pol: CompiledPolicy) -> tuple[_Chains, _Sets]:
        key = (pol.direction, pol.key)
        hit = self._memo.get(key)
        if hit is None or hit[0] is not pol:
            hit = (pol, *_policy_objects(pol))
            self._memo[key] = hit
        return hit[1], hit[2]

    def keep_only(self, compiled: Compiled) -> None:
        for key in [k for k in self._memo if k not in compiled.policies]:
            del self._memo[key]


def _rule_rules(
    pol: CompiledPolicy,
    r: CompiledRule,
    sets: _Sets,
) -> list[Rule]:
    d = pol.direction
    comment = f"{pol.key} {d.value}[{r.index}]"[:120]
    prefix: list[Stmt] = []
    if r.peers is not None:
        peers = f"peers-{r.peers_id}"
        sets[peers] = (_PEERS, frozenset(Element((e,)) for e in r.peers))
        prefix.append(SetLookup((_PEER_FIELD[d],), peers))
    if r.ports is None:
        return [rule(*prefix, ACCEPT, comment=comment)]
    out: list[Rule] = []
    if r.ports:
        ports = f"ports-{r.ports_id}"
        sets[ports] = (_PORTS, frozenset(Element(p.element()) for p in r.ports))
        out.append(
            rule(
                *prefix, SetLookup((Field.L4PROTO, Field.TH_DPORT), ports), ACCEPT, comment=comment
            )
        )
    if r.named:
        named = f"named-{r.named_id}"
        sets[named] = (_NAMED, frozenset(Element(t.element()) for t in r.named))
        key = (Field.IP_DADDR, Field.L4PROTO, Field.TH_DPORT)
        out.append(rule(*prefix, SetLookup(key, named), ACCEPT, comment=comment))
    return out


def desired_state(
    compiled: Compiled,
    pod_cidr: str = "",
    flow_log: FlowLog | None = None,
    memo: PolicyObjects | None = None,
) -> Desired:
    """The table that enforces ``compiled``. Policies selecting no local pod get nothing.

    With ``pod_cidr`` (the node's pod block), an address of that block that is not a local pod
    of ``compiled`` is dropped both ways: a pod whose sandbox was wired before a sync saw it
    is closed, whatever policies its namespace will turn out to have (fail-closed). The agent
    waits for the sync that knows a new pod before starting its containers, so a pod in an
    open namespace is open by the time it runs. With ``flow_log`` every drop is logged first.
    ``memo`` keeps each policy's objects between calls (the sync loop's).
    """
    if memo is None:
        memo = PolicyObjects()
    memo.keep_only(compiled)
    chains: _Chains = {}
    sets: _Sets = {}
    if pod_cidr:
        sets[LOCAL_PODS] = (_ADDRESSES, frozenset(Element((ip,)) for ip in compiled.local))
    for d in Direction:
        base = FORWARD_EGRESS if d is Direction.EGRESS else FORWARD_INGRESS
        closed: tuple[Rule, ...] = ()
        if pod_cidr:
            pod = _POD_FIELD[d]
            closed = _logged_drop(
                flow_log,
                d,
                CLOSED,
                Cmp(pod, pod_cidr),
                SetLookup((pod,), LOCAL_PODS, negate=True),
            )
        chains[base] = (
            BASE_CHAINS[base],
            (
                rule(_ESTABLISHED, ACCEPT),
                *closed,
                rule(VmapLookup((_POD_FIELD[d],), POD_MAPS[d])),
            ),
        )
        isolated = compiled.isolated[d]
        sets[POD_MAPS[d]] = (
            _POD_MAP_SPEC,
            frozenset(Element((ip,), goto(namespace_chain(d, ns))) for ip, ns in isolated.items()),
        )
        for ns in sorted(set(isolated.values())):
            jumps: list[Rule] = []
            for key in compiled.by_namespace.get((d, ns), ()):
                pol = compiled.policies[(d, key)]
                if not pol.targets:
                    continue
                pol_chains, pol_sets = memo.of(pol)
                chains.update(pol_chains)
                sets.update(pol_sets)
                jumps.append(rule(jump(policy_chain(d, key))))
            drop = _logged_drop(flow_log, d, ns)
            chains[namespace_chain(d, ns)] = (None, (*jumps, *drop))
    return Desired(chains, sets)


# --- transactions ------------------------------------------------------------------------------


def build_full(cfg: NetpolConfig, desired: Desired) -> Transaction:
    """Delete and rebuild the table in one transaction: atomic, so never an open moment."""
    b = TransactionBuilder(cfg.family, cfg.table)
    b.add_table()  # nft 1.0.6 has no "destroy": adding first makes the delete always valid
    b.delete_table()
    b.add_table()
    for name, (base, _) in sorted(desired.chains.items()):
        b.add_chain(name, base)
    for name, (spec, _) in sorted(desired.sets.items()):
        b.add_set(name, spec)
    for name, (_, rules) in sorted(desired.chains.items()):
        for r in rules:
            b.add_rule(name, r)
    for name, (_, elements) in sorted(desired.sets.items()):
        b.add_elements(name, sorted(elements))
    return b.build()


def build_partial(cfg: NetpolConfig, old: Desired, new: Desired) -> Transaction:
    """What turns the table from ``old`` (as last applied) into ``new``; empty when equal.

    Order matters to nft: chains exist before rules jump to them and before verdict-map
    elements name them; an element goes before the chain it names is deleted; a chain's rules
    go (flushed) before the sets they look up are deleted.
    """
    b = TransactionBuilder(cfg.family, cfg.table)
    added_chains = sorted(set(new.chains) - set(old.chains))
    gone_chains = sorted(set(old.chains) - set(new.chains))
    changed_chains = sorted(
        n for n in set(new.chains) & set(old.chains) if new.chains[n] != old.chains[n]
    )
    added_sets = sorted(set(new.sets) - set(old.sets))
    gone_sets = sorted(set(old.sets) - set(new.sets))
    for name in added_chains:
        b.add_chain(name, new.chains[name][0])
    for name in added_sets:
        b.add_set(name, new.sets[name][0])
    additions: list[tuple[str, Iterable[Element]]] = []
    for name in sorted(set(new.sets) & set(old.sets)):
        before, after = old.sets[name][1], new.sets[name][1]
        if before is not after and before != after:
            b.delete_elements(name, sorted(before - after))
            additions.append((name, sorted(after - before)))
    for name in changed_chains:
        b.flush_chain(name)
    for name in [*changed_chains, *added_chains]:
        for r in new.chains[name][1]:
            b.add_rule(name, r)
    for name in added_sets:
        b.add_elements(name, sorted(new.sets[name][1]))
    for name, elements in additions:
        b.add_elements(name, elements)
    for name in gone_chains:
        b.flush_chain(name)
    for name in gone_chains:
        b.delete_chain(name)
    for name in gone_sets:
        b.delete_set(name)
    return b.build()


def expected_chains(desired: Desired) -> set[str]:
    return set(desired.chains)


def build_cleanup(cfg: NetpolConfig) -> Transaction:
    """Remove the table, whether or not it exists."""
    b = TransactionBuilder(cfg.family, cfg.table)
    b.add_table()
    b.delete_table()
    return b.build()
