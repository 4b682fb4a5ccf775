"""Pod sandboxes over the fake kernel and fake CNI plugins. Ranges: pods 10.244.1.0/24."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from svcnet.agent.sandbox import (
    NodeNetwork,
    PodIdentity,
    SandboxManager,
    SandboxSpec,
    render_hosts,
    sandbox_netns_name,
)
from svcnet.dataplane.cni import CniRuntime, IpamExhausted, write_default_conflist
from svcnet.dataplane.fake_cni import FakePluginExec
from svcnet.dataplane.fake_netns import FakeNetns


def manager(tmp_path: Path, cidr: str = "10.244.1.0/24") -> SandboxManager:
    write_default_conflist(str(tmp_path / "net.d"), cidr, str(tmp_path / "ipam"))
    ops = FakeNetns()
    ops.add_netns("svcnet-node-1")
    cni = CniRuntime(str(tmp_path / "net.d"), str(tmp_path / "cache"), FakePluginExec())
    return SandboxManager(ops, cni, "svcnet-node-1", etc_root=str(tmp_path / "etc"))


def spec(name: str, **kw: str) -> SandboxSpec:
    return SandboxSpec(
        PodIdentity("default", name, f"{name}-uid-0001", **kw), "nameserver 10.96.0.10\n"
    )


async def test_create_writes_hosts_resolv_and_hostname(tmp_path: Path) -> None:
    box = await manager(tmp_path).create(spec("web-0", subdomain="web"))
    etc = Path(box.etc_dir)
    assert (etc / "hostname").read_text() == "web-0\n"
    assert (etc / "resolv.conf").read_text() == "nameserver 10.96.0.10\n"
    assert "10.244.1.2\tweb-0.web.default.svc.cluster.local\tweb-0\n" in (etc / "hosts").read_text()


async def test_spec_hostname_wins_over_the_pod_name(tmp_path: Path) -> None:
    assert (await manager(tmp_path).create(spec("p", hostname="custom"))).hostname == "custom"


async def test_destroy_removes_namespace_files_and_address(tmp_path: Path) -> None:
    mgr = manager(tmp_path, "10.244.1.0/30")
    box = await mgr.create(spec("a"))
    await mgr.destroy(spec("a"))
    assert box.netns not in mgr.ops.list_netns()
    assert not Path(box.etc_dir).exists()
    assert (await mgr.create(spec("b"))).pod_ip == "10.244.1.2"


async def test_failed_cni_add_removes_the_namespace(tmp_path: Path) -> None:
    mgr = manager(tmp_path, "10.244.1.0/30")
    await mgr.create(spec("a"))
    with pytest.raises(IpamExhausted):
        await mgr.create(spec("b"))
    assert mgr.netns_name(spec("b").pod) not in mgr.ops.list_netns()


async def test_an_orphan_found_by_name_is_removed_and_its_address_released(tmp_path: Path) -> None:
    mgr = manager(tmp_path, "10.244.1.0/30")
    await mgr.create(spec("a"))
    assert mgr.existing() == ["svcnet-node-1_default_a_a-uid-0001"]
    survivor = SandboxManager(mgr.ops, mgr.cni, mgr.node_netns, mgr.etc_root)  # a new agent
    await survivor.remove_orphan("svcnet-node-1_default_a_a-uid-0001")
    assert survivor.existing() == []
    assert (await survivor.create(spec("b"))).pod_ip == "10.244.1.2"


async def test_destroy_kills_processes_left_in_the_sandbox(tmp_path: Path) -> None:
    mgr = manager(tmp_path)
    box = await mgr.create(spec("a"))
    assert isinstance(mgr.ops, FakeNetns)
    mgr.ops.add_process(box.netns, 4242)
    await mgr.destroy(spec("a"))
    assert (box.netns in mgr.ops.list_netns(), mgr.ops.leaked) == (False, [])


def test_netns_name_is_under_the_node_and_unambiguous() -> None:
    assert (
        sandbox_netns_name("svcnet-node-1", "default", "web-0", "0123-4567")
        == "svcnet-node-1_default_web-0_0123-4567"
    )
    assert len(sandbox_netns_name("n", "ns", "x" * 253, "u")) <= 200


def test_hosts_file_matches_kubelets_layout() -> None:
    text = render_hosts(["10.244.1.5"], "web", host_aliases=[("1.2.3.4", ["foo", "bar"])])
    lines = text.splitlines()
    assert lines[0] == "# Kubernetes-managed hosts file."
    assert lines[7] == "10.244.1.5\tweb"
    assert lines[-2:] == ["# Entries added by HostAliases.", "1.2.3.4\tfoo\tbar"]


def node_manager(tmp_path: Path) -> SandboxManager:
    """A node 172.18.0.11 whose /etc/hosts is a file of the test's."""
    (tmp_path / "node-hosts").write_text("127.0.0.1\tlocalhost\n172.18.0.1\tgateway\n")
    mgr = manager(tmp_path)
    node = NodeNetwork(("172.18.0.11",), "node-1", str(tmp_path / "node-hosts"))
    return SandboxManager(mgr.ops, mgr.cni, mgr.node_netns, mgr.etc_root, node)


def host_spec(name: str) -> SandboxSpec:
    return replace(spec(name), host_network=True, host_aliases=(("10.1.2.3", ("foo", "bar")),))


async def test_host_network_pod_takes_the_nodes_address_and_name_without_cni(
    tmp_path: Path,
) -> None:
    mgr = node_manager(tmp_path)
    before = mgr.ops.list_netns()
    box = await mgr.create(host_spec("h"))
    assert (box.pod_ips, box.hostname, box.netns) == (("172.18.0.11",), "node-1", "")
    assert mgr.ops.list_netns() == before  # no namespace of its own
    assert (await mgr.create(spec("p"))).pod_ip == "10.244.1.2"  # no address was taken


async def test_host_network_pod_gets_the_nodes_hosts_file_with_its_aliases(tmp_path: Path) -> None:
    box = await node_manager(tmp_path).create(host_spec("h"))
    assert (Path(box.etc_dir) / "hosts").read_text() == (
        "127.0.0.1\tlocalhost\n172.18.0.1\tgateway\n"
        "\n# Entries added by HostAliases.\n10.1.2.3\tfoo\tbar\n"
    )
    assert (Path(box.etc_dir) / "hostname").read_text() == "node-1\n"


async def test_destroying_a_host_network_pod_leaves_the_nodes_processes(tmp_path: Path) -> None:
    mgr = node_manager(tmp_path)
    assert isinstance(mgr.ops, FakeNetns)
    mgr.ops.add_process("svcnet-node-1", 4242)  # the agent, say
    box = await mgr.create(host_spec("h"))
    await mgr.destroy(host_spec("h"))
    assert not Path(box.etc_dir).exists()
    assert mgr.ops.kill_all("svcnet-node-1") == [4242]  # still there: nobody killed it
