"""The desired nftables state of the Service proxy, as a pure function of Services and endpoints.

Layout (one table ``ip svcnet-proxy``): a constant set of chains and named maps; Services and
endpoints live only as map elements. kube-proxy's own nftables layout (an anonymous verdict map
per Service and a chain per endpoint) took 85 s to load 10,000 Services x 10 endpoints with
nft 1.0.6, because the kernel's cost of adding a set grows with the number of sets and ``nft``
reads every existing object before each transaction. Here the object count does not depend on
the number of Services, so a full load is a few large ``add element`` commands and a one-Service
change touches a handful of elements.

Packet path of a new connection (NAT only sees the first packet; conntrack does the rest):

``nat-prerouting``/``nat-output`` -> ``services``: ``ip daddr . l4proto . dport`` in
``service-ips`` (ClusterIPs, externalIPs, LoadBalancer IPs) or, on a local address,
``l4proto . dport`` in ``service-nodeports`` (so a NodePort answers on every local address)
-> ``goto <kind>-<proto>-<N>[-affinity]``, a chain shared by every entry of that kind,
protocol, endpoint count and session affinity, which (1) marks for masquerading as the kind
requires, (2) for ports with session affinity only, sends a client back to its endpoint
(dynamic map ``affinity``; a miss falls through), (3) does ``dnat to addr . port . numgen
random mod N map @endpoints-<proto>``. Kinds:

- ``svc`` (ClusterIP): masquerade when the source is not a pod (off-cluster or the node);
- ``ext`` (externalIP / LoadBalancer IP, Cluster policy) and ``np`` (NodePort): masquerade
  always, so that replies come back through this node;
- ``lep`` / ``np-lep`` (Local policy, traffic from outside): this node's endpoints only, no
  masquerade: the client's address is preserved.

A Local-policy entry goes first to ``external-local`` / ``nodeport-local``, which send pods and
the node itself to every endpoint (through ``cluster-counts`` / ``nodeport-counts``, as
kube-proxy short-circuits them) and the rest to local endpoints (``local-counts`` /
``nodeport-local-counts``). Only the (kind, protocol, N, affinity) combinations in use get a
chain: one at 10,000 Services with 10 endpoints each. Each endpoint map exists once per
protocol (see :func:`endpoint_map`), so its key needs no protocol field.

No usable endpoint: the entry is in ``no-endpoint-services``/``no-endpoint-nodeports`` instead,
checked for new connections in filter input/forward/output (priority -110; a Service
without endpoints was not DNATed, so it is still addressed to its own IP there; NodePorts only
in input, as they are addressed to this node) -> ``reject``
(TCP reset, ICMP port unreachable otherwise), or ``drop`` when endpoints exist but the traffic
policy is Local and none is on this node (kube-proxy's behaviour).

Session affinity is recorded after DNAT (filter, priority -99), keyed by (client . original
address . proto . original port), for entries listed in ``affinity-ports``; only connections
whose selector chain set ``AFFINITY_BIT`` in the packet mark go there. Hairpin (a pod
reaching itself through a Service) is caught in ``masquerading`` by the pair set ``hairpin``
(endpoint . endpoint) of this node's endpoints.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from svcnet.api.ranges import DEFAULT_CLUSTER_CIDR
from svcnet.dataplane.nft import (
    DROP,
    RETURN,
    BaseChain,
    ChainType,
    Cmp,
    DnatMap,
    Element,
    ElementData,
    Field,
    Hook,
    KeyPart,
    MapUpdate,
    MarkSet,
    MarkTest,
    Masquerade,
    Numgen,
    Reject,
    RejectKind,
    Rule,
    SetLookup,
    SetSpec,
    Transaction,
    TransactionBuilder,
    Verdict,
    VmapLookup,
    goto,
    jump,
    rule,
)
from svcnet.proxy.model import (
    DEFAULT_AFFINITY_TIMEOUT,
    Endpoint,
    Protocol,
    ServiceKey,
    ServicePort,
    usable_endpoints,
)
from svcnet.util.gctune import paused_gc

FAMILY = "ip"
TABLE = "svcnet-proxy"
MASQUERADE_BIT = 0x4000
# Set on the first packet of a connection to a Service port with session affinity, in the
# selector chain, so that only those connections enter affinity-check after DNAT.
AFFINITY_BIT = 0x8000

# Map names.
SERVICE_IPS = "service-ips"
SERVICE_NODEPORTS = "service-nodeports"
CLUSTER_COUNTS = "cluster-counts"
LOCAL_COUNTS = "local-counts"
NODEPORT_COUNTS = "nodeport-counts"
NODEPORT_LOCAL_COUNTS = "nodeport-local-counts"
# Endpoint maps, one per (kind of entry, protocol): "<base>-<proto>", see endpoint_map().
ENDPOINTS = "endpoints"
LOCAL_ENDPOINTS = "local-endpoints"
NODEPORT_ENDPOINTS = "nodeport-endpoints"
NODEPORT_LOCAL_ENDPOINTS = "nodeport-local-endpoints"
NO_ENDPOINT_SERVICES = "no-endpoint-services"
NO_ENDPOINT_NODEPORTS = "no-endpoint-nodeports"
AFFINITY = "affinity"
AFFINITY_PORTS = "affinity-ports"
HAIRPIN = "hairpin"
FIREWALL_IPS = "firewall-ips"
FIREWALL_ALLOW = "firewall-allow"

# Chain names.
SERVICES = "services"
EXTERNAL_LOCAL = "external-local"
NODEPORT_LOCAL = "nodeport-local"
MARK_FOR_MASQUERADE = "mark-for-masquerade"
MASQUERADING = "masquerading"
ENDPOINTS_CHECK = "endpoints-check"
NODEPORT_ENDPOINTS_CHECK = "nodeport-endpoints-check"
REJECT_CHAIN = "reject-chain"
FIREWALL_CHECK = "firewall-check"
AFFINITY_CHECK = "affinity-check"

_ADDR_PORT = (Field.IP_DADDR, Field.L4PROTO, Field.TH_DPORT)
_PROTO_PORT = (Field.L4PROTO, Field.TH_DPORT)
_AFFINITY_KEY = (Field.IP_SADDR, Field.IP_DADDR, Field.L4PROTO, Field.TH_DPORT)
_EP = "ipv4_addr . inet_service"

_ADDR_DPORT = (Field.IP_DADDR, Field.TH_DPORT)
_DPORT = (Field.TH_DPORT,)


class _Masq:
    NONE = 0  # source kept
    NOT_PODS = 1  # ClusterIP: masquerade what does not come from a pod
    ALWAYS = 2  # Cluster-policy external traffic: replies must come back through this node


# Endpoint-selection chain kinds: kind -> (endpoint map base name, its key, masquerading). A
# chain "<kind>-<proto>-<N>" (or "<kind>-<proto>-<N>-affinity" for ports with session
# affinity) exists for each (kind, protocol, endpoint count, affinity) in use; a Service
# entry's verdict jumps straight to it.
_KINDS: dict[str, tuple[str, tuple[Field, ...], int]] = {
    "svc": (ENDPOINTS, _ADDR_DPORT, _Masq.NOT_PODS),
    "ext": (ENDPOINTS, _ADDR_DPORT, _Masq.ALWAYS),
    "lep": (LOCAL_ENDPOINTS, _ADDR_DPORT, _Masq.NONE),
    "np": (NODEPORT_ENDPOINTS, _DPORT, _Masq.ALWAYS),
    "np-lep": (NODEPORT_LOCAL_ENDPOINTS, _DPORT, _Masq.NONE),
}
_AFFINITY_SUFFIX = "-affinity"


def endpoint_map(base: str, proto: Protocol) -> str:
    """The endpoint map of one protocol.

    One map per protocol, because nft 1.0.6 evaluates a map's ``typeof`` data expression
    (``ip daddr . tcp dport``) in the protocol context of the first rule of a transaction that
    references it: a shared map typed "tcp dport" refused a transaction whose first user was a
    new ``svc-udp-N`` chain ("conflicting protocols specified: udp vs. tcp"), which happens in a
    partial sync adding the first UDP Service with N endpoints. With a map per protocol every
    user of a map has the map's protocol.
    """
    return f"{base}-{proto.value}"


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    node_name: str
    cluster_cidr: str = DEFAULT_CLUSTER_CIDR
    # Addresses of this node that NodePorts answer on are found by ``fib daddr type local``;
    # these are only needed to record session affinity for NodePorts (the key needs the address).
    node_ips: tuple[str, ...] = ()
    masquerade_bit: int = MASQUERADE_BIT
    family: str = FAMILY
    table: str = TABLE

    def __post_init__(self) -> None:
        ipaddress.ip_network(self.cluster_cidr)


def _sets() -> dict[str, SetSpec]:
    big = 1 << 20
    return {
        SERVICE_IPS: SetSpec("ipv4_addr . inet_proto . inet_service", "verdict"),
        SERVICE_NODEPORTS: SetSpec("inet_proto . inet_service", "verdict"),
        CLUSTER_COUNTS: SetSpec("ipv4_addr . inet_proto . inet_service", "verdict"),
        LOCAL_COUNTS: SetSpec("ipv4_addr . inet_proto . inet_service", "verdict"),
        NODEPORT_COUNTS: SetSpec("inet_proto . inet_service", "verdict"),
        NODEPORT_LOCAL_COUNTS: SetSpec("inet_proto . inet_service", "verdict"),
        # "typeof" because nft 1.0.6 has no fixed-size type that matches numgen's integer. The
        # data names the map's transport protocol ("udp dport"): with "th dport", nft 1.0.6
        # fails ("conflicting protocols specified: ip vs. th") on any later rule referencing
        # the map once it exists in the kernel. None is sized: the kernel allocates a sized
        # map's hash table when it is created (each 10^6-slot table cost ~0.05-0.1 s of system
        # time on every full sync); unsized, a map starts small and grows with its elements
        # (10,000 Services x 10 endpoints: full sync 2.9 s unsized vs 3.3 s with the four TCP
        # maps sized, alternated on this machine).
        **{
            endpoint_map(base, proto): SetSpec(
                key,
                f"ip daddr . {proto.value} dport",
                typeof=True,
            )
            for base, key in (
                (ENDPOINTS, "ip daddr . th dport . numgen random mod 1"),
                (LOCAL_ENDPOINTS, "ip daddr . th dport . numgen random mod 1"),
                (NODEPORT_ENDPOINTS, "th dport . numgen random mod 1"),
                (NODEPORT_LOCAL_ENDPOINTS, "th dport . numgen random mod 1"),
            )
            for proto in Protocol
        },
        NO_ENDPOINT_SERVICES: SetSpec("ipv4_addr . inet_proto . inet_service", "verdict"),
        NO_ENDPOINT_NODEPORTS: SetSpec("inet_proto . inet_service", "verdict"),
        AFFINITY_PORTS: SetSpec("ipv4_addr . inet_proto . inet_service", "verdict"),
        AFFINITY: SetSpec(
            "ipv4_addr . ipv4_addr . inet_proto . inet_service",
            _EP,
            flags=("dynamic", "timeout"),
            timeout_seconds=DEFAULT_AFFINITY_TIMEOUT,
            size=big,
        ),
        HAIRPIN: SetSpec("ipv4_addr . ipv4_addr"),
        # loadBalancerSourceRanges: the LoadBalancer entries that have some, and for each the
        # allowed sources (the last field a prefix).
        FIREWALL_IPS: SetSpec("ipv4_addr . inet_proto . inet_service"),
        FIREWALL_ALLOW: SetSpec(
            "ipv4_addr . inet_proto . inet_service . ipv4_addr", flags=("interval",)
        ),
    }


_STATIC_SETS = _sets()

_BASE_CHAINS: dict[str, BaseChain] = {
    "nat-prerouting": BaseChain(ChainType.NAT, Hook.PREROUTING, -100),
    "nat-output": BaseChain(ChainType.NAT, Hook.OUTPUT, -100),
    "nat-postrouting": BaseChain(ChainType.NAT, Hook.POSTROUTING, 100),
    # Before DNAT (-100): a Service without endpoints is still addressed to its own IP here.
    "filter-input": BaseChain(ChainType.FILTER, Hook.INPUT, -110),
    "filter-forward": BaseChain(ChainType.FILTER, Hook.FORWARD, -110),
    "filter-output": BaseChain(ChainType.FILTER, Hook.OUTPUT, -110),
    # Right after DNAT: conntrack knows the original destination and the chosen endpoint.
    "affinity-prerouting": BaseChain(ChainType.FILTER, Hook.PREROUTING, -99),
    "affinity-output": BaseChain(ChainType.FILTER, Hook.OUTPUT, -99),
}


def affinity_record_chain(timeout: int) -> str:
    return f"affinity-record-{timeout}"


def _static_chains(cfg: ProxyConfig) -> dict[str, list[Rule]]:
    pods = cfg.cluster_cidr
    ct_new = Cmp(Field.CT_STATE, "new")
    not_loopback = Cmp(Field.IP_DADDR, "127.0.0.0/8", negate=True)
    chains: dict[str, list[Rule]] = {
        "nat-prerouting": [rule(jump(SERVICES))],
        "nat-output": [rule(jump(SERVICES))],
        "nat-postrouting": [rule(jump(MASQUERADING))],
        # A NodePort is addressed to this node, so it is only seen in input (locally made
        # traffic to a local address passes output and then input): forward and output check
        # Service addresses only, without a fib lookup per new connection (kube-proxy's
        # split of service-endpoints-check and nodeport-endpoints-check).
        "filter-input": [
            rule(ct_new, jump(ENDPOINTS_CHECK)),
            rule(ct_new, jump(NODEPORT_ENDPOINTS_CHECK)),
        ],
        "filter-forward": [rule(ct_new, jump(ENDPOINTS_CHECK))],
        "filter-output": [rule(ct_new, jump(ENDPOINTS_CHECK))],
        # Only the first packet of a connection to a port with session affinity carries the
        # bit (set by its selector chain in NAT): every other packet costs one mark test.
        "affinity-prerouting": [rule(MarkTest(AFFINITY_BIT, is_set=True), jump(AFFINITY_CHECK))],
        "affinity-output": [rule(MarkTest(AFFINITY_BIT, is_set=True), jump(AFFINITY_CHECK))],
        SERVICES: [
            rule(VmapLookup(_ADDR_PORT, SERVICE_IPS)),
            rule(
                Cmp(Field.FIB_DADDR_TYPE, "local"),
                not_loopback,
                VmapLookup(_PROTO_PORT, SERVICE_NODEPORTS),
            ),
        ],
        EXTERNAL_LOCAL: [
            rule(jump(FIREWALL_CHECK)),
            # Pods and the node itself reach every endpoint (kube-proxy does the same): only
            # traffic from outside the cluster is restricted to local endpoints.
            rule(Cmp(Field.IP_SADDR, pods), VmapLookup(_ADDR_PORT, CLUSTER_COUNTS)),
            rule(Cmp(Field.FIB_SADDR_TYPE, "local"), VmapLookup(_ADDR_PORT, CLUSTER_COUNTS)),
            rule(VmapLookup(_ADDR_PORT, LOCAL_COUNTS)),
        ],
        NODEPORT_LOCAL: [
            rule(Cmp(Field.IP_SADDR, pods), VmapLookup(_PROTO_PORT, NODEPORT_COUNTS)),
            rule(Cmp(Field.FIB_SADDR_TYPE, "local"), VmapLookup(_PROTO_PORT, NODEPORT_COUNTS)),
            rule(VmapLookup(_PROTO_PORT, NODEPORT_LOCAL_COUNTS)),
        ],
        MARK_FOR_MASQUERADE: [rule(MarkSet(cfg.masquerade_bit))],
        MASQUERADING: [
            rule(
                Cmp(Field.CT_STATUS, "dnat"),
                SetLookup((Field.IP_SADDR, Field.IP_DADDR), HAIRPIN),
                Masquerade(),
            ),
            rule(MarkTest(cfg.masquerade_bit, is_set=False), RETURN),
            rule(MarkSet(cfg.masquerade_bit, xor=True)),
            rule(Masquerade()),
        ],
        ENDPOINTS_CHECK: [rule(VmapLookup(_ADDR_PORT, NO_ENDPOINT_SERVICES))],
        NODEPORT_ENDPOINTS_CHECK: [
            rule(
                Cmp(Field.FIB_DADDR_TYPE, "local"),
                not_loopback,
                VmapLookup(_PROTO_PORT, NO_ENDPOINT_NODEPORTS),
            ),
        ],
        # Entered from the start of every selector chain of external addresses (and of
        # external-local), i.e. by new connections to an externalIP or a LoadBalancer IP only.
        FIREWALL_CHECK: [
            rule(
                SetLookup(_ADDR_PORT, FIREWALL_IPS),
                SetLookup((*_ADDR_PORT, Field.IP_SADDR), FIREWALL_ALLOW, negate=True),
                DROP,
            ),
        ],
        REJECT_CHAIN: [
            rule(Cmp(Field.L4PROTO, "tcp"), Reject(RejectKind.TCP_RESET)),
            rule(Reject(RejectKind.ICMP_PORT_UNREACHABLE)),
        ],
        # nft 1.0.6 types "ct original proto-dst" only with a protocol in the same rule.
        AFFINITY_CHECK: [
            rule(MarkSet(AFFINITY_BIT, xor=True)),  # clear it: the mark is the packet's
            *(
                rule(
                    Cmp(Field.L4PROTO, p.value),
                    VmapLookup(
                        (Field.CT_ORIG_DADDR, Field.L4PROTO, Field.CT_ORIG_DPORT), AFFINITY_PORTS
                    ),
                )
                for p in Protocol
            ),
        ],
    }
    return chains


def _affinity_record_rules(timeout: int) -> list[Rule]:
    key: tuple[KeyPart, ...] = (
        Field.IP_SADDR,
        Field.CT_ORIG_DADDR,
        Field.L4PROTO,
        Field.CT_ORIG_DPORT,
    )
    return [
        rule(
            Cmp(Field.L4PROTO, p.value),
            MapUpdate(AFFINITY, key, (Field.IP_DADDR, Field.TH_DPORT), timeout),
        )
        for p in Protocol
    ]


def selector_chain(kind: str, proto: Protocol, n: int, affinity: bool = False) -> str:
    return f"{kind}-{proto.value}-{n}{_AFFINITY_SUFFIX if affinity else ''}"


def _selector_rules(
    cfg: ProxyConfig, kind: str, proto: Protocol, n: int, affinity: bool
) -> list[Rule]:
    base, key, masq = _KINDS[kind]
    rules: list[Rule] = []
    if kind == "ext":
        rules.append(rule(jump(FIREWALL_CHECK)))
    if masq == _Masq.NOT_PODS:
        rules.append(
            rule(Cmp(Field.IP_SADDR, cfg.cluster_cidr, negate=True), jump(MARK_FOR_MASQUERADE))
        )
    elif masq == _Masq.ALWAYS:
        rules.append(rule(jump(MARK_FOR_MASQUERADE)))
    if affinity:
        # Record the choice after DNAT (affinity-check); a client with an entry goes back to
        # its endpoint (a miss falls through). Ports without affinity skip both lookups.
        rules.append(rule(MarkSet(AFFINITY_BIT)))
        rules.append(rule(DnatMap(_AFFINITY_KEY, AFFINITY)))
    # nft wants a transport match before a dnat whose map yields a port.
    rules.append(
        rule(
            Cmp(Field.L4PROTO, proto.value),
            DnatMap((*key, Numgen(n)), endpoint_map(base, proto)),
        )
    )
    return rules


# --- per-Service contribution ------------------------------------------------------------------

# map name -> key -> element
Contribution = dict[str, dict[tuple[str, ...], Element]]


@dataclass(frozen=True, slots=True)
class PortPlan:
    """What one service port adds to the shared maps, and the chains its elements need."""

    elements: Contribution
    chains: frozenset[str]  # selector and affinity-record chains referenced
    local_endpoint_ips: tuple[str, ...]  # for the hairpin set (shared between Services)


def _select(
    endpoints: Iterable[Endpoint], node: str
) -> tuple[tuple[Endpoint, ...], tuple[Endpoint, ...]]:
    eps = tuple(endpoints)
    cluster = usable_endpoints(eps)
    local = usable_endpoints(e for e in eps if e.node_name == node)
    return cluster, local


def plan_port(cfg: ProxyConfig, sp: ServicePort, endpoints: Iterable[Endpoint]) -> PortPlan:
    all_eps = tuple(endpoints)
    cluster, local = _select(all_eps, cfg.node_name)
    out: Contribution = {}
    chains: set[str] = set()

    def put(m: str, key: tuple[str, ...], data: ElementData) -> None:
        out.setdefault(m, {})[key] = Element(key, data)

    affinity = sp.affinity_timeout is not None

    def select(kind: str, entry: tuple[str, ...], eps: tuple[Endpoint, ...]) -> Verdict:
        """Fill the kind's endpoint map for this entry; the verdict that picks among them."""
        emap = endpoint_map(_KINDS[kind][0], sp.protocol)
        chain = selector_chain(kind, sp.protocol, len(eps), affinity)
        chains.add(chain)
        # (addr . port) or (port): the entry without its protocol, which the map stands for.
        base = (entry[0], entry[2]) if len(entry) == 3 else (entry[1],)
        bucket = out.setdefault(emap, {})
        for slot, ep in enumerate(eps):
            key = (*base, str(slot))
            bucket[key] = Element(key, (ep.ip, str(ep.port)))
        return goto(chain)

    proto, port = sp.proto, str(sp.port)
    reject = goto(REJECT_CHAIN)
    entries_for_affinity: list[tuple[str, ...]] = []

    # ClusterIP.
    internal = local if sp.internal_policy_local else cluster
    cip = (sp.cluster_ip, proto, port)
    if internal:
        put(SERVICE_IPS, cip, select("svc", cip, internal))
        entries_for_affinity.append(cip)
    else:
        put(NO_ENDPOINT_SERVICES, cip, DROP if cluster else reject)

    # externalIPs and LoadBalancer ingress IPs.
    for addr in sp.external_addresses:
        entry = (addr, proto, port)
        if not cluster:
            put(NO_ENDPOINT_SERVICES, entry, reject)
            continue
        if sp.external_policy_local:
            put(SERVICE_IPS, entry, goto(EXTERNAL_LOCAL))
            # Pods and the node itself use every endpoint, as for the ClusterIP.
            put(CLUSTER_COUNTS, entry, select("svc", entry, cluster))
            if local:
                put(LOCAL_COUNTS, entry, select("lep", entry, local))
            else:
                put(NO_ENDPOINT_SERVICES, entry, DROP)
        else:
            put(SERVICE_IPS, entry, select("ext", entry, cluster))
        entries_for_affinity.append(entry)

    # loadBalancerSourceRanges, for the LoadBalancer IPs (kube-proxy: not externalIPs, and "for
    # better or for worse, nodeports are not subject to loadBalancerSourceRanges").
    if sp.source_ranges and cluster:
        allowed = list(sp.source_ranges)
        # A node inside the ranges may reach the VIP with the VIP itself as source (the VIP
        # is often a local address): kube-proxy allows the VIPs as sources then.
        if any(
            ipaddress.ip_address(ip) in ipaddress.ip_network(r)
            for ip in cfg.node_ips
            for r in sp.source_ranges
        ):
            allowed += [f"{ip}/32" for ip in sp.load_balancer_ips]
        # Overlapping elements are refused in an interval set: merge them first.
        nets = ipaddress.collapse_addresses(ipaddress.IPv4Network(a) for a in allowed)
        sources = [str(n.network_address) if n.prefixlen == 32 else str(n) for n in nets]
        for addr in sp.load_balancer_ips:
            put(FIREWALL_IPS, (addr, proto, port), None)
            for src in sources:
                put(FIREWALL_ALLOW, (addr, proto, port, src), None)

    # NodePort.
    if sp.node_port:
        np = (proto, str(sp.node_port))
        if not cluster:
            put(NO_ENDPOINT_NODEPORTS, np, reject)
        else:
            if sp.external_policy_local:
                put(SERVICE_NODEPORTS, np, goto(NODEPORT_LOCAL))
                put(NODEPORT_COUNTS, np, select("np", np, cluster))
                if local:
                    put(NODEPORT_LOCAL_COUNTS, np, select("np-lep", np, local))
                else:
                    put(NO_ENDPOINT_NODEPORTS, np, DROP)
            else:
                put(SERVICE_NODEPORTS, np, select("np", np, cluster))
            entries_for_affinity.extend((ip, proto, np[1]) for ip in cfg.node_ips)

    if sp.affinity_timeout is not None and entries_for_affinity:
        rec = affinity_record_chain(sp.affinity_timeout)
        chains.add(rec)
        for aff_entry in entries_for_affinity:
            put(AFFINITY_PORTS, aff_entry, goto(rec))

    local_ips = tuple(sorted({e.ip for e in all_eps if e.node_name == cfg.node_name}))
    return PortPlan(out, frozenset(chains), local_ips)


def _chain_rules(cfg: ProxyConfig, name: str) -> list[Rule]:
    if name.startswith("affinity-record-"):
        return _affinity_record_rules(int(name.rsplit("-", 1)[1]))
    affinity = name.endswith(_AFFINITY_SUFFIX)
    if affinity:
        name = name[: -len(_AFFINITY_SUFFIX)]
    kind, proto, n = name.rsplit("-", 2)
    return _selector_rules(cfg, kind, Protocol(proto), int(n), affinity)


# --- state and transactions --------------------------------------------------------------------


@dataclass
class ProxyState:
    """What the proxy believes the kernel holds: per service port, its plan; plus refcounts.

    The rule builder keeps it so that a partial sync can diff a Service's old plan against its
    new one without rereading the kernel.
    """

    plans: dict[str, PortPlan] = field(default_factory=dict)  # ServicePort.name -> plan
    by_service: dict[ServiceKey, tuple[str, ...]] = field(default_factory=dict)
    chain_refs: Counter[str] = field(default_factory=Counter)
    hairpin_refs: Counter[str] = field(default_factory=Counter)
    chains: set[str] = field(default_factory=set)  # dynamic chains present in the kernel


ServiceInput = Mapping[ServiceKey, tuple[tuple[ServicePort, tuple[Endpoint, ...]], ...]]


def _new_builder(cfg: ProxyConfig) -> TransactionBuilder:
    return TransactionBuilder(cfg.family, cfg.table)


def _hairpin_element(ip: str) -> Element:
    return Element((ip, ip))


def build_full(
    cfg: ProxyConfig, services: ServiceInput, existing_chains: Iterable[str] = ()
) -> tuple[Transaction, ProxyState]:
    """The whole table: every chain flushed and refilled, every static map flushed and refilled.

    The table is not deleted, so the dynamic ``affinity`` map (written by packets) survives a
    periodic resync. ``existing_chains`` are the kernel's current chains: dynamic ones no longer
    needed are deleted (after the maps that referenced them have been flushed).
    """
    with paused_gc():
        return _build_full(cfg, services, existing_chains)


def _build_full(
    cfg: ProxyConfig, services: ServiceInput, existing_chains: Iterable[str]
) -> tuple[Transaction, ProxyState]:
    state = ProxyState()
    merged: Contribution = {}
    for key in sorted(services):
        names: list[str] = []
        for sp, eps in services[key]:
            plan = plan_port(cfg, sp, eps)
            state.plans[sp.name] = plan
            names.append(sp.name)
            for m, els in plan.elements.items():
                merged.setdefault(m, {}).update(els)
            state.chain_refs.update(plan.chains)
            state.hairpin_refs.update(plan.local_endpoint_ips)
        state.by_service[key] = tuple(names)

    b = _new_builder(cfg)
    b.add_table()
    static = _static_chains(cfg)
    dynamic = sorted(state.chain_refs)
    state.chains = set(dynamic)
    for name in static:
        b.add_chain(name, _BASE_CHAINS.get(name))
    for name in dynamic:
        b.add_chain(name)
    for name, spec in _STATIC_SETS.items():
        b.add_set(name, spec)
    for name in static:
        b.flush_chain(name)
    for name in dynamic:
        b.flush_chain(name)
    for name, spec in _STATIC_SETS.items():
        if name != AFFINITY:
            b.flush_set(name, is_map=spec.is_map)
    for name in sorted(set(existing_chains) - set(static) - set(dynamic)):
        if name in _BASE_CHAINS:
            continue
        b.flush_chain(name)
        b.delete_chain(name)
    for name in dynamic:
        for r in _chain_rules(cfg, name):
            b.add_rule(name, r)
    for name, rules in static.items():
        for r in rules:
            b.add_rule(name, r)
    for m in sorted(merged):
        b.add_elements(m, merged[m].values())
    b.add_elements(HAIRPIN, (_hairpin_element(ip) for ip in sorted(state.hairpin_refs)))
    return b.build(), state


def expected_chains(cfg: ProxyConfig, state: ProxyState) -> set[str]:
    """Every chain the table holds after the syncs that produced ``state``."""
    return set(_static_chains(cfg)) | state.chains


def build_cleanup(cfg: ProxyConfig) -> Transaction:
    """Remove the proxy's table, whether or not it exists (``svcnet down``, agent shutdown)."""
    b = _new_builder(cfg)
    b.add_table()  # nft 1.0.6 has no "destroy": adding first makes the delete always valid
    b.delete_table()
    return b.build()


@dataclass(frozen=True, slots=True)
class StateDelta:
    """What a partial transaction changes in :class:`ProxyState`; committed only on success."""

    plans: Mapping[str, PortPlan | None]  # None: the port is gone
    by_service: Mapping[ServiceKey, tuple[str, ...]]  # (): the Service is gone
    chain_refs: Counter[str]
    hairpin_refs: Counter[str]
    new_chains: frozenset[str]


def commit(state: ProxyState, delta: StateDelta) -> None:
    """Record in ``state`` that the transaction built with ``delta`` was applied."""
    for name, plan in delta.plans.items():
        if plan is None:
            state.plans.pop(name, None)
        else:
            state.plans[name] = plan
    for key, names in delta.by_service.items():
        if names:
            state.by_service[key] = names
        else:
            state.by_service.pop(key, None)
    for counter, d in (
        (state.chain_refs, delta.chain_refs),
        (state.hairpin_refs, delta.hairpin_refs),
    ):
        for k, n in d.items():
            counter[k] += n
            if counter[k] <= 0:
                del counter[k]
    state.chains |= delta.new_chains


def build_partial(
    cfg: ProxyConfig,
    state: ProxyState,
    changed: ServiceInput,
    removed: Iterable[ServiceKey] = (),
) -> tuple[Transaction, StateDelta]:
    """Only the elements of the Services that changed, and any selector chain they newly need.

    ``changed`` holds the current ports and endpoints of each changed Service; ``removed`` the
    Services that are gone. ``state`` is only read: the caller commits the delta once the
    transaction succeeded, so a failure leaves its belief intact (and it falls back to a full
    sync). The cost is proportional to the changed Services, not to the table.
    """
    plans: dict[str, PortPlan | None] = {}
    by_service: dict[ServiceKey, tuple[str, ...]] = {}
    chain_d: Counter[str] = Counter()
    hairpin_d: Counter[str] = Counter()
    old_elements: Contribution = {}
    new_elements: Contribution = {}
    touched = list(changed.items()) + [(k, ()) for k in removed if k not in changed]
    for key, ports in touched:
        for name in state.by_service.get(key, ()):
            plan = state.plans[name]
            plans[name] = None
            for m, els in plan.elements.items():
                old_elements.setdefault(m, {}).update(els)
            chain_d.subtract(plan.chains)
            hairpin_d.subtract(plan.local_endpoint_ips)
        names: list[str] = []
        for sp, eps in ports:
            plan = plan_port(cfg, sp, eps)
            plans[sp.name] = plan
            names.append(sp.name)
            for m, els in plan.elements.items():
                new_elements.setdefault(m, {}).update(els)
            chain_d.update(plan.chains)
            hairpin_d.update(plan.local_endpoint_ips)
        by_service[key] = tuple(names)

    b = _new_builder(cfg)
    # New selector chains first: elements added below jump to them.
    new_chains = frozenset(c for c, n in chain_d.items() if n > 0 and c not in state.chains)
    for name in sorted(new_chains):
        b.add_chain(name)
        for r in _chain_rules(cfg, name):
            b.add_rule(name, r)
    for m in sorted(set(old_elements) | set(new_elements)):
        before = old_elements.get(m, {})
        after = new_elements.get(m, {})
        b.delete_elements(m, (e for k, e in sorted(before.items()) if after.get(k) != e))
        b.add_elements(m, (e for k, e in sorted(after.items()) if before.get(k) != e))
    # The hairpin set is shared: an address leaves it when its last reference goes.
    gone = sorted(ip for ip, d in hairpin_d.items() if d < 0 and state.hairpin_refs[ip] + d <= 0)
    came = sorted(ip for ip, d in hairpin_d.items() if d > 0 and state.hairpin_refs[ip] <= 0)
    b.delete_elements(HAIRPIN, (_hairpin_element(ip) for ip in gone))
    b.add_elements(HAIRPIN, (_hairpin_element(ip) for ip in came))
    # Selector chains nobody needs any more stay until the next full sync: deleting them here
    # would need to know no element elsewhere still jumps there, and an unused chain costs the
    # data path nothing.
    return b.build(), StateDelta(plans, by_service, chain_d, hairpin_d, new_chains)
