"""The machine's underlay: one bridge, one network namespace per node, and the routes between.

Layout (defaults; every range comes from :class:`UnderlayConfig` so tests can use their own):

    root netns   bridge svcnet0 172.18.0.1/16
                 routes: 10.244.N.0/24 via node N          (pod IPs reachable from the machine)
                         10.96.0.0/16 via the first node   (ClusterIPs: that node's proxy DNATs)
                         unreachable 10.244.0.0/16, 10.96.0.0/16 at a high metric
                 nft table inet svcnet_underlay: nothing crosses between svcnet0 and any other
                         interface, and no cluster address leaves through another interface
    node N       netns svcnet-node-N, eth0 172.18.0.(10+N)/16 (veth, root end svcnet-nN on
                 svcnet0), routes to every other node's pod CIDR via its eth0 address,
                 ip_forward=1, rp_filter=0; the pods' cni0 bridge is made there by CNI.

Why the cluster is sealed: nodes have NO default route. The only off-node destinations a node
process needs are other nodes (on-link on 172.18.0.0/16) and the API server at 172.18.0.1
(the machine's address on the same link), so a default route via the machine would only add
a path for pod traffic to reach the machine's forwarding path and from there the outside
world. Without it a packet for any other address gets ICMP unreachable at the node. In the
root namespace the cluster ranges are routed into svcnet0 or, when no node route matches,
into an `unreachable` route, so they can never fall through to the machine's default route;
the nft guard table enforces the same thing for forwarded traffic (the machine's
ip_forward is left as the machine's owner set it).

Everything made here is named from ``config.prefix``, refused when the machine already holds
one of its names or ranges (:mod:`svcnet.cluster.claims`), and recorded as it is made
(:mod:`svcnet.cluster.owned`), so :func:`sweep` removes exactly that after a crash too, and
never something of another cluster's that shares a name or a range.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from svcnet.api.ranges import (
    DEFAULT_CLUSTER_CIDR,
    DEFAULT_LB_CIDR,
    DEFAULT_SERVICE_CIDR,
    DEFAULT_UNDERLAY_CIDR,
)
from svcnet.cluster.claims import Claim, Conflict, claim_conflicts, read_machine
from svcnet.cluster.owned import Journal, Kind
from svcnet.dataplane.netns import (
    NetnsError,
    NetnsOps,
    Route,
    RouteType,
    net_only_prefix,
)

FALLBACK_METRIC = 4_000_000  # far above anything svcnet or a user adds, so real routes win
SERVICE_ROUTE_METRIC = 100
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,9}$")  # 10 chars: "<prefix>-n<NNN>" fits IFNAMSIZ

NODE_SYSCTLS: tuple[tuple[str, str], ...] = (
    # Nodes route pod traffic between eth0 and cni0.
    ("net.ipv4.ip_forward", "1"),
    # A node forwards traffic for addresses it does not own (pods, ClusterIPs after DNAT);
    # strict reverse-path filtering drops legitimate asymmetric paths such as a NodePort
    # answered through another node.
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
    # The kernel rate-limits ICMP per peer; in a fresh namespace the first port-unreachable
    # the proxy sends for a Service without endpoints was swallowed, leaving a UDP client to
    # time out. Leave destination-unreachable out of the rate mask (default 6168 minus 8).
    ("net.ipv4.icmp_ratemask", "6160"),
    # Present only when br_netfilter is loaded (set_sysctls skips a key the kernel lacks);
    # kube-proxy needs bridged pod-to-pod packets to traverse the node's nftables hooks, or a
    # reply from a backend on the same bridge would skip the un-DNAT of a ClusterIP connection.
    ("net.bridge.bridge-nf-call-iptables", "1"),
)


class UnderlayError(Exception):
    pass


@dataclass(frozen=True)
class UnderlayConfig:
    prefix: str = "svcnet"
    underlay_cidr: str = DEFAULT_UNDERLAY_CIDR
    pod_cidr: str = DEFAULT_CLUSTER_CIDR
    service_cidr: str = DEFAULT_SERVICE_CIDR
    lb_cidr: str = DEFAULT_LB_CIDR
    state_dir: str = "/var/lib/svcnet"
    bridge_name: str | None = None  # default: "<prefix>0"

    def __post_init__(self) -> None:
        if not _PREFIX_RE.match(self.prefix):
            raise UnderlayError(f"prefix {self.prefix!r} must match {_PREFIX_RE.pattern}")

    @property
    def bridge(self) -> str:
        return self.bridge_name or f"{self.prefix}0"

    @property
    def gateway(self) -> str:
        """The machine's address on the underlay (where the API server listens)."""
        return str(ipaddress.ip_network(self.underlay_cidr).network_address + 1)

    @property
    def gateway_cidr(self) -> str:
        return f"{self.gateway}/{ipaddress.ip_network(self.underlay_cidr).prefixlen}"

    @property
    def nft_table(self) -> str:
        return f"{self.prefix}_underlay"

    @property
    def state_file(self) -> str:
        return os.path.join(self.state_dir, "underlay.json")

    @property
    def node_netns_prefix(self) -> str:
        return f"{self.prefix}-node-"

    def node_netns(self, index: int) -> str:
        return f"{self.node_netns_prefix}{index}"

    def node_ip(self, index: int) -> str:
        net = ipaddress.ip_network(self.underlay_cidr)
        return str(net.network_address + 10 + index)

    def default_pod_cidr(self, index: int) -> str:
        """The /24 the node IPAM controller gives node N: the Nth /24 of the cluster CIDR."""
        net = ipaddress.ip_network(self.pod_cidr)
        return str(list(net.subnets(new_prefix=24))[index]) if index < 256 else ""


@dataclass(frozen=True)
class NodeNet:
    """Everything about one node's place on the underlay, precomputed."""

    index: int
    name: str  # the Kubernetes Node name
    netns: str
    ip: str
    ip_cidr: str
    veth_root: str  # the veth end in the root namespace, a port of the bridge
    pod_cidr: str

    @property
    def pod_gateway(self) -> str:
        return str(ipaddress.ip_network(self.pod_cidr).network_address + 1)

    def agent_argv_prefix(self) -> list[str]:
        """How to run a command in this node's network namespace only, NOT `ip netns exec`.

        `ip netns exec` puts the command in a private (slave) mount namespace, and the bind
        mounts an agent made there for its pods under /run/netns would exist only there:
        `svcnet down`, `ip netns` and every other process would see empty files. nsenter
        --net changes the network namespace only, so pod namespaces stay visible to all.
        """
        return net_only_prefix(self.netns)


def node_net(config: UnderlayConfig, index: int, pod_cidr: str | None = None) -> NodeNet:
    if index < 1:
        raise UnderlayError(f"node index {index} must be 1 or more")
    prefixlen = ipaddress.ip_network(config.underlay_cidr).prefixlen
    ip = config.node_ip(index)
    return NodeNet(
        index=index,
        name=f"node-{index}",
        netns=config.node_netns(index),
        ip=ip,
        ip_cidr=f"{ip}/{prefixlen}",
        veth_root=f"{config.prefix}-n{index}",
        pod_cidr=pod_cidr or config.default_pod_cidr(index),
    )


# -- pure planning ----------------------------------------------------------------------------
def plan_root_routes(config: UnderlayConfig, nodes: list[NodeNet]) -> list[Route]:
    """The routes svcnet owns in the machine's namespace, for this set of nodes."""
    routes = [
        Route(config.pod_cidr, type=RouteType.UNREACHABLE, metric=FALLBACK_METRIC),
        Route(config.service_cidr, type=RouteType.UNREACHABLE, metric=FALLBACK_METRIC),
    ]
    lb = ipaddress.ip_network(config.lb_cidr)
    if not lb.subnet_of(ipaddress.ip_network(config.underlay_cidr)):  # type: ignore[arg-type]
        # Outside the bridge's own subnet the LoadBalancer pool needs its own on-link route
        # (nodes answer ARP for the addresses they announce, as MetalLB's L2 mode does).
        routes.append(Route(config.lb_cidr, dev=config.bridge))
    ordered = sorted(nodes, key=lambda n: n.index)
    for node in ordered:
        routes.append(Route(node.pod_cidr, via=node.ip, dev=config.bridge))
    if ordered:
        routes.append(
            Route(
                config.service_cidr,
                via=ordered[0].ip,
                dev=config.bridge,
                metric=SERVICE_ROUTE_METRIC,
            )
        )
    return routes


def plan_node_routes(config: UnderlayConfig, node: NodeNet, nodes: list[NodeNet]) -> list[Route]:
    """A node's routes: every other node's pod CIDR via that node's underlay IP, and the
    service CIDR towards the machine. ClusterIP traffic is DNATed before routing, but a
    Service without endpoints must reach the forward hook, where the proxy rejects it at
    once; without a route it would die in routing with no reset. The machine never forwards
    it (ip_forward is left off there and its guard table drops anything leaving svcnet0)."""
    routes = [
        Route(config.pod_cidr, type=RouteType.UNREACHABLE, metric=FALLBACK_METRIC),
        Route(config.service_cidr, via=config.gateway, dev="eth0"),
    ]
    for other in sorted(nodes, key=lambda n: n.index):
        if other.index != node.index:
            routes.append(Route(other.pod_cidr, via=other.ip, dev="eth0"))
    return routes


def render_guard(config: UnderlayConfig) -> str:
    """The nft script that makes the root-namespace guard table: ``create`` fails when a table
    of that name exists, and the whole script with it (a transaction), so an existing table
    is never taken over."""
    br = config.bridge
    table = config.nft_table
    return (
        f"create table inet {table}\n"
        f"table inet {table} {{\n"
        f"  chain forward {{\n"
        f"    type filter hook forward priority filter - 5; policy accept;\n"
        f'    iifname "{br}" oifname != "{br}" drop\n'
        f'    oifname "{br}" iifname != "{br}" drop\n'
        f"  }}\n"
        f"  chain output {{\n"
        f"    type filter hook output priority filter - 5; policy accept;\n"
        f'    ip daddr {{ {config.pod_cidr}, {config.service_cidr} }} oifname != "{br}" drop\n'
        f"  }}\n"
        f"}}\n"
    )


def claim_of(config: UnderlayConfig, nodes: list[NodeNet]) -> Claim:
    """The ranges and names a cluster of ``config`` with ``nodes`` holds on the machine. A
    LoadBalancer pool inside the underlay is part of the underlay's subnet, not a range of
    its own."""
    lb = ipaddress.ip_network(config.lb_cidr)
    in_underlay = lb.subnet_of(ipaddress.ip_network(config.underlay_cidr))  # type: ignore[arg-type]
    return Claim(
        prefix=config.prefix,
        ranges=(
            ("--underlay-cidr", config.underlay_cidr),
            ("--pod-cidr", config.pod_cidr),
            ("--service-cidr", config.service_cidr),
            *(() if in_underlay else (("--lb-cidr", config.lb_cidr),)),
        ),
        links=(config.bridge, *(n.veth_root for n in nodes)),
        netns=tuple(n.netns for n in nodes),
        nft_tables=(f"inet {config.nft_table}",),
    )


class ClaimError(UnderlayError):
    """Something on the machine already holds a range or a name the cluster needs."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        super().__init__("; ".join(str(c) for c in conflicts))
        self.conflicts = conflicts


# -- state file -----------------------------------------------------------------------------
@dataclass
class UnderlayState:
    config: dict[str, str | None]
    nodes: dict[str, dict[str, object]] = field(default_factory=dict)


def _route_key(r: Route) -> tuple[str, int]:
    """What the kernel keys a main-table route by (type, gateway and device are not in it)."""
    return r.dst, r.metric or 0


class Underlay:
    """Creates and removes the underlay. Not thread-safe; one owner (`svcnet up`).

    Everything it makes in the machine's namespace is made with an operation that fails when
    the thing exists, and recorded in the cluster's :class:`~svcnet.cluster.owned.Journal`
    right after; :func:`sweep` removes what the journal lists and nothing else."""

    def __init__(self, ops: NetnsOps, config: UnderlayConfig | None = None) -> None:
        self.ops = ops
        self.config = config or UnderlayConfig()
        self.journal = Journal(self.config.state_dir)
        self.nodes: dict[int, NodeNet] = {}
        self._root_routes: list[Route] = []

    # -- lifecycle ------------------------------------------------------------------------
    def create(self, nodes: int | list[int]) -> list[NodeNet]:
        """Bridge, guard table, and the given nodes (a count means nodes 1..N); refused with
        :class:`ClaimError`, before anything is made, when the machine already holds one of
        the cluster's ranges or names."""
        cfg = self.config
        indexes = list(range(1, nodes + 1)) if isinstance(nodes, int) else nodes
        planned = [node_net(cfg, i) for i in indexes]
        if problems := claim_conflicts(claim_of(cfg, planned), read_machine(self.ops)):
            raise ClaimError(problems)
        # Nothing an earlier journal of this state dir lists is on the machine any more (the
        # check above found none of these names and ranges), so its entries are stale.
        self.journal.remove()
        self._save()
        self.ops.add_bridge(None, cfg.bridge)
        self.journal.made(Kind.LINK, cfg.bridge)
        self.ops.add_address(None, cfg.bridge, cfg.gateway_cidr)
        self.ops.set_up(None, cfg.bridge)
        self._apply_guard()
        for node in planned:
            self._make_node(node)
        self._sync_routes()
        return [self.nodes[i] for i in indexes]

    def add_node(self, index: int, pod_cidr: str | None = None) -> NodeNet:
        if index in self.nodes:
            raise UnderlayError(f"node {index} already exists")
        node = node_net(self.config, index, pod_cidr)
        self._make_node(node)
        self._sync_routes()
        return node

    def set_pod_cidr(self, index: int, pod_cidr: str) -> NodeNet:
        """Re-point the routes when the node IPAM controller chose another CIDR."""
        old = self.nodes[index]
        node = NodeNet(old.index, old.name, old.netns, old.ip, old.ip_cidr, old.veth_root, pod_cidr)
        self.nodes[index] = node
        self._sync_routes(dropped=[old])
        return node

    def remove_node(self, index: int) -> None:
        node = self.nodes.pop(index, None)
        if node is None:
            return
        remove_pod_netns(self.ops, node.netns)
        self.ops.kill_all(node.netns)
        self.ops.delete_netns(node.netns)  # takes eth0 and so the root end of the veth too
        self.journal.gone(Kind.NETNS, node.netns)
        self.ops.delete_link(None, node.veth_root)
        self.journal.gone(Kind.LINK, node.veth_root)
        self._sync_routes(dropped=[node])

    def destroy(self) -> None:
        """Remove every node, then everything else the journal lists."""
        for index in list(self.nodes):
            self.remove_node(index)
        sweep(self.ops, self.config)
        self._root_routes = []

    # -- internals ------------------------------------------------------------------------
    def _make_node(self, node: NodeNet) -> None:
        ops = self.ops
        self.nodes[node.index] = node
        self._save()
        ops.add_netns(node.netns)
        self.journal.made(Kind.NETNS, node.netns)
        ops.add_veth(None, node.veth_root, node.netns, "eth0")
        self.journal.made(Kind.LINK, node.veth_root)
        ops.set_master(None, node.veth_root, self.config.bridge)
        ops.set_up(None, node.veth_root)
        ops.set_up(node.netns, "lo")
        ops.add_address(node.netns, "eth0", node.ip_cidr)
        ops.set_up(node.netns, "eth0")
        ops.set_sysctls(node.netns, NODE_SYSCTLS)

    def _sync_routes(self, dropped: list[NodeNet] | None = None) -> None:
        cfg = self.config
        nodes = list(self.nodes.values())
        want_root = plan_root_routes(cfg, nodes)
        want_keys = {_route_key(r) for r in want_root}
        for route in self._root_routes:
            if _route_key(route) not in want_keys:
                self.ops.delete_route(None, route)
                self.journal.gone_route(route)
        ours = {_route_key(r): r for r in self._root_routes}
        for route in want_root:
            held = ours.get(_route_key(route))
            if held == route:
                continue
            if held is None:
                # A route of another owner with this key makes `add` fail: never replace it.
                self.ops.add_route(None, route)
            else:
                self.ops.replace_route(None, route)  # ours, re-pointed (a node went or moved)
                self.journal.gone_route(held)
            self.journal.made_route(route)
        self._root_routes = want_root
        gone = {n.pod_cidr for n in dropped or []} - {n.pod_cidr for n in nodes}
        for node in nodes:
            for cidr in gone:
                self.ops.delete_route(node.netns, Route(cidr, dev="eth0"))
            self.ops.replace_routes(node.netns, plan_node_routes(cfg, node, nodes))
        self._save()

    def _apply_guard(self) -> None:
        res = self.ops.run(None, ["nft", "-f", "-"], input=render_guard(self.config).encode())
        if res.returncode != 0:
            raise UnderlayError(f"nft guard table: {res.stderr.decode(errors='replace').strip()}")
        self.journal.made(Kind.NFT_TABLE, f"inet {self.config.nft_table}")

    def _save(self) -> None:
        state = UnderlayState(
            config={k: (str(v) if v is not None else None) for k, v in asdict(self.config).items()},
            nodes={str(i): asdict(n) for i, n in sorted(self.nodes.items())},
        )
        path = Path(self.config.state_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2))
        os.replace(tmp, path)


def remove_pod_netns(ops: NetnsOps, node_netns: str) -> None:
    """Delete pod namespaces left under a node (named "<node netns>_...") and their /etc files."""
    for name in ops.list_netns():
        if name.startswith(f"{node_netns}_"):
            ops.kill_all(name)
            ops.delete_netns(name)
            ops.remove_etc(name)


def sweep(ops: NetnsOps, config: UnderlayConfig) -> list[str]:
    """Remove what the cluster's journal says it made; return what was removed.

    Works from the journal alone, so it also cleans up after the owner crashed. Removes
    nothing the journal does not list: not a namespace, link, route or table that merely
    carries the prefix or lies in the ranges. Safe to repeat.
    """
    journal = Journal(config.state_dir)
    owned = journal.read()
    removed: list[str] = []
    nodes = set(owned.netns)

    def pods() -> list[str]:
        return [n for n in ops.list_netns() if n.split("_", 1)[0] in nodes and "_" in n]

    # Node namespaces first: their agents stop making pods; then list again, so a pod made
    # meanwhile is caught; then remove the names.
    present = set(ops.list_netns())
    for name in owned.netns:
        if name in present:
            removed.extend(f"process {pid} in {name}" for pid in ops.kill_all(name))
    pod_netns = pods()
    for name in pod_netns:
        removed.extend(f"process {pid} in {name}" for pid in ops.kill_all(name))
    for name in [*pod_netns, *(n for n in owned.netns if n in present)]:
        ops.delete_netns(name)
        removed.append(f"netns {name}")
    for name in [*pod_netns, *owned.netns]:
        if ops.remove_etc(name):
            removed.append(f"/etc/netns/{name}")
    links = {link.name for link in ops.list_links(None)}
    for name in owned.links:
        if name in links:
            ops.delete_link(None, name)
            removed.append(f"link {name}")
    routes = set(ops.list_routes(None))
    for route in owned.routes:
        if route in routes:
            ops.delete_route(None, route)
            removed.append(f"route {' '.join(route.argv())}")
    for table in owned.nft_tables:
        res = ops.run(None, ["nft", "delete", "table", *table.split(" ", 1)])
        if res.returncode == 0:
            removed.append(f"nft table {table}")
    journal.remove()
    try:
        os.remove(config.state_file)
        removed.append(config.state_file)
    except FileNotFoundError:
        pass
    return removed


def load_nodes(config: UnderlayConfig) -> list[NodeNet]:
    """The nodes recorded in the state file (for `svcnet status` and agents)."""
    try:
        data = json.loads(Path(config.state_file).read_text())
    except (OSError, ValueError):
        return []
    out = []
    for entry in data.get("nodes", {}).values():
        out.append(NodeNet(**{k: entry[k] for k in NodeNet.__dataclass_fields__}))
    return sorted(out, key=lambda n: n.index)


__all__ = [
    "ClaimError",
    "NetnsError",
    "NodeNet",
    "Underlay",
    "UnderlayConfig",
    "UnderlayError",
    "claim_of",
    "load_nodes",
    "node_net",
    "plan_node_routes",
    "plan_root_routes",
    "remove_pod_netns",
    "render_guard",
    "sweep",
]
