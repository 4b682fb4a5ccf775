"""A CNI runtime (spec 1.0.0): conflist loading, plugin execution, prevResult chaining.

What svcnet's own conflist says, and why (:func:`default_conflist`):
- ``bridge`` ``cni0`` with ``isGateway`` (the bridge holds the pod CIDR's .1 and pods route
  through it) and ``hairpinMode`` (a pod reaching itself through a ClusterIP comes back on the
  port it left from);
- ``ipMasq: false``: pod-to-pod traffic between nodes must keep the sender's pod IP (the flat
  network has routes between nodes; NAT would hide the client), and there is no outside world
  to masquerade towards — the cluster is sealed;
- ``host-local`` IPAM over the node's podCIDR, with its lease files in the node's own state
  dir so two nodes never share an allocator;
- ``portmap`` (capability ``portMappings``) for hostPort; ``loopback`` last, it passes the
  chain's result through.

The conf dir is the node's own; the first ``*.conflist`` in name order wins, as in kubelet and
containerd, so a user's ``00-mine.conflist`` replaces svcnet's ``10-svcnet.conflist``.

Plugins run inside the node's network namespace, because the bridge and the IPAM state
belong to the node. They join it with ``nsenter --net`` rather than ``ip netns exec``: the
reference plugins use netlink and /proc/sys/net (both per network namespace) and never /sys,
and ``ip netns exec`` copies the whole mount table (one mount per pod namespace) on every
call, which made sandbox creation slow down as pods accumulated. A failed ADD is followed by a DEL of the whole chain, as
container runtimes do, so no half-made veth is left on the bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from svcnet.dataplane.netns import net_only_prefix

CNI_VERSION = "1.0.0"
DEFAULT_PLUGIN_DIRS: tuple[str, ...] = ("/usr/lib/cni", "/opt/cni/bin")
SVCNET_CONFLIST = "10-svcnet.conflist"
NETWORK_NAME = "svcnet"

# Spec error codes (CNI SPEC.md "Error"); plugins may use 100+ for their own.
ERR_INCOMPATIBLE_VERSION = 1
ERR_UNSUPPORTED_FIELD = 2
ERR_UNKNOWN_CONTAINER = 3
ERR_INVALID_ENV = 4
ERR_IO = 5
ERR_DECODE = 6
ERR_INVALID_CONFIG = 7
ERR_TRY_AGAIN = 11


class CniError(Exception):
    """A plugin failed; ``code``/``msg``/``details`` are the spec's error fields."""

    def __init__(self, code: int, msg: str, details: str = "", plugin: str = "") -> None:
        self.code = code
        self.msg = msg
        self.details = details
        self.plugin = plugin
        text = f"plugin type={plugin!r} failed: {msg}" if plugin else msg
        super().__init__(text + (f" ({details})" if details else ""))


class IpamExhausted(CniError):
    """host-local has no free address left in the node's podCIDR."""


class PluginNotFound(CniError):
    pass


class ConfigError(CniError):
    pass


@dataclass(frozen=True)
class PortMapping:
    host_port: int
    container_port: int
    protocol: str = "tcp"  # lower case, as the portmap plugin expects
    host_ip: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "hostPort": self.host_port,
            "containerPort": self.container_port,
            "protocol": self.protocol.lower(),
        }
        if self.host_ip:
            out["hostIP"] = self.host_ip
        return out


@dataclass(frozen=True)
class Attachment:
    """The runtime's side of one ADD/DEL/CHECK: which container, which namespace."""

    container_id: str
    netns: str  # path, e.g. /run/netns/<name>
    ifname: str = "eth0"
    pod_namespace: str = ""
    pod_name: str = ""
    pod_uid: str = ""
    port_mappings: tuple[PortMapping, ...] = ()

    def cni_args(self) -> str:
        # kubelet's dockershim/CRI pass these; IgnoreUnknown lets plugins that do not know
        # K8S_* keys accept them.
        pairs = [
            ("IgnoreUnknown", "1"),
            ("K8S_POD_NAMESPACE", self.pod_namespace),
            ("K8S_POD_NAME", self.pod_name),
            ("K8S_POD_INFRA_CONTAINER_ID", self.container_id),
            ("K8S_POD_UID", self.pod_uid),
        ]
        return ";".join(f"{k}={v}" for k, v in pairs if v)


@dataclass(frozen=True)
class IPConfig:
    address: str  # CIDR, e.g. 10.244.1.5/24
    gateway: str | None = None
    interface: int | None = None

    @property
    def ip(self) -> str:
        return str(ipaddress.ip_interface(self.address).ip)

    @property
    def family(self) -> int:
        return ipaddress.ip_interface(self.address).version


@dataclass(frozen=True)
class CniResult:
    cni_version: str
    ips: tuple[IPConfig, ...]
    interfaces: tuple[dict[str, Any], ...] = ()
    routes: tuple[dict[str, Any], ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def pod_ips(self) -> list[str]:
        """IPv4 first, then IPv6, as kubelet orders status.podIPs."""
        return [i.ip for i in sorted(self.ips, key=lambda c: c.family)]


@dataclass(frozen=True)
class NetworkConfigList:
    name: str
    cni_version: str
    plugins: tuple[dict[str, Any], ...]
    source: str = ""


# -- pure: configuration -------------------------------------------------------------------
def default_conflist(pod_cidr: str, ipam_data_dir: str, bridge: str = "cni0") -> dict[str, Any]:
    return {
        "cniVersion": CNI_VERSION,
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_data_dir,
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "loopback"},
        ],
    }


def parse_conflist(text: str, source: str = "") -> NetworkConfigList:
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ConfigError(ERR_DECODE, f"{source}: invalid JSON: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(ERR_INVALID_CONFIG, f"{source}: not a JSON object")
    if "plugins" in data:
        plugins = data["plugins"]
    elif "type" in data:  # a single-plugin .conf file
        plugins = [{k: v for k, v in data.items() if k not in ("name", "cniVersion")}]
    else:
        raise ConfigError(ERR_INVALID_CONFIG, f"{source}: no plugins")
    if not isinstance(plugins, list) or not plugins:
        raise ConfigError(ERR_INVALID_CONFIG, f"{source}: plugins must be a non-empty list")
    for p in plugins:
        if not isinstance(p, dict) or not isinstance(p.get("type"), str):
            raise ConfigError(ERR_INVALID_CONFIG, f"{source}: every plugin needs a type")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(ERR_INVALID_CONFIG, f"{source}: missing network name")
    return NetworkConfigList(
        name=name,
        cni_version=str(data.get("cniVersion", CNI_VERSION)),
        plugins=tuple(plugins),
        source=source,
    )


def write_default_conflist(conf_dir: str, pod_cidr: str, ipam_data_dir: str) -> str:
    """(Re)write svcnet's conflist; a user's file that sorts first still wins."""
    os.makedirs(conf_dir, exist_ok=True)
    path = os.path.join(conf_dir, SVCNET_CONFLIST)
    tmp = path + ".tmp"
    Path(tmp).write_text(json.dumps(default_conflist(pod_cidr, ipam_data_dir), indent=2))
    os.replace(tmp, path)
    return path


def load_conflist(conf_dir: str) -> NetworkConfigList:
    try:
        names = sorted(
            n for n in os.listdir(conf_dir) if n.endswith((".conflist", ".conf", ".json"))
        )
    except FileNotFoundError:
        names = []
    if not names:
        raise ConfigError(ERR_INVALID_CONFIG, f"no CNI network config found in {conf_dir}")
    path = os.path.join(conf_dir, names[0])
    return parse_conflist(Path(path).read_text(), source=path)


def plugin_stdin(
    net: NetworkConfigList,
    plugin: Mapping[str, Any],
    attachment: Attachment,
    prev_result: Mapping[str, Any] | None,
) -> bytes:
    """One plugin's stdin: its config plus name, cniVersion, runtimeConfig and prevResult."""
    conf: dict[str, Any] = dict(plugin)
    conf["name"] = net.name
    conf["cniVersion"] = net.cni_version
    caps = plugin.get("capabilities") or {}
    runtime: dict[str, Any] = {}
    if caps.get("portMappings") and attachment.port_mappings:
        runtime["portMappings"] = [p.to_json() for p in attachment.port_mappings]
    if runtime:
        conf["runtimeConfig"] = runtime
    conf.pop("capabilities", None)
    if prev_result is not None:
        conf["prevResult"] = dict(prev_result)
    return json.dumps(conf).encode()


def plugin_env(command: str, attachment: Attachment, plugin_dirs: Sequence[str]) -> dict[str, str]:
    return {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": attachment.container_id,
        "CNI_NETNS": attachment.netns,
        "CNI_IFNAME": attachment.ifname,
        "CNI_ARGS": attachment.cni_args(),
        "CNI_PATH": os.pathsep.join(plugin_dirs),
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        # The standard plugins are Go programs that live a few milliseconds: one scheduler
        # thread (not one per core) cuts their runtime start by ~1 ms CPU each, ~4 ms per
        # pod's ADD chain (measured on the 2-core machine); what they do is unchanged.
        "GOMAXPROCS": "1",
    }


def parse_result(stdout: bytes) -> CniResult:
    try:
        data = json.loads(stdout or b"{}")
    except ValueError as e:
        raise CniError(ERR_DECODE, f"plugin output is not JSON: {e}") from e
    ips = tuple(
        IPConfig(
            address=str(i["address"]),
            gateway=i.get("gateway"),
            interface=i.get("interface"),
        )
        for i in data.get("ips", [])
    )
    return CniResult(
        cni_version=str(data.get("cniVersion", CNI_VERSION)),
        ips=ips,
        interfaces=tuple(data.get("interfaces", [])),
        routes=tuple(data.get("routes", [])),
        raw=data,
    )


def parse_error(plugin: str, returncode: int, stdout: bytes, stderr: bytes) -> CniError:
    """A failed plugin's error JSON (stdout, per spec) as a typed error."""
    try:
        data = json.loads(stdout)
        code = int(data.get("code", 999))
        msg = str(data.get("msg", ""))
        details = str(data.get("details", ""))
    except (ValueError, AttributeError, TypeError):
        code, details = 999, ""
        msg = (stderr or stdout).decode(errors="replace").strip() or f"exit status {returncode}"
    cls: type[CniError] = CniError
    if "no IP addresses available in range set" in msg:
        cls = IpamExhausted
        # host-local says "failed to allocate for range 0: no IP addresses ..."; the tail is
        # the part that tells a user what ran out.
        msg = msg[msg.index("no IP addresses available") :]
    elif code in (ERR_INVALID_CONFIG, ERR_DECODE):
        cls = ConfigError
    return cls(code, msg, details, plugin)


# -- I/O: running plugins -----------------------------------------------------------------
@dataclass(frozen=True)
class ExecResult:
    returncode: int
    stdout: bytes
    stderr: bytes


class PluginExec(Protocol):
    """Runs one plugin binary with env and stdin; the fake implements the plugins' rules."""

    async def run(self, path: str, env: Mapping[str, str], stdin: bytes) -> ExecResult: ...

    def find(self, plugin_type: str, plugin_dirs: Sequence[str]) -> str | None: ...


class NetnsPluginExec:
    """Runs plugins inside a node's network namespace (None: the current one)."""

    def __init__(self, netns: str | None, timeout: float = 30.0) -> None:
        self.netns = netns
        self.timeout = timeout

    def find(self, plugin_type: str, plugin_dirs: Sequence[str]) -> str | None:
        for d in plugin_dirs:
            path = os.path.join(d, plugin_type)
            if os.access(path, os.X_OK):
                return path
        return None

    async def run(self, path: str, env: Mapping[str, str], stdin: bytes) -> ExecResult:
        proc = await asyncio.create_subprocess_exec(
            *net_only_prefix(self.netns),
            path,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), self.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return ExecResult(-9, b"", f"timed out after {self.timeout}s".encode())
        return ExecResult(proc.returncode or 0, out, err)


class CniRuntime:
    """ADD/DEL/CHECK of one network config list for the pods of one node."""

    def __init__(
        self,
        conf_dir: str,
        cache_dir: str,
        executor: PluginExec,
        plugin_dirs: Sequence[str] = DEFAULT_PLUGIN_DIRS,
    ) -> None:
        self.conf_dir = conf_dir
        self.cache_dir = cache_dir
        self.executor = executor
        self.plugin_dirs = tuple(plugin_dirs)

    def _cache_path(self, net: NetworkConfigList, a: Attachment) -> str:
        # libcni keeps the ADD result so DEL and CHECK can pass it as prevResult.
        return os.path.join(self.cache_dir, f"{net.name}-{a.container_id}-{a.ifname}.json")

    async def _invoke(
        self,
        command: str,
        net: NetworkConfigList,
        plugin: Mapping[str, Any],
        a: Attachment,
        prev: Mapping[str, Any] | None,
    ) -> bytes:
        ptype = str(plugin["type"])
        path = self.executor.find(ptype, self.plugin_dirs)
        if path is None:
            raise PluginNotFound(
                ERR_INVALID_CONFIG,
                f'failed to find plugin "{ptype}" in path {list(self.plugin_dirs)}',
                plugin=ptype,
            )
        res = await self.executor.run(
            path, plugin_env(command, a, self.plugin_dirs), plugin_stdin(net, plugin, a, prev)
        )
        if res.returncode != 0:
            raise parse_error(ptype, res.returncode, res.stdout, res.stderr)
        return res.stdout

    async def add(self, a: Attachment) -> CniResult:
        net = load_conflist(self.conf_dir)
        prev: dict[str, Any] | None = None
        try:
            for plugin in net.plugins:
                out = await self._invoke("ADD", net, plugin, a, prev)
                prev = json.loads(out) if out.strip() else prev
        except CniError:
            await self._delete(net, a, prev)
            raise
        result = parse_result(json.dumps(prev or {}).encode())
        if not result.ips:
            await self._delete(net, a, prev)
            raise CniError(ERR_INVALID_CONFIG, "the CNI chain returned no IP address")
        os.makedirs(self.cache_dir, exist_ok=True)
        Path(self._cache_path(net, a)).write_text(json.dumps(prev))
        return result

    async def delete(self, a: Attachment) -> None:
        """DEL in reverse order; repeating it, or DEL of an unknown container, succeeds."""
        net = load_conflist(self.conf_dir)
        prev: dict[str, Any] | None = None
        with contextlib.suppress(OSError, ValueError):
            prev = json.loads(Path(self._cache_path(net, a)).read_text())
        await self._delete(net, a, prev, raise_errors=True)

    async def _delete(
        self,
        net: NetworkConfigList,
        a: Attachment,
        prev: Mapping[str, Any] | None,
        raise_errors: bool = False,
    ) -> None:
        first: CniError | None = None
        for plugin in reversed(net.plugins):
            try:
                await self._invoke("DEL", net, plugin, a, prev)
            except CniError as e:
                first = first or e
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._cache_path(net, a))
        if first is not None and raise_errors:
            raise first

    async def check(self, a: Attachment) -> None:
        net = load_conflist(self.conf_dir)
        try:
            prev = json.loads(Path(self._cache_path(net, a)).read_text())
        except (OSError, ValueError) as e:
            raise CniError(ERR_UNKNOWN_CONTAINER, f"no cached result for {a.container_id}") from e
        for plugin in net.plugins:
            await self._invoke("CHECK", net, plugin, a, prev)
