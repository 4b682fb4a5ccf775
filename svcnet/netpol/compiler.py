"""NetworkPolicy compiled for one node: which local pods are isolated, and what each policy allows.

The intermediate form between the API objects and nftables, and the one place where the API's
semantics live:

- a pod is isolated for a direction when a policy of its namespace selects it and has that
  policy type; an isolated pod accepts the union of what every policy selecting it allows;
- a rule allows a peer (one of its ``from``/``to`` entries; none means every peer) on a port
  (one of its ``ports``; none means every port); an empty rule list allows nothing;
- a peer's podSelector and namespaceSelector are ANDed; without a namespaceSelector the peer
  is in the policy's own namespace; an ipBlock is its cidr minus its excepts, matched by
  address (pod addresses included, as upstream's e2e tests expect);
- a named port is resolved against the containerPorts of the destination pod, per pod: for
  ingress the isolated pod itself, for egress each peer pod.

Everything is kept as addresses, so :mod:`svcnet.netpol.rules` turns it into nft sets, and
:func:`judge` answers "is this connection allowed, by which rule, or isolated by what" from the
same value the data plane runs.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from svcnet.api.selectors import LabelSelector
from svcnet.netpol.model import (
    Direction,
    NamespaceInfo,
    Peer,
    PodInfo,
    PolicyInfo,
    PolicyKey,
    PolicyRule,
    Protocol,
)

MAX_PORT = 65535


@dataclass(frozen=True, slots=True)
class PortRange:
    protocol: Protocol
    first: int
    last: int

    def element(self) -> tuple[str, str]:
        ports = str(self.first) if self.first == self.last else f"{self.first}-{self.last}"
        return (self.protocol.value, ports)

    def contains(self, protocol: Protocol, port: int) -> bool:
        return protocol is self.protocol and self.first <= port <= self.last


@dataclass(frozen=True, slots=True)
class NamedTarget:
    """A named port resolved on one pod: traffic to ``ip`` on ``protocol``/``port``."""

    ip: str
    protocol: Protocol
    port: int

    def element(self) -> tuple[str, str, str]:
        return (self.ip, self.protocol.value, str(self.port))


@dataclass(frozen=True, slots=True)
class CompiledRule:
    index: int  # the rule's position in the policy's ingress/egress list
    # Disjoint addresses and networks the peer may have (nft interval elements); None: any.
    peers: tuple[str, ...] | None
    ports: tuple[PortRange, ...] | None  # numeric ports; None: every port
    named: tuple[NamedTarget, ...]  # named ports, resolved per destination pod
    # Digests of what defines ``peers``, ``ports`` and ``named`` (not of their content): rules
    # with the same definition share one nft set, whose name stays while pods come and go.
    peers_id: str = ""
    ports_id: str = ""
    named_id: str = ""

    def allows(self, peer_ip: str, dst_ip: str, protocol: Protocol, port: int) -> bool:
        if self.peers is not None and not _in_elements(peer_ip, self.peers):
            return False
        if self.ports is None:
            return True
        if any(r.contains(protocol, port) for r in self.ports):
            return True
        return NamedTarget(dst_ip, protocol, port) in self.named


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    key: PolicyKey
    direction: Direction
    targets: frozenset[str]  # addresses of this node's pods the policy selects
    rules: tuple[CompiledRule, ...]
    selector_id: str = ""  # digest of (namespace, podSelector): see CompiledRule.peers_id


@dataclass(frozen=True, slots=True)
class Compiled:
    """What one node enforces. Keys of ``isolated`` are local pod addresses."""

    node: str
    isolated: Mapping[Direction, Mapping[str, str]]  # direction -> pod ip -> its namespace
    policies: Mapping[tuple[Direction, PolicyKey], CompiledPolicy]
    # (direction, namespace) -> the policies of that namespace with that type, sorted
    by_namespace: Mapping[tuple[Direction, str], tuple[PolicyKey, ...]]
    # Every local pod address the compile saw: the node closes any other address of its pod
    # block (a pod wired before its rules exist), see :func:`svcnet.netpol.rules.desired_state`.
    local: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Judgement:
    """One direction's verdict on a connection, with what decided it."""

    allowed: bool
    isolated_by: tuple[PolicyKey, ...]  # empty: the pod is not isolated in this direction
    allowed_by: tuple[PolicyKey, int] | None  # the first (policy, rule index) allowing it


def _in_elements(ip: str, elements: Iterable[str]) -> bool:
    addr = ipaddress.IPv4Address(ip)
    return any(addr in ipaddress.IPv4Network(e) if "/" in e else ip == e for e in elements)


def judge(
    compiled: Compiled,
    direction: Direction,
    pod_ip: str,
    peer_ip: str,
    protocol: Protocol,
    port: int,
) -> Judgement:
    """The verdict of ``pod_ip``'s policies (a local pod) for traffic with ``peer_ip``.

    For ingress the pod is the destination, for egress the source; ``port`` is the
    destination port after DNAT.
    """
    ns = compiled.isolated[direction].get(pod_ip)
    if ns is None:
        return Judgement(True, (), None)
    dst = pod_ip if direction is Direction.INGRESS else peer_ip
    isolating: list[PolicyKey] = []
    for key in compiled.by_namespace.get((direction, ns), ()):
        pol = compiled.policies[(direction, key)]
        if pod_ip not in pol.targets:
            continue
        isolating.append(key)
        for r in pol.rules:
            if r.allows(peer_ip, dst, protocol, port):
                return Judgement(True, (key,), (key, r.index))
    return Judgement(False, tuple(isolating), None)


# --- compiling ---------------------------------------------------------------------------------


class _Index:
    """Pods by namespace and namespaces by name, built once per compile."""

    def __init__(self, pods: Iterable[PodInfo], namespaces: Iterable[NamespaceInfo]) -> None:
        self.pods = tuple(pods)
        self.by_ns: dict[str, list[PodInfo]] = {}
        for p in self.pods:
            self.by_ns.setdefault(p.key.namespace, []).append(p)
        self.ns_labels = {n.name: dict(n.labels) for n in namespaces}
        self.labels = {p.key: p.label_map for p in self.pods}

        # Policies repeat selectors (every default deny is "{}"): each is matched once.
        self._ns_memo: dict[LabelSelector, tuple[str, ...]] = {}
        self._pods_memo: dict[tuple[LabelSelector | None, str], tuple[PodInfo, ...]] = {}

    def namespaces(self, sel: LabelSelector) -> tuple[str, ...]:
        out = self._ns_memo.get(sel)
        if out is None:
            out = tuple(n for n, labels in self.ns_labels.items() if sel.matches(labels))
            self._ns_memo[sel] = out
        return out

    def pods_in(self, sel: LabelSelector | None, ns: str) -> tuple[PodInfo, ...]:
        """Pods of ``ns`` matching ``sel`` (None: all of them)."""
        out = self._pods_memo.get((sel, ns))
        if out is None:
            pods = self.by_ns.get(ns, ())
            out = tuple(p for p in pods if sel is None or sel.matches(self.labels[p.key]))
            self._pods_memo[(sel, ns)] = out
        return out

    def peer_pods(self, peer: Peer, policy_ns: str) -> list[PodInfo]:
        if peer.namespace_selector is None:
            namespaces: tuple[str, ...] = (policy_ns,)
        else:
            namespaces = self.namespaces(peer.namespace_selector)
        out: list[PodInfo] = []
        for ns in namespaces:
            out.extend(self.pods_in(peer.pod_selector, ns))
        return out


def _port_ranges(rule: PolicyRule) -> tuple[PortRange, ...]:
    """The rule's numeric ports, overlapping ranges merged (an nft interval set refuses them)."""
    ranges = sorted(
        (
            PortRange(p.protocol, p.port, p.end or p.port)
            if p.port
            else PortRange(p.protocol, 0, MAX_PORT)
            for p in rule.ports
            if p.name is None
        ),
        key=lambda r: (r.protocol.value, r.first, r.last),
    )
    merged: list[PortRange] = []
    for r in ranges:
        last = merged[-1] if merged else None
        if last is not None and last.protocol is r.protocol and r.first <= last.last + 1:
            merged[-1] = PortRange(r.protocol, last.first, max(last.last, r.last))
        else:
            merged.append(r)
    return tuple(merged)


def _peer_elements(
    peers: Iterable[Peer], pods: Iterable[PodInfo]
) -> tuple[tuple[str, ...], tuple[ipaddress.IPv4Network, ...]]:
    """Disjoint interval elements: the blocks' networks, and pod addresses outside them."""
    nets: list[ipaddress.IPv4Network] = []
    for peer in peers:
        if peer.ip_block is not None:
            nets.extend(peer.ip_block.networks())
    blocks = tuple(ipaddress.collapse_addresses(nets))
    out = {str(n.network_address) if n.prefixlen == 32 else str(n) for n in blocks}
    for p in pods:
        if not blocks or not any(ipaddress.IPv4Address(p.ip) in n for n in blocks):
            out.add(p.ip)
    return tuple(sorted(out)), blocks


def digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def _selector_text(sel: LabelSelector | None) -> str:
    if sel is None:
        return "-"
    return "nothing" if sel.selects_nothing else f"{{{sel}}}"


def _peer_text(peer: Peer) -> str:
    block = peer.ip_block
    cidrs = f"{block.cidr} except {','.join(block.excepts)}" if block else "-"
    return f"{_selector_text(peer.pod_selector)} {_selector_text(peer.namespace_selector)} {cidrs}"


def _compile_rule(
    index: int,
    rule: PolicyRule,
    direction: Direction,
    policy_ns: str,
    targets: list[PodInfo],
    selector_id: str,
    idx: _Index,
) -> CompiledRule:
    peers: tuple[str, ...] | None = None
    peer_pods: list[PodInfo] = []
    blocks: tuple[ipaddress.IPv4Network, ...] = ()
    if rule.peers:
        seen: dict[str, PodInfo] = {}
        for peer in rule.peers:
            if peer.ip_block is None:
                for p in idx.peer_pods(peer, policy_ns):
                    seen[p.ip] = p
        peer_pods = list(seen.values())
        peers, blocks = _peer_elements(rule.peers, peer_pods)
    peers_id = digest(policy_ns, *(_peer_text(p) for p in rule.peers)) if rule.peers else ""
    if not rule.ports:
        return CompiledRule(index, peers, None, (), peers_id)
    named_specs = [p for p in rule.ports if p.name is not None]
    named: set[NamedTarget] = set()
    if named_specs:
        if direction is Direction.INGRESS:
            destinations: Iterable[PodInfo] = targets
        elif peers is None:
            destinations = idx.pods
        else:
            # Peer pods, and pods whose address lies in one of the rule's blocks.
            by_ip = {p.ip: p for p in peer_pods}
            for p in idx.pods:
                if p.ip not in by_ip and any(ipaddress.IPv4Address(p.ip) in n for n in blocks):
                    by_ip[p.ip] = p
            destinations = by_ip.values()
        for pod in destinations:
            for spec in named_specs:
                assert spec.name is not None
                port = pod.resolve(spec.name, spec.protocol)
                if port is not None:
                    named.add(NamedTarget(pod.ip, spec.protocol, port))
    ranges = _port_ranges(rule)
    ports_id = digest(*(" ".join(r.element()) for r in ranges))
    destinations_id = selector_id if direction is Direction.INGRESS else peers_id
    named_id = digest(
        direction.value, destinations_id, *(f"{p.name}/{p.protocol.value}" for p in named_specs)
    )
    return CompiledRule(
        index,
        peers,
        ranges,
        tuple(sorted(named, key=NamedTarget.element)),
        peers_id,
        ports_id,
        named_id,
    )


def compile_policy(pol: PolicyInfo, node: str, idx: _Index) -> dict[Direction, CompiledPolicy]:
    """One policy for ``node``'s pods, per policy type it has."""
    ns = pol.key.namespace
    local = [p for p in idx.pods_in(pol.pod_selector, ns) if p.node == node]
    selector_id = digest(ns, _selector_text(pol.pod_selector))
    out: dict[Direction, CompiledPolicy] = {}
    for direction in Direction:
        rules = pol.rules(direction)
        if rules is None:
            continue
        out[direction] = CompiledPolicy(
            pol.key,
            direction,
            frozenset(p.ip for p in local),
            tuple(
                _compile_rule(i, r, direction, ns, local, selector_id, idx)
                for i, r in enumerate(rules)
            ),
            selector_id,
        )
    return out


def _assemble(
    node: str,
    per_policy: Iterable[Mapping[Direction, CompiledPolicy]],
    local: frozenset[str],
) -> Compiled:
    """The node's model from its policies' compiled forms (in policy key order)."""
    isolated: dict[Direction, dict[str, str]] = {d: {} for d in Direction}
    compiled: dict[tuple[Direction, PolicyKey], CompiledPolicy] = {}
    by_ns: dict[tuple[Direction, str], list[PolicyKey]] = {}
    for forms in per_policy:
        for direction, cp in forms.items():
            ns = cp.key.namespace
            by_ns.setdefault((direction, ns), []).append(cp.key)
            isolated[direction].update(dict.fromkeys(cp.targets, ns))
            compiled[(direction, cp.key)] = cp
    return Compiled(node, isolated, compiled, {k: tuple(v) for k, v in by_ns.items()}, local)


def _local(node: str, pods: Iterable[PodInfo]) -> frozenset[str]:
    return frozenset(p.ip for p in pods if p.node == node)


def compile_policies(
    node: str,
    policies: Iterable[PolicyInfo],
    pods: Iterable[PodInfo],
    namespaces: Iterable[NamespaceInfo],
) -> Compiled:
    """What ``node`` enforces for its pods, from the cluster's policies, pods and namespaces."""
    idx = _Index(pods, namespaces)
    ordered = sorted(policies, key=lambda p: p.key)
    return _assemble(node, (compile_policy(p, node, idx) for p in ordered), _local(node, idx.pods))


# --- compiling incrementally -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Reach:
    """What, besides the policy itself, a policy's compiled form depends on."""

    # Selectors of its peers' namespaceSelectors: a pod of a namespace they match is a peer.
    namespace_selectors: frozenset[LabelSelector]
    # An egress rule with named ports and no peers or an ipBlock: its destinations are pods
    # of any namespace (resolved per pod), so every pod change may touch it.
    any_namespace: bool


def _reach(pol: PolicyInfo) -> _Reach:
    selectors: set[LabelSelector] = set()
    any_namespace = False
    for direction in Direction:
        for r in pol.rules(direction) or ():
            for peer in r.peers:
                if peer.namespace_selector is not None:
                    selectors.add(peer.namespace_selector)
            named = any(p.name is not None for p in r.ports)
            wide = not r.peers or any(peer.ip_block is not None for peer in r.peers)
            if direction is Direction.EGRESS and named and wide:
                any_namespace = True
    return _Reach(frozenset(selectors), any_namespace)


class IncrementalCompiler:
    """:func:`compile_policies` for one node, recompiling only the policies a change can touch.

    A sync after one policy is created must not recompile the other 999 (each walks the pods
    its selectors match): the compiled form of every policy is kept, with what it depends on,
    and the changes recorded since the last compile (:meth:`touch_*`) mark the policies to
    redo. A policy depends on itself, on the pods of its own namespace (targets, podSelector
    peers, named ports of its targets), on the pods of the namespaces its namespaceSelectors
    match and on namespace labels, and, for an egress rule with named ports and no selector,
    on every pod. The result equals :func:`compile_policies` on the same objects (a unit test
    checks it after random changes).
    """

    def __init__(self, node: str) -> None:
        self.node = node
        self._forms: dict[PolicyKey, dict[Direction, CompiledPolicy]] = {}
        self._reach: dict[PolicyKey, _Reach] = {}
        self._policies: set[PolicyKey] = set()  # policies changed since the last compile
        self._pod_namespaces: set[str] = set()  # namespaces where a pod changed
        self._namespaces = False  # a namespace changed (labels, creation, deletion)
        self._local_stale = True
        self._local: frozenset[str] = frozenset()

    def touch_policy(self, key: PolicyKey) -> None:
        self._policies.add(key)

    def touch_pod(self, namespace: str) -> None:
        self._pod_namespaces.add(namespace)
        self._local_stale = True

    def touch_namespace(self) -> None:
        self._namespaces = True

    def _dirty(
        self, policies: Mapping[PolicyKey, PolicyInfo], namespaces: Mapping[str, NamespaceInfo]
    ) -> set[PolicyKey]:
        dirty = {k for k in self._policies if k in policies}
        dirty.update(k for k in policies if k not in self._forms)
        if not self._pod_namespaces and not self._namespaces:
            return dirty
        labels = {
            ns: dict(namespaces[ns].labels) for ns in self._pod_namespaces if ns in namespaces
        }
        for key, reach in self._reach.items():
            if key in dirty or key not in policies:
                continue
            if (
                key.namespace in self._pod_namespaces
                or (reach.any_namespace and self._pod_namespaces)
                or (self._namespaces and reach.namespace_selectors)
                or any(s.matches(lb) for s in reach.namespace_selectors for lb in labels.values())
            ):
                dirty.add(key)
        return dirty

    def compile(
        self,
        policies: Mapping[PolicyKey, PolicyInfo],
        pods: Iterable[PodInfo],
        namespaces: Mapping[str, NamespaceInfo],
    ) -> Compiled:
        dirty = self._dirty(policies, namespaces)
        for key in [k for k in self._forms if k not in policies]:
            del self._forms[key], self._reach[key]
        if dirty or self._local_stale:
            idx = _Index(pods, namespaces.values())
            for key in dirty:
                pol = policies[key]
                self._forms[key] = compile_policy(pol, self.node, idx)
                self._reach[key] = _reach(pol)
            if self._local_stale:
                self._local = _local(self.node, idx.pods)
        self._policies.clear()
        self._pod_namespaces.clear()
        self._namespaces = self._local_stale = False
        return _assemble(self.node, (self._forms[k] for k in sorted(policies)), self._local)
