"""Pods as real processes in real namespaces on a two-node underlay, with real traffic.

Ranges: see conftest (a random /24 of 172.31.0.0/16 underlay, pods in 10.224.0.0/12).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from svcnet.agent import crilog
from svcnet.agent.images import ensure_bin_dir, resolve_command
from svcnet.agent.sandbox import PodIdentity, Sandbox, SandboxManager, SandboxSpec
from svcnet.cluster.underlay import NodeNet, Underlay, UnderlayConfig, sweep
from svcnet.dataplane.cni import CniRuntime, IpamExhausted, NetnsPluginExec, write_default_conflist
from svcnet.dataplane.netns import IpRoute2, RouteType
from svcnet.dataplane.process import (
    DEFAULT_PATH,
    NamespaceProcessRunner,
    ProcessSpec,
    RunningProcess,
    command_for_exec,
)
from svcnet.testing.polling import eventually

pytestmark = pytest.mark.e2e
RESOLV = "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"


@dataclass
class Cluster:
    config: UnderlayConfig
    ops: IpRoute2
    underlay: Underlay
    workdir: Path
    managers: dict[int, SandboxManager] = field(default_factory=dict)
    pods: list[tuple[SandboxManager, SandboxSpec]] = field(default_factory=list)
    procs: list[RunningProcess] = field(default_factory=list)
    runner: NamespaceProcessRunner = field(default_factory=NamespaceProcessRunner)

    def manager(self, node: NodeNet) -> SandboxManager:
        if node.index not in self.managers:
            base = self.workdir / node.name
            conf_dir = str(base / "net.d")
            write_default_conflist(conf_dir, node.pod_cidr, str(base / "ipam"))
            cni = CniRuntime(conf_dir, str(base / "cache"), NetnsPluginExec(node.netns))
            self.managers[node.index] = SandboxManager(self.ops, cni, node.netns)
        return self.managers[node.index]

    async def pod(self, node: NodeNet, name: str) -> Sandbox:
        mgr = self.manager(node)
        spec = SandboxSpec(
            PodIdentity("default", name, f"uid-{name}-{os.urandom(4).hex()}"), RESOLV
        )
        self.pods.append((mgr, spec))
        return await mgr.create(spec)

    async def run(self, box: Sandbox, argv: tuple[str, ...], log: str) -> RunningProcess:
        bin_dir = ensure_bin_dir(str(self.workdir / "bin"))
        proc = await self.runner.start(
            ProcessSpec(
                argv=argv,
                netns=box.netns,
                hostname=box.hostname,
                log_path=str(self.workdir / "logs" / log),
                env={"PATH": f"{bin_dir}:{DEFAULT_PATH}", "POD_NAME": box.hostname},
            )
        )
        self.procs.append(proc)
        return proc


@pytest.fixture
async def cluster(e2e_config: UnderlayConfig, tmp_path: Path) -> AsyncIterator[Cluster]:
    ops = IpRoute2()
    underlay = Underlay(ops, e2e_config)
    c = Cluster(e2e_config, ops, underlay, tmp_path)
    try:
        underlay.create(2)
        yield c
    finally:
        for proc in c.procs:
            await proc.stop(2.0)
        for mgr, spec in c.pods:
            with contextlib.suppress(Exception):
                await mgr.destroy(spec)
        underlay.destroy()
        sweep(ops, e2e_config)


async def http_get(c: Cluster, box: Sandbox, url: str) -> str:
    code = (
        f"import urllib.request;print(urllib.request.urlopen({url!r}, timeout=3).read().decode())"
    )
    res = await asyncio.to_thread(c.ops.run, box.netns, [sys.executable, "-S", "-c", code])
    assert res.returncode == 0, res.stderr.decode()
    return res.stdout.decode().strip()


async def wait_listening(c: Cluster, box: Sandbox, port: int) -> None:
    bin_dir = ensure_bin_dir(str(c.workdir / "bin"))
    for _ in range(100):
        res = await asyncio.to_thread(
            c.ops.run,
            box.netns,
            [f"{bin_dir}/agnhost", "connect", f"{box.pod_ip}:{port}", "--timeout", "1s"],
        )
        if res.returncode == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing listens on {box.pod_ip}:{port}")


async def test_pods_reach_each_other_by_pod_ip_with_source_preserved(cluster: Cluster) -> None:
    n1, n2 = cluster.underlay.nodes[1], cluster.underlay.nodes[2]
    client = await cluster.pod(n1, "client")
    same = await cluster.pod(n1, "same-node")
    other = await cluster.pod(n2, "other-node")
    argv = resolve_command(
        "registry.k8s.io/e2e-test-images/agnhost:2.52", (), ("netexec", "--http-port", "8080")
    ).argv
    for box in (same, other):
        await cluster.run(box, argv, f"{box.hostname}.log")
    for box in (same, other):
        await wait_listening(cluster, box, 8080)
        seen = await http_get(cluster, client, f"http://{box.pod_ip}:8080/clientip")
        assert seen.rsplit(":", 1)[0] == client.pod_ip
        assert await http_get(cluster, client, f"http://{box.pod_ip}:8080/hostname") == box.hostname


async def test_pod_has_its_own_hostname_and_hosts_file(cluster: Cluster) -> None:
    box = await cluster.pod(cluster.underlay.nodes[1], "web-0")
    proc = await cluster.run(
        box, ("/bin/sh", "-c", "hostname; cat /etc/hosts /etc/resolv.conf"), "web-0.log"
    )
    assert await proc.wait() == 0
    out = (cluster.workdir / "logs" / "web-0.log").read_text()
    assert out.splitlines()[0] == "web-0"
    assert f"{box.pod_ip}\tweb-0\n" in out
    assert "nameserver 10.96.0.10" in out


async def test_exec_joins_the_running_containers_namespaces(cluster: Cluster) -> None:
    box = await cluster.pod(cluster.underlay.nodes[2], "exec-target")
    proc = await cluster.run(box, ("sleep", "30"), "exec-target.log")
    res = await asyncio.to_thread(
        cluster.ops.run,
        None,
        command_for_exec(proc.pid, ["/bin/sh", "-c", "hostname; ip -4 -o addr show eth0"]),
    )
    lines = res.stdout.decode().splitlines()
    assert lines[0] == "exec-target"
    assert f"{box.pod_ip}/" in lines[1]


async def test_stop_sends_sigterm_then_sigkill_after_grace(cluster: Cluster) -> None:
    box = await cluster.pod(cluster.underlay.nodes[1], "stubborn")
    polite = await cluster.run(box, ("sleep", "30"), "polite.log")
    stubborn = await cluster.run(
        box, ("/bin/sh", "-c", "trap '' TERM; echo armed; sleep 30 & wait; sleep 30"),
        "stubborn.log",
    )  # fmt: skip
    log = cluster.workdir / "logs" / "stubborn.log"

    async def armed() -> bool:  # SIGTERM is ignored from here on
        return log.exists() and "armed" in log.read_text()

    await eventually(armed)
    assert await polite.stop(2.0) == 143
    assert await stubborn.stop(0.3) == 137


async def test_root_reaches_pod_ips_only_through_the_underlay_bridge(cluster: Cluster) -> None:
    node = cluster.underlay.nodes[2]
    box = await cluster.pod(node, "routed")
    got = cluster.ops.route_get(None, box.pod_ip)
    assert (got.dev, got.via) == (cluster.config.bridge, node.ip)
    # An address of the pod range that no node owns never reaches the default route.
    unowned = cluster.config.pod_cidr.replace(".0.0/16", ".200.9")
    assert cluster.ops.route_get(None, unowned).type is RouteType.UNREACHABLE
    assert cluster.ops.route_get(node.netns, "192.0.2.1").type is RouteType.UNREACHABLE


async def test_exhausted_pod_cidr_gives_the_host_local_error(cluster: Cluster) -> None:
    node = cluster.underlay.set_pod_cidr(1, cluster.config.pod_cidr.replace(".0.0/16", ".100.0/30"))
    first = await cluster.pod(node, "fits")
    assert first.pod_ip.endswith(".100.2")
    net = cluster.config.pod_cidr.replace(".0.0/16", ".100")
    with pytest.raises(IpamExhausted) as err:
        await cluster.pod(node, "does-not-fit")
    assert err.value.msg == f"no IP addresses available in range set: {net}.1-{net}.2"
    # the failed ADD left no namespace and no veth behind on the node's bridge
    assert not any(
        n.endswith("does-not-fit_" + cluster.pods[-1][1].pod.uid[:8])
        for n in cluster.ops.list_netns()
    )
    ports = [link for link in cluster.ops.list_links(node.netns) if link.master == "cni0"]
    assert len(ports) == 1


async def test_crash_looping_container_backs_off_and_keeps_the_previous_log(
    cluster: Cluster,
) -> None:
    from svcnet.agent.containers import (
        BackoffPolicy,
        ContainerRun,
        PodContainers,
        PodEvent,
        RestartPolicy,
    )
    from svcnet.util.clock import REAL_CLOCK

    box = await cluster.pod(cluster.underlay.nodes[1], "crasher")
    events: list[PodEvent] = []
    argv = ("/bin/sh", "-c", "echo run on $(hostname); exit 3")
    pod = PodContainers(
        pod="crasher_default(uid)",
        netns=box.netns,
        hostname=box.hostname,
        containers=[ContainerRun("app", "busybox", resolve_command("busybox", argv, ()))],
        restart_policy=RestartPolicy.ALWAYS,
        runner=cluster.runner,
        clock=REAL_CLOCK,
        log_dir=str(cluster.workdir / "podlogs"),
        backoff=BackoffPolicy(0.2, 1.0),
        on_event=events.append,
    )
    task = asyncio.create_task(pod.run())
    try:
        for _ in range(100):
            if pod.statuses()[0].restart_count >= 3:
                break
            await asyncio.sleep(0.05)
    finally:
        await pod.stop(1.0)
        await task
    st = pod.statuses()[0]
    assert st.restart_count >= 3
    assert st.last_state is not None and (st.last_state.exit_code, st.last_state.reason) == (
        3,
        "Error",
    )
    assert "BackOff" in [e.reason for e in events]
    previous = pod.log_file("app", previous=True)
    assert previous is not None
    # The agent keeps logs in the CRI format: one stamped stdout entry per line.
    entries, _ = crilog.parse(Path(previous).read_bytes())
    assert [(e.stream, e.content) for e in entries] == [("stdout", b"run on crasher")]


async def test_host_port_reaches_the_pod_through_portmap(cluster: Cluster) -> None:
    from svcnet.dataplane.cni import PortMapping

    n1, n2 = cluster.underlay.nodes[1], cluster.underlay.nodes[2]
    mgr = cluster.manager(n1)
    spec = SandboxSpec(
        PodIdentity("default", "hostport", "uid-hostport-0001"),
        RESOLV,
        port_mappings=(PortMapping(30080, 8080),),
    )
    cluster.pods.append((mgr, spec))
    box = await mgr.create(spec)
    await cluster.run(
        box, ("agnhost", "netexec", "--http-port=8080", "--udp-port=-1"), "hostport.log"
    )
    await wait_listening(cluster, box, 8080)
    client = await cluster.pod(n2, "hp-client")
    seen = await http_get(cluster, client, f"http://{n1.ip}:30080/hostname")
    assert seen == "hostport"


async def test_builtin_images_serve_in_pods(cluster: Cluster) -> None:
    n1, n2 = cluster.underlay.nodes[1], cluster.underlay.nodes[2]
    web = await cluster.pod(n1, "web-nginx")
    udp = await cluster.pod(n2, "udp-host")
    client = await cluster.pod(n2, "udp-client")
    await cluster.run(web, resolve_command("nginx:1.27", (), ()).argv, "web-nginx.log")
    agnhost = "registry.k8s.io/e2e-test-images/agnhost:2.52"
    await cluster.run(
        udp,
        resolve_command(
            agnhost, (), ("serve-hostname", "--udp", "--http=false", "--port=9376")
        ).argv,
        "udp.log",
    )
    await wait_listening(cluster, web, 80)
    assert "Served by pod web-nginx." in await http_get(cluster, client, f"http://{web.pod_ip}/")
    bin_dir = ensure_bin_dir(str(cluster.workdir / "bin"))
    connect = [
        f"{bin_dir}/agnhost",
        "connect",
        f"{udp.pod_ip}:9376",
        "--protocol=udp",
        "--timeout=1s",
    ]
    for _ in range(50):
        res = await asyncio.to_thread(cluster.ops.run, client.netns, connect)
        if res.returncode == 0:
            break
        await asyncio.sleep(0.05)
    assert res.returncode == 0, res.stderr
    closed = [
        f"{bin_dir}/agnhost",
        "connect",
        f"{udp.pod_ip}:9377",
        "--protocol=udp",
        "--timeout=1s",
    ]
    res = await asyncio.to_thread(cluster.ops.run, client.netns, closed)
    assert (res.returncode, res.stderr.decode().strip()) == (1, "REFUSED")


async def test_cni_check_passes_and_del_works_after_the_namespace_is_gone(cluster: Cluster) -> None:
    from svcnet.dataplane.cni import CniError

    node = cluster.underlay.nodes[1]
    mgr = cluster.manager(node)
    box = await cluster.pod(node, "checked")
    spec = cluster.pods[-1][1]
    await mgr.check(spec)
    cluster.ops.delete_link(box.netns, "eth0")
    with pytest.raises(CniError):
        await mgr.check(spec)
    cluster.ops.delete_netns(box.netns)
    lease = cluster.workdir / node.name / "ipam" / "svcnet" / box.pod_ip
    assert lease.exists()
    await mgr.destroy(spec)  # the runtime lost the namespace: DEL still succeeds
    assert not lease.exists()  # and host-local released the address


async def test_builtin_image_from_the_warm_fork_server_is_a_real_pod_process(
    cluster: Cluster,
) -> None:
    """The agent's zygote: the forked container is in the pod's namespaces, with the pod's
    hostname and /etc files, serves on the pod IP, and dies of SIGTERM as 143."""
    from svcnet.agent.zygote_runner import ZygoteProcess, ZygoteRunner

    n1, n2 = cluster.underlay.nodes[1], cluster.underlay.nodes[2]
    web = await cluster.pod(n1, "warm-web")
    client = await cluster.pod(n2, "warm-client")
    bin_dir = ensure_bin_dir(str(cluster.workdir / "bin"))
    runner = ZygoteRunner(bin_dir)
    try:
        argv = resolve_command(
            "registry.k8s.io/e2e-test-images/agnhost:2.52", (), ("netexec", "--http-port=8080")
        ).argv
        proc = await runner.start(
            ProcessSpec(
                argv=argv,
                netns=web.netns,
                hostname=web.hostname,
                log_path=str(cluster.workdir / "logs" / "warm-web.log"),
                env={"PATH": f"{bin_dir}:{DEFAULT_PATH}"},
            )
        )
        assert isinstance(proc, ZygoteProcess)
        # Listening as soon as it is started: no wait_listening here.
        assert await http_get(cluster, client, f"http://{web.pod_ip}:8080/hostname") == "warm-web"
        seen = await http_get(cluster, client, f"http://{web.pod_ip}:8080/clientip")
        assert seen.rsplit(":", 1)[0] == client.pod_ip
        res = await asyncio.to_thread(
            cluster.ops.run,
            None,
            command_for_exec(proc.pid, ["/bin/sh", "-c", "hostname; cat /etc/hosts"]),
        )
        out = res.stdout.decode()
        assert out.splitlines()[0] == "warm-web"
        assert f"{web.pod_ip}\twarm-web\n" in out
        assert os.readlink(f"/proc/{proc.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        assert await proc.stop(2.0) == 143
    finally:
        runner.close()


async def test_a_namespace_made_without_ip_is_one_ip_lists_enters_and_deletes(
    cluster: Cluster,
) -> None:
    name = f"{cluster.underlay.nodes[1].netns}_made-in-a-thread"
    from svcnet.dataplane.netns import _netns_dir_is_mounted

    own = os.readlink("/proc/self/ns/net")
    assert _netns_dir_is_mounted()  # the nodes exist: the agent's way, with no `ip` exec
    cluster.ops.add_netns(name)
    try:
        assert os.readlink("/proc/self/ns/net") == own  # only the helper thread moved
        assert name in cluster.ops.list_netns()
        res = cluster.ops.run(name, ["readlink", "/proc/self/ns/net"])
        assert res.returncode == 0
        assert res.stdout.decode().strip() not in ("", own)
    finally:
        cluster.ops.delete_netns(name)
    assert name not in cluster.ops.list_netns()
