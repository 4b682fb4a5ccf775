"""An in-memory :class:`~svcnet.dataplane.netns.NetnsOps` that keeps the kernel's rules.

The rules it enforces, because code that breaks them fails on a real kernel:
- a namespace or a link name exists once (per namespace); adding it again is "File exists";
- operations on a missing namespace or link fail with NotFound;
- a veth has two ends; deleting either end, or the namespace of either end, removes both;
  deleting a bridge releases its ports; deleting a namespace removes every link in it;
- a connected route (proto kernel) exists for each address of a link that is up;
- a route is keyed by destination and metric: adding a second one is "File exists";
- a gateway must be on a connected subnet ("Nexthop has invalid gateway"); a route's dev must
  exist; route lookup is longest prefix first, then lowest metric.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from svcnet.dataplane.netns import (
    AlreadyExists,
    Link,
    NetnsError,
    NotFound,
    Route,
    RouteLookup,
    RouteType,
    RunResult,
)

ROOT = "<root>"

RunHandler = Callable[[str | None, Sequence[str], bytes | None, Mapping[str, str]], RunResult]


@dataclass
class _Link:
    kind: str
    up: bool = False
    master: str | None = None
    addresses: list[str] = field(default_factory=list)
    peer: tuple[str, str] | None = None  # (namespace key, link name) of a veth's other end


@dataclass
class _Ns:
    links: dict[str, _Link] = field(default_factory=dict)
    pids: list[int] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)


def _key(ns: str | None) -> str:
    return ROOT if ns is None else ns


class FakeNetns:
    """Namespaces, links and routes in memory. ``run`` calls an injected handler."""

    def __init__(self, run_handler: RunHandler | None = None) -> None:
        self._ns: dict[str, _Ns] = {ROOT: _Ns()}
        self._ns[ROOT].links["lo"] = _Link("loopback", up=True, addresses=["127.0.0.1/8"])
        self._run_handler = run_handler
        self.commands: list[tuple[str | None, tuple[str, ...]]] = []
        # Names with an /etc/netns/<name>/ directory (kept here, never on the machine).
        self.etc: set[str] = set()
        # Namespaces unnamed while processes still ran in them: the kernel keeps those alive
        # (with their links) although no name reaches them any more.
        self.leaked: list[str] = []

    # -- namespaces ---------------------------------------------------------------------
    def _get(self, ns: str | None) -> _Ns:
        try:
            return self._ns[_key(ns)]
        except KeyError:
            raise NotFound(f"netns {ns}", f'Cannot open network namespace "{ns}"') from None

    def _link(self, ns: str | None, name: str) -> _Link:
        try:
            return self._get(ns).links[name]
        except KeyError:
            raise NotFound(f"link {name}", f'Cannot find device "{name}"') from None

    def list_netns(self) -> list[str]:
        return sorted(k for k in self._ns if k != ROOT)

    def add_netns(self, name: str) -> None:
        if name in self._ns:
            raise AlreadyExists(f"netns add {name}", "File exists")
        self._ns[name] = _Ns(links={"lo": _Link("loopback", up=False)})

    def delete_netns(self, name: str) -> None:
        space = self._ns.get(name)
        if space is None:
            return
        if space.pids:
            self.leaked.append(name)
        for link_name in list(space.links):
            self._remove_link(name, link_name)
        del self._ns[name]

    def add_process(self, name: str, pid: int) -> None:
        """Test hook: pretend a process lives in the namespace."""
        self._get(name).pids.append(pid)

    def kill_all(self, name: str) -> list[int]:
        space = self._ns.get(name)
        if space is None:
            return []
        pids, space.pids = space.pids, []
        return pids

    def remove_etc(self, name: str) -> bool:
        if name not in self.etc:
            return False
        self.etc.discard(name)
        return True

    # -- links --------------------------------------------------------------------------
    def _new_link(self, ns: str | None, name: str, link: _Link) -> None:
        space = self._get(ns)
        if name in space.links:
            raise AlreadyExists(f"add link {name}", "RTNETLINK answers: File exists")
        if len(name) > 15:
            raise NetnsError(f"add link {name}", f'"{name}" is not a valid ifname')
        space.links[name] = link

    def add_bridge(self, ns: str | None, name: str) -> None:
        self._new_link(ns, name, _Link("bridge"))

    def add_veth(self, ns: str | None, name: str, peer_ns: str | None, peer_name: str) -> None:
        self._get(peer_ns)
        if peer_name in self._get(peer_ns).links:
            raise AlreadyExists(f"add veth {name}", "RTNETLINK answers: File exists")
        self._new_link(ns, name, _Link("veth", peer=(_key(peer_ns), peer_name)))
        self._new_link(peer_ns, peer_name, _Link("veth", peer=(_key(ns), name)))

    def _remove_link(self, nskey: str, name: str) -> None:
        space = self._ns.get(nskey)
        if space is None or name not in space.links:
            return
        link = space.links.pop(name)
        self._drop_routes_of(nskey, name)
        for other in space.links.values():
            if other.master == name:
                other.master = None
        if link.peer is not None:
            self._remove_link(*link.peer)

    def delete_link(self, ns: str | None, name: str) -> None:
        self._get(ns)
        self._remove_link(_key(ns), name)

    def set_up(self, ns: str | None, name: str) -> None:
        self._link(ns, name).up = True

    def set_master(self, ns: str | None, name: str, master: str) -> None:
        if self._link(ns, master).kind != "bridge":
            raise NetnsError(f"set {name} master {master}", "Operation not supported")
        self._link(ns, name).master = master

    def add_address(self, ns: str | None, link: str, cidr: str) -> None:
        entry = self._link(ns, link)
        if cidr not in entry.addresses:
            entry.addresses.append(cidr)

    def list_links(self, ns: str | None) -> list[Link]:
        return [
            Link(name, link.kind, link.up, link.master, tuple(link.addresses))
            for name, link in sorted(self._get(ns).links.items())
        ]

    # -- routes -------------------------------------------------------------------------
    def _connected(self, ns: str | None) -> list[Route]:
        out = []
        for name, link in self._get(ns).links.items():
            if not link.up:
                continue
            for cidr in link.addresses:
                net = ipaddress.ip_interface(cidr).network
                out.append(Route(dst=str(net), dev=name))
        return out

    def _drop_routes_of(self, nskey: str, dev: str) -> None:
        space = self._ns[nskey]
        space.routes = [r for r in space.routes if r.dev != dev]

    def _valid(self, ns: str | None, route: Route, op: str) -> Route:
        """The route as the kernel stores it (dev filled in from the gateway), or the error."""
        if route.dev is not None:
            self._link(ns, route.dev)
        if route.via is not None:
            gw = ipaddress.ip_address(route.via)
            on_link = [
                r
                for r in self._connected(ns)
                if gw in ipaddress.ip_network(r.dst) and (route.dev is None or r.dev == route.dev)
            ]
            if not on_link:
                raise NetnsError(f"{op} {route.dst}", "Nexthop has invalid gateway")
            if route.dev is None:
                route = Route(route.dst, route.via, on_link[0].dev, route.type, route.metric)
        return route

    def add_route(self, ns: str | None, route: Route) -> None:
        space = self._get(ns)
        route = self._valid(ns, route, "route add")
        if any(
            r.dst == route.dst and (r.metric or 0) == (route.metric or 0)
            for r in self.list_routes(ns)
        ):
            raise AlreadyExists(f"route add {route.dst}", "RTNETLINK answers: File exists")
        space.routes.append(route)

    def replace_route(self, ns: str | None, route: Route) -> None:
        space = self._get(ns)
        route = self._valid(ns, route, "route replace")
        space.routes = [
            r
            for r in space.routes
            if not (r.dst == route.dst and r.metric == route.metric and r.type == route.type)
        ]
        space.routes.append(route)

    def replace_routes(self, ns: str | None, routes: Sequence[Route]) -> None:
        for route in routes:
            self.replace_route(ns, route)

    def delete_route(self, ns: str | None, route: Route) -> None:
        space = self._get(ns)
        space.routes = [
            r
            for r in space.routes
            if not (
                r.dst == route.dst
                and r.type == route.type
                and (route.metric is None or r.metric == route.metric)
                and (route.via is None or r.via == route.via)
            )
        ]

    def list_routes(self, ns: str | None) -> list[Route]:
        return self._connected(ns) + list(self._get(ns).routes)

    def route_get(self, ns: str | None, dst: str) -> RouteLookup:
        addr = ipaddress.ip_address(dst)
        for _name, link in self._get(ns).links.items():
            if any(ipaddress.ip_interface(c).ip == addr for c in link.addresses):
                return RouteLookup(dst, RouteType.UNICAST, None, "lo")
        candidates = [
            r for r in self.list_routes(ns) if addr in ipaddress.ip_network(r.dst, strict=False)
        ]
        if not candidates:
            return RouteLookup(dst, RouteType.UNREACHABLE)
        best = min(
            candidates,
            key=lambda r: (-ipaddress.ip_network(r.dst).prefixlen, r.metric or 0),
        )
        return RouteLookup(dst, best.type, best.via, best.dev)

    # -- sysctls and commands -----------------------------------------------------------
    def set_sysctl(self, ns: str | None, key: str, value: str) -> None:
        self._get(ns).sysctls[key] = value

    def set_sysctls(self, ns: str | None, values: Sequence[tuple[str, str]]) -> None:
        space = self._get(ns)
        for key, value in values:  # a fake namespace has every key
            space.sysctls[key] = value

    def get_sysctl(self, ns: str | None, key: str) -> str | None:
        return self._get(ns).sysctls.get(key)

    def run(
        self,
        ns: str | None,
        argv: Sequence[str],
        *,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> RunResult:
        self._get(ns)
        self.commands.append((ns, tuple(argv)))
        if self._run_handler is None:
            return RunResult(0, b"")
        return self._run_handler(ns, argv, input, env or {})
