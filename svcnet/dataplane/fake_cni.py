"""A fake :class:`~svcnet.dataplane.cni.PluginExec` with the reference plugins' rules.

It answers as containernetworking-plugins 1.1 do, in the spec's wire format:
- ``bridge`` + ``host-local``: allocates round-robin from the range (the subnet without
  network, gateway (.1) and broadcast), one address per (container, ifname); a second ADD for
  the same container is refused; an exhausted range answers code 999 with host-local's
  "failed to allocate for range 0: no IP addresses available in range set: A-B"; DEL releases
  and is idempotent;
- ``portmap`` and ``loopback`` pass prevResult through; portmap records the mappings;
- a plugin that is not "installed" is not found; CHECK fails for a container never added.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from svcnet.dataplane.cni import ExecResult

INSTALLED = frozenset({"bridge", "host-local", "portmap", "loopback"})


def _error(code: int, msg: str) -> ExecResult:
    return ExecResult(1, json.dumps({"code": code, "msg": msg}).encode(), b"")


class FakePluginExec:
    def __init__(self, installed: frozenset[str] = INSTALLED) -> None:
        self.installed = installed
        self.calls: list[tuple[str, str, dict[str, Any]]] = []  # (type, command, stdin)
        self.allocations: dict[str, dict[tuple[str, str], str]] = {}  # subnet → (id, if) → ip
        self.port_mappings: dict[str, list[dict[str, Any]]] = {}
        self.last_reserved: dict[str, ipaddress.IPv4Address] = {}

    def find(self, plugin_type: str, plugin_dirs: Sequence[str]) -> str | None:
        if plugin_type in self.installed and plugin_dirs:
            return os.path.join(plugin_dirs[0], plugin_type)
        return None

    async def run(self, path: str, env: Mapping[str, str], stdin: bytes) -> ExecResult:
        conf = json.loads(stdin)
        ptype = os.path.basename(path)
        command = env["CNI_COMMAND"]
        self.calls.append((ptype, command, conf))
        for var in ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"):
            if not env.get(var) and not (command == "DEL" and var == "CNI_NETNS"):
                return _error(4, f"required env variables [{var}] missing")
        if ptype == "bridge":
            return self._bridge(command, conf, env)
        if ptype == "portmap":
            key = env["CNI_CONTAINERID"]
            if command == "ADD":
                mappings = conf.get("runtimeConfig", {}).get("portMappings", [])
                if mappings:
                    self.port_mappings[key] = mappings
            elif command == "DEL":
                self.port_mappings.pop(key, None)
        if command == "ADD":
            return ExecResult(0, json.dumps(conf.get("prevResult", {})).encode(), b"")
        return ExecResult(0, b"", b"")

    def _bridge(self, command: str, conf: dict[str, Any], env: Mapping[str, str]) -> ExecResult:
        ipam = conf.get("ipam", {})
        rng = ipam["ranges"][0][0]
        subnet = ipaddress.IPv4Network(rng["subnet"])  # IPv4 only, like svcnet today
        gateway = subnet.network_address + 1
        start = ipaddress.IPv4Address(rng.get("rangeStart", str(subnet.network_address + 1)))
        end = ipaddress.IPv4Address(rng.get("rangeEnd", str(subnet.broadcast_address - 1)))
        pool = self.allocations.setdefault(str(subnet), {})
        key = (env["CNI_CONTAINERID"], env["CNI_IFNAME"])
        if command == "DEL":
            pool.pop(key, None)
            return ExecResult(0, b"", b"")
        if command == "CHECK":
            if key not in pool:
                return _error(999, f"no IP addresses allocated for {key[0]}")
            return ExecResult(0, b"", b"")
        if key in pool:
            return _error(
                999,
                f"failed to allocate for range 0: {pool[key]} has been allocated to "
                f"{key[0]}, duplicate allocation is not allowed",
            )
        used = set(pool.values())
        # host-local is round-robin: it starts after the last address it handed out (its
        # last_reserved_ip file), wrapping at the end of the range.
        last = self.last_reserved.get(str(subnet))
        candidates = [start + i for i in range(int(end) - int(start) + 1)]
        if last is not None and last in candidates:
            k = candidates.index(last) + 1
            candidates = candidates[k:] + candidates[:k]
        free = [a for a in candidates if a != gateway and str(a) not in used]
        if free:
            addr = free[0]
            self.last_reserved[str(subnet)] = addr
        else:
            return _error(
                999,
                "failed to allocate for range 0: no IP addresses available in range set: "
                f"{start}-{end}",
            )
        pool[key] = str(addr)
        result = {
            "cniVersion": conf["cniVersion"],
            "interfaces": [
                {"name": conf.get("bridge", "cni0"), "mac": "02:00:00:00:00:01"},
                {"name": "veth0", "mac": "02:00:00:00:00:02"},
                {
                    "name": env["CNI_IFNAME"],
                    "mac": "02:00:00:00:00:03",
                    "sandbox": env["CNI_NETNS"],
                },
            ],
            "ips": [
                {"interface": 2, "address": f"{addr}/{subnet.prefixlen}", "gateway": str(gateway)}
            ],
            "routes": ipam.get("routes", []),
            "dns": {},
        }
        return ExecResult(0, json.dumps(result).encode(), b"")
