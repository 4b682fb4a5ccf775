"""Network namespaces, links, addresses, routes and sysctls: the kernel edge of the node plane.

Why iproute2 commands and not pyroute2: `ip netns add` does more than create a namespace (it
bind-mounts the namespace file under /run/netns so it outlives every process, and `ip netns
exec` bind-mounts /etc/netns/<name>/ and remounts /sys for it); doing the same with pyroute2
means re-implementing those mounts. The `ip` binary is the reference every operator uses to
inspect the result, its JSON output (`-j`) is stable, and each call is a few milliseconds.

:class:`NetnsOps` is the interface; :class:`IpRoute2` drives the real kernel and
:class:`svcnet.dataplane.fake_netns.FakeNetns` keeps the same rules in memory for unit tests.
A namespace argument of ``None`` means the machine's own (root) namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

NETNS_DIR = "/run/netns"
ETC_NETNS_DIR = "/etc/netns"


class NetnsError(Exception):
    """A kernel or iproute2 operation failed; ``detail`` is what the kernel said."""

    def __init__(self, op: str, detail: str) -> None:
        super().__init__(f"{op}: {detail}")
        self.op = op
        self.detail = detail


class NotFound(NetnsError):
    """The namespace, link or route named does not exist."""


class AlreadyExists(NetnsError):
    """The namespace, link, address or route already exists."""


class RouteType(Enum):
    UNICAST = "unicast"
    UNREACHABLE = "unreachable"
    BLACKHOLE = "blackhole"


@dataclass(frozen=True)
class Route:
    """One IPv4/IPv6 route of the main table. ``dst`` is a CIDR ("default" is 0.0.0.0/0)."""

    dst: str
    via: str | None = None
    dev: str | None = None
    type: RouteType = RouteType.UNICAST
    metric: int | None = None

    def argv(self) -> list[str]:
        """The `ip route` arguments that name this route."""
        out: list[str] = [] if self.type is RouteType.UNICAST else [self.type.value]
        out.append(self.dst)
        if self.via:
            out += ["via", self.via]
        if self.dev:
            out += ["dev", self.dev]
        if self.metric is not None:
            out += ["metric", str(self.metric)]
        return out


@dataclass(frozen=True)
class Link:
    name: str
    kind: str  # "veth", "bridge", "loopback", "" for a plain device
    up: bool
    master: str | None = None
    addresses: tuple[str, ...] = ()  # CIDRs, e.g. "172.18.0.11/16"


@dataclass(frozen=True)
class RouteLookup:
    """What `ip route get` answers: how the kernel would send a packet to one address."""

    dst: str
    type: RouteType
    via: str | None = None
    dev: str | None = None


@dataclass(frozen=True)
class RunResult:
    returncode: int
    stdout: bytes
    stderr: bytes = field(repr=False, default=b"")


class NetnsOps(Protocol):
    """Everything svcnet does to namespaces and links. ``ns=None`` is the root namespace."""

    def list_netns(self) -> list[str]: ...
    def add_netns(self, name: str) -> None: ...
    def delete_netns(self, name: str) -> None:
        """Remove the namespace; its links go with it (and the peers of its veths)."""
        ...

    def kill_all(self, name: str) -> list[int]:
        """SIGKILL every process inside the namespace; return their PIDs.

        Deleting a namespace's name does not end the processes in it (they keep the namespace
        alive, unnamed), so whoever removes a namespace for good kills them first.
        """
        ...

    def remove_etc(self, name: str) -> bool:
        """Remove the namespace's /etc/netns/<name>/ (the files `ip netns exec` bind-mounts
        over /etc); whether it existed. Part of the interface so that code tested over the
        fake never touches the machine's /etc/netns, where a running cluster keeps its pods'."""
        ...

    def add_bridge(self, ns: str | None, name: str) -> None: ...
    def add_veth(self, ns: str | None, name: str, peer_ns: str | None, peer_name: str) -> None: ...
    def delete_link(self, ns: str | None, name: str) -> None: ...
    def set_up(self, ns: str | None, name: str) -> None: ...
    def set_master(self, ns: str | None, name: str, master: str) -> None: ...
    def add_address(self, ns: str | None, link: str, cidr: str) -> None: ...
    def list_links(self, ns: str | None) -> list[Link]: ...
    def add_route(self, ns: str | None, route: Route) -> None:
        """Add the route; AlreadyExists when one with the same dst and metric is there (the
        kernel's key for a route of the main table: type, gateway and device are not in it)."""
        ...

    def replace_route(self, ns: str | None, route: Route) -> None:
        """Add the route, or replace the one with the same dst, type and metric."""
        ...

    def replace_routes(self, ns: str | None, routes: Sequence[Route]) -> None:
        """:meth:`replace_route` for each, in order, as one command: a node of a 100-node
        cluster has a route per other node, and ten thousand `ip` processes were most of
        `svcnet up`'s time."""
        ...

    def delete_route(self, ns: str | None, route: Route) -> None: ...
    def list_routes(self, ns: str | None) -> list[Route]: ...
    def route_get(self, ns: str | None, dst: str) -> RouteLookup: ...
    def set_sysctl(self, ns: str | None, key: str, value: str) -> None: ...
    def set_sysctls(self, ns: str | None, values: Sequence[tuple[str, str]]) -> None:
        """:meth:`set_sysctl` for each, as one command; keys the kernel lacks are skipped."""
        ...

    def get_sysctl(self, ns: str | None, key: str) -> str | None: ...
    def run(
        self,
        ns: str | None,
        argv: Sequence[str],
        *,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> RunResult:
        """Run a command inside the namespace (as `ip netns exec` does) and wait for it."""
        ...


def netns_path(name: str) -> str:
    return os.path.join(NETNS_DIR, name)


def exec_prefix(ns: str | None) -> list[str]:
    """The argv prefix that runs a command inside ``ns`` (as `ip netns exec` does).

    `ip netns exec` also remounts /sys for the namespace, so tools that read
    /sys/class/net see the namespace's own links; it costs a private copy of the mount table,
    which grows with every named namespace. Use :func:`net_only_prefix` where only the
    network namespace matters.
    """
    return [] if ns is None else ["ip", "netns", "exec", ns]


def net_only_prefix(ns: str | None) -> list[str]:
    """Join only the network namespace: cheap, and constant-time however many pods exist."""
    return [] if ns is None else ["nsenter", f"--net={netns_path(ns)}", "--"]


_CLONE_NEWNET = 0x40000000
_MS_BIND = 0x1000


def _add_netns_in_thread(name: str) -> bool:
    """`ip netns add` without an exec, once /run/netns is set up; False to let ip do it.

    The same steps as iproute2's netns_add: create the file, unshare(CLONE_NEWNET) and
    bind-mount the new namespace onto the file. The unshare is done by a thread of ours made
    for it alone — a network namespace is per thread, so the rest of the process stays where it
    is, and the thread exits with the namespace kept alive by the mount. The first namespace of
    the machine is left to ip, which also makes /run/netns the shared mount point this needs
    (a pod start saves ~2 ms CPU and a process spawn: the agent creates one per pod).
    """
    path = netns_path(name)
    if not _netns_dir_is_mounted():
        return False
    op = f"netns add {name}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0)
    except FileExistsError:
        raise AlreadyExists(op, f'Cannot create namespace file "{path}": File exists') from None
    except OSError as e:
        raise NetnsError(op, f'Cannot create namespace file "{path}": {e.strerror}') from e
    os.close(fd)
    errors: list[str] = []
    worker = threading.Thread(target=_unshare_and_bind, args=(path, errors), name="netns-add")
    worker.start()
    worker.join()
    if errors:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise NetnsError(op, errors[0])
    return True


_netns_dir_mounted = False


def _netns_dir_is_mounted() -> bool:
    """Whether /run/netns is a mount point (ip makes it a bind mount of itself, which
    os.path.ismount cannot see: same device, same inode). Once it is, it stays one."""
    global _netns_dir_mounted
    if not _netns_dir_mounted:
        try:
            with open("/proc/self/mountinfo") as f:
                _netns_dir_mounted = any(line.split()[4] == NETNS_DIR for line in f)
        except OSError:
            return False
    return _netns_dir_mounted


def _unshare_and_bind(path: str, errors: list[str]) -> None:
    import ctypes  # here: only a process that creates namespaces pays for it

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNET) != 0:
        errors.append(
            f"Failed to create a new network namespace: {os.strerror(ctypes.get_errno())}"
        )
        return
    src = b"/proc/thread-self/ns/net"
    if libc.mount(src, path.encode(), b"none", _MS_BIND, None) != 0:
        errors.append(f"Bind /proc/self/ns/net -> {path} failed: {os.strerror(ctypes.get_errno())}")


def _classify(op: str, stderr: str) -> NetnsError:
    text = stderr.strip()
    low = text.lower()
    if "file exists" in low or "already exists" in low:
        return AlreadyExists(op, text)
    if (
        "no such file" in low
        or "cannot find device" in low
        or "no such process" in low
        or "does not exist" in low
    ):
        return NotFound(op, text)
    return NetnsError(op, text)


def _route_from_json(entry: Mapping[str, object]) -> Route:
    dst = str(entry.get("dst", ""))
    if dst == "default":
        dst = "0.0.0.0/0"
    elif "/" not in dst:
        dst = f"{dst}/32" if ":" not in dst else f"{dst}/128"
    rtype = str(entry.get("type", "unicast"))
    metric = entry.get("metric")
    gateway = entry.get("gateway")
    dev = entry.get("dev")
    return Route(
        dst=dst,
        via=str(gateway) if gateway else None,
        dev=str(dev) if dev else None,
        type=RouteType(rtype) if rtype in {t.value for t in RouteType} else RouteType.UNICAST,
        metric=int(str(metric)) if metric is not None else None,
    )


class IpRoute2:
    """:class:`NetnsOps` over the `ip` command (iproute2 6.x, JSON output)."""

    def __init__(self, ip: str = "ip") -> None:
        self._ip = ip

    def _ip_cmd(self, ns: str | None, args: Sequence[str], op: str) -> str:
        argv = [self._ip] + (["-n", ns] if ns is not None else []) + list(args)
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise _classify(op, proc.stderr or proc.stdout)
        return proc.stdout

    def list_netns(self) -> list[str]:
        # /run/netns is the source of truth `ip netns list` reads; listing it directly also
        # sees namespaces whose bind mount is gone but whose file is left over after a crash.
        try:
            return sorted(os.listdir(NETNS_DIR))
        except FileNotFoundError:
            return []

    def add_netns(self, name: str) -> None:
        if not _add_netns_in_thread(name):
            self._ip_cmd(None, ["netns", "add", name], f"netns add {name}")

    def delete_netns(self, name: str) -> None:
        with contextlib.suppress(NotFound):
            self._ip_cmd(None, ["netns", "delete", name], f"netns delete {name}")

    def kill_all(self, name: str) -> list[int]:
        try:
            out = self._ip_cmd(None, ["netns", "pids", name], f"netns pids {name}")
        except NetnsError:
            return []
        pids = [int(p) for p in out.split() if p.isdigit() and int(p) != os.getpid()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids

    def remove_etc(self, name: str) -> bool:
        path = os.path.join(ETC_NETNS_DIR, name)
        if not os.path.isdir(path):
            return False
        shutil.rmtree(path, ignore_errors=True)
        return True

    def add_bridge(self, ns: str | None, name: str) -> None:
        self._ip_cmd(ns, ["link", "add", name, "type", "bridge"], f"add bridge {name}")

    def add_veth(self, ns: str | None, name: str, peer_ns: str | None, peer_name: str) -> None:
        peer: list[str] = ["peer", "name", peer_name]
        if peer_ns is not None:
            peer += ["netns", peer_ns]
        elif ns is not None:
            peer += ["netns", "1"]  # pid 1 lives in the root namespace
        self._ip_cmd(ns, ["link", "add", name, "type", "veth", *peer], f"add veth {name}")

    def delete_link(self, ns: str | None, name: str) -> None:
        with contextlib.suppress(NotFound):
            self._ip_cmd(ns, ["link", "delete", name], f"delete link {name}")

    def set_up(self, ns: str | None, name: str) -> None:
        self._ip_cmd(ns, ["link", "set", name, "up"], f"set {name} up")

    def set_master(self, ns: str | None, name: str, master: str) -> None:
        self._ip_cmd(ns, ["link", "set", name, "master", master], f"set {name} master {master}")

    def add_address(self, ns: str | None, link: str, cidr: str) -> None:
        with contextlib.suppress(AlreadyExists):
            self._ip_cmd(ns, ["addr", "add", cidr, "dev", link], f"add {cidr} to {link}")

    def list_links(self, ns: str | None) -> list[Link]:
        out = self._ip_cmd(ns, ["-j", "-d", "addr", "show"], "list links")
        links = []
        for entry in json.loads(out or "[]"):
            info = entry.get("linkinfo") or {}
            kind = str(info.get("info_kind", "loopback" if entry.get("ifname") == "lo" else ""))
            addrs = tuple(
                f"{a['local']}/{a['prefixlen']}"
                for a in entry.get("addr_info", [])
                if a.get("family") == "inet"
            )
            links.append(
                Link(
                    name=str(entry["ifname"]),
                    kind=kind,
                    up="UP" in entry.get("flags", []),
                    master=entry.get("master"),
                    addresses=addrs,
                )
            )
        return links

    def add_route(self, ns: str | None, route: Route) -> None:
        self._ip_cmd(ns, ["route", "add", *route.argv()], f"route add {route.dst}")

    def replace_route(self, ns: str | None, route: Route) -> None:
        self._ip_cmd(ns, ["route", "replace", *route.argv()], f"route replace {route.dst}")

    def replace_routes(self, ns: str | None, routes: Sequence[Route]) -> None:
        if not routes:
            return
        argv = [self._ip] + (["-n", ns] if ns is not None else []) + ["-batch", "-"]
        script = "".join(f"route replace {' '.join(r.argv())}\n" for r in routes)
        proc = subprocess.run(argv, input=script, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            # ip stops at the first failing line and names it ("Command failed -:N").
            raise _classify(f"route replace ({len(routes)} routes)", proc.stderr or proc.stdout)

    def delete_route(self, ns: str | None, route: Route) -> None:
        with contextlib.suppress(NotFound):
            self._ip_cmd(ns, ["route", "delete", *route.argv()], f"route delete {route.dst}")

    def list_routes(self, ns: str | None) -> list[Route]:
        out = self._ip_cmd(ns, ["-j", "route", "show", "table", "main"], "list routes")
        return [_route_from_json(e) for e in json.loads(out or "[]")]

    def route_get(self, ns: str | None, dst: str) -> RouteLookup:
        argv = [self._ip] + (["-n", ns] if ns is not None else []) + ["-j", "route", "get", dst]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            low = proc.stderr.lower()
            if "unreachable" in low or "no route" in low:
                return RouteLookup(dst=dst, type=RouteType.UNREACHABLE)
            if "invalid argument" in low:  # what the kernel answers for a blackhole route
                return RouteLookup(dst=dst, type=RouteType.BLACKHOLE)
            raise _classify(f"route get {dst}", proc.stderr)
        entry = json.loads(proc.stdout)[0]
        rtype = str(entry.get("type", "unicast"))
        return RouteLookup(
            dst=dst,
            type=RouteType(rtype) if rtype in {t.value for t in RouteType} else RouteType.UNICAST,
            via=entry.get("gateway"),
            dev=entry.get("dev"),
        )

    def set_sysctl(self, ns: str | None, key: str, value: str) -> None:
        # /proc/sys/net belongs to the namespace of the process that opens it, so the write
        # must happen from inside the namespace.
        res = self.run(ns, ["sysctl", "-q", "-w", f"{key}={value}"])
        if res.returncode != 0:
            raise _classify(f"sysctl {key}", res.stderr.decode(errors="replace"))

    def set_sysctls(self, ns: str | None, values: Sequence[tuple[str, str]]) -> None:
        # nsenter --net, not `ip netns exec`: /proc/sys/net only needs the network namespace,
        # and ip's private mount table copy grows with every namespace on the machine.
        argv = [*net_only_prefix(ns), "sysctl", "-e", "-q", "-w"]
        res = subprocess.run(
            argv + [f"{k}={v}" for k, v in values], capture_output=True, check=False
        )
        if res.returncode != 0:
            raise _classify("sysctl", res.stderr.decode(errors="replace"))

    def get_sysctl(self, ns: str | None, key: str) -> str | None:
        res = self.run(ns, ["sysctl", "-n", key])
        if res.returncode != 0:
            return None
        return res.stdout.decode().strip()

    def run(
        self,
        ns: str | None,
        argv: Sequence[str],
        *,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> RunResult:
        proc = subprocess.run(
            [*exec_prefix(ns), *argv],
            input=input,
            capture_output=True,
            env=dict(env) if env is not None else None,
            timeout=timeout,
            check=False,
        )
        return RunResult(proc.returncode, proc.stdout, proc.stderr)
