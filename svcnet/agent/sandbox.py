"""Pod sandboxes: a network namespace per pod, wired by CNI, plus the pod's own /etc files.

A ``hostNetwork: true`` pod has no namespace of its own and no CNI ADD, as under containerd
(the CRI's NamespaceMode NODE): its containers stay in the node's network namespace (the
agent's own), its IPs are the node's, its hostname is the node's, and its /etc/hosts is the
node's with the pod's host aliases appended (kubelet's ``nodeHostsFileContent``).

A pod's namespace is named ``<node netns>_<namespace>_<pod>_<uid>`` ("_" never appears in a
Kubernetes name, so the parts cannot run together, and every pod of a node is found by the
node's prefix when the node or the whole cluster is swept). Its /etc files live in
``/etc/netns/<that name>/`` because that is where `ip netns exec` looks for files to
bind-mount over /etc in the container's private mount namespace (see
:mod:`svcnet.dataplane.process`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from svcnet.dataplane.cni import Attachment, CniResult, CniRuntime, PortMapping
from svcnet.dataplane.netns import ETC_NETNS_DIR, NetnsOps, netns_path

_MAX_NETNS_NAME = 200  # NAME_MAX is 255; keep room for the temp files ip and we create


@dataclass(frozen=True)
class PodIdentity:
    namespace: str
    name: str
    uid: str
    hostname: str = ""  # spec.hostname; empty means the pod name
    subdomain: str = ""  # spec.subdomain: gives the FQDN <hostname>.<subdomain>.<ns>.svc.<domain>

    @property
    def effective_hostname(self) -> str:
        # kubelet truncates a pod name used as hostname to 63 characters (a DNS label).
        return (self.hostname or self.name)[:63].rstrip("-.")


@dataclass(frozen=True)
class SandboxSpec:
    pod: PodIdentity
    resolv_conf: str
    cluster_domain: str = "cluster.local"
    host_aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (ip, hostnames)
    port_mappings: tuple[PortMapping, ...] = ()
    host_network: bool = False


@dataclass(frozen=True)
class NodeNetwork:
    """What a hostNetwork pod takes from its node."""

    ips: tuple[str, ...]
    hostname: str
    hosts_file: str = "/etc/hosts"


# setns(2) into this is a no-op for the agent: where a hostNetwork pod's port-forward dials.
OWN_NETNS_PATH = "/proc/self/ns/net"


@dataclass(frozen=True)
class Sandbox:
    netns: str
    netns_path: str
    etc_dir: str
    pod_ips: tuple[str, ...]
    hostname: str
    container_id: str
    host_network: bool = False

    @property
    def pod_ip(self) -> str:
        return self.pod_ips[0]


def sandbox_netns_name(node_netns: str, namespace: str, name: str, uid: str) -> str:
    full = f"{node_netns}_{namespace}_{name}_{uid}"
    if len(full) <= _MAX_NETNS_NAME:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:16]
    return f"{node_netns}_{namespace[:40]}_{name[:60]}_{digest}"


def render_hosts(
    pod_ips: Sequence[str],
    hostname: str,
    fqdn: str = "",
    host_aliases: Sequence[tuple[str, Sequence[str]]] = (),
) -> str:
    """/etc/hosts as kubelet writes it (managedHostsFileContent)."""
    lines = [
        "# Kubernetes-managed hosts file.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::0\tip6-mcastprefix",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
    ]
    for ip in pod_ips:
        lines.append(f"{ip}\t{fqdn}\t{hostname}" if fqdn else f"{ip}\t{hostname}")
    out = "\n".join(lines) + "\n"
    if host_aliases:
        out += "\n# Entries added by HostAliases.\n"
        for ip, names in host_aliases:
            out += f"{ip}\t" + "\t".join(names) + "\n"
    return out


def render_node_hosts(node_hosts: str, host_aliases: Sequence[tuple[str, Sequence[str]]]) -> str:
    """/etc/hosts of a hostNetwork pod (kubelet's nodeHostsFileContent): the node's file, then
    the pod's host aliases."""
    out = node_hosts
    if host_aliases:
        if out and not out.endswith("\n"):
            out += "\n"
        out += "\n# Entries added by HostAliases.\n"
        for ip, names in host_aliases:
            out += f"{ip}\t" + "\t".join(names) + "\n"
    return out


def pod_fqdn(pod: PodIdentity, cluster_domain: str) -> str:
    if not pod.subdomain:
        return ""
    return f"{pod.effective_hostname}.{pod.subdomain}.{pod.namespace}.svc.{cluster_domain}"


class SandboxError(Exception):
    pass


class SandboxManager:
    """Creates and removes the sandboxes of one node."""

    def __init__(
        self,
        ops: NetnsOps,
        cni: CniRuntime,
        node_netns: str,
        etc_root: str = ETC_NETNS_DIR,
        node: NodeNetwork | None = None,
    ) -> None:
        self.ops = ops
        self.cni = cni
        self.node_netns = node_netns
        self.etc_root = etc_root
        self.node = node or NodeNetwork((), node_netns)

    def netns_name(self, pod: PodIdentity) -> str:
        return sandbox_netns_name(self.node_netns, pod.namespace, pod.name, pod.uid)

    def _attachment(self, spec: SandboxSpec) -> Attachment:
        name = self.netns_name(spec.pod)
        return Attachment(
            container_id=spec.pod.uid,
            netns=netns_path(name),
            pod_namespace=spec.pod.namespace,
            pod_name=spec.pod.name,
            pod_uid=spec.pod.uid,
            port_mappings=spec.port_mappings,
        )

    async def create(self, spec: SandboxSpec) -> Sandbox:
        """Namespace, CNI ADD, then the /etc files (the hosts file needs the pod IP)."""
        if spec.host_network:
            return await asyncio.to_thread(self._create_on_node, spec)
        name = self.netns_name(spec.pod)
        await asyncio.to_thread(self.ops.add_netns, name)
        try:
            result: CniResult = await self.cni.add(self._attachment(spec))
        except BaseException:
            await asyncio.to_thread(self.ops.delete_netns, name)
            raise
        etc_dir = os.path.join(self.etc_root, name)
        hostname = spec.pod.effective_hostname
        try:
            self._write_etc(etc_dir, spec, result.pod_ips, hostname)
        except OSError as e:
            await self.destroy(spec)
            raise SandboxError(f"writing /etc files of {name}: {e}") from e
        return Sandbox(
            netns=name,
            netns_path=netns_path(name),
            etc_dir=etc_dir,
            pod_ips=tuple(result.pod_ips),
            hostname=hostname,
            container_id=spec.pod.uid,
        )

    def _create_on_node(self, spec: SandboxSpec) -> Sandbox:
        """A hostNetwork pod's sandbox: only its /etc files (the directory keeps the name a
        namespace would have, so a sweep by the node's prefix finds it too)."""
        name = self.netns_name(spec.pod)
        etc_dir = os.path.join(self.etc_root, name)
        try:
            node_hosts = Path(self.node.hosts_file).read_text()
        except FileNotFoundError:
            node_hosts = ""
        try:
            self._write_etc(etc_dir, spec, self.node.ips, self.node.hostname, node_hosts)
        except OSError as e:
            shutil.rmtree(etc_dir, ignore_errors=True)
            raise SandboxError(f"writing /etc files of {name}: {e}") from e
        return Sandbox(
            netns="",
            netns_path=OWN_NETNS_PATH,
            etc_dir=etc_dir,
            pod_ips=self.node.ips,
            hostname=self.node.hostname,
            container_id=spec.pod.uid,
            host_network=True,
        )

    def _write_etc(
        self,
        etc_dir: str,
        spec: SandboxSpec,
        pod_ips: Sequence[str],
        hostname: str,
        node_hosts: str | None = None,
    ) -> None:
        os.makedirs(etc_dir, exist_ok=True)
        hosts = (
            render_node_hosts(node_hosts, spec.host_aliases)
            if node_hosts is not None
            else render_hosts(
                pod_ips, hostname, pod_fqdn(spec.pod, spec.cluster_domain), spec.host_aliases
            )
        )
        files = {"hosts": hosts, "resolv.conf": spec.resolv_conf, "hostname": hostname + "\n"}
        for fname, content in files.items():
            Path(etc_dir, fname).write_text(content)

    async def check(self, spec: SandboxSpec) -> None:
        """CNI CHECK: raises CniError when the pod's network is not as ADD left it."""
        if not spec.host_network:
            await self.cni.check(self._attachment(spec))

    async def destroy(self, spec: SandboxSpec) -> None:
        """CNI DEL, then the namespace and files. Safe to repeat."""
        name = self.netns_name(spec.pod)
        if spec.host_network:  # the node's namespace and its processes are not the pod's
            shutil.rmtree(os.path.join(self.etc_root, name), ignore_errors=True)
            return
        try:
            await self.cni.delete(self._attachment(spec))
        finally:
            await asyncio.to_thread(self._remove, name)

    def _remove(self, name: str) -> None:
        # A process left in the namespace would keep it (and its veth) alive, unnamed.
        self.ops.kill_all(name)
        self.ops.delete_netns(name)
        shutil.rmtree(os.path.join(self.etc_root, name), ignore_errors=True)

    def existing(self) -> list[str]:
        """Sandbox namespaces of this node that exist now (e.g. left by a previous agent)."""
        prefix = f"{self.node_netns}_"
        return [n for n in self.ops.list_netns() if n.startswith(prefix)]

    async def remove_orphan(self, name: str) -> None:
        """Remove a sandbox known only by its namespace name (left by a previous agent).

        The name carries namespace, pod and uid, so a CNI DEL can still release its address.
        """
        if not name.startswith(f"{self.node_netns}_"):
            raise SandboxError(f"{name} is not a sandbox of {self.node_netns}")
        parts = name[len(self.node_netns) + 1 :].split("_")
        if len(parts) == 3:
            namespace, pod, uid = parts
            attachment = Attachment(
                uid, netns_path(name), pod_namespace=namespace, pod_name=pod, pod_uid=uid
            )
            try:
                await self.cni.delete(attachment)
            finally:
                await asyncio.to_thread(self._remove, name)
        else:
            await asyncio.to_thread(self._remove, name)
