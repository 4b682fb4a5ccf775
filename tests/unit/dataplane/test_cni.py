"""The CNI runtime over the fake plugins. Ranges: pods 10.244.1.0/24 (node 1), 10.244.9.0/30."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from svcnet.dataplane.cni import (
    Attachment,
    CniError,
    CniRuntime,
    ConfigError,
    IpamExhausted,
    PluginNotFound,
    PortMapping,
    default_conflist,
    load_conflist,
    parse_error,
    plugin_stdin,
    write_default_conflist,
)
from svcnet.dataplane.fake_cni import INSTALLED, FakePluginExec


def pod(i: int, ports: tuple[PortMapping, ...] = ()) -> Attachment:
    return Attachment(
        f"cid{i}",
        f"/run/netns/p{i}",
        pod_namespace="default",
        pod_name=f"p{i}",
        pod_uid=f"u{i}",
        port_mappings=ports,
    )


def runtime(
    tmp_path: Path, cidr: str = "10.244.1.0/24", exe: FakePluginExec | None = None
) -> tuple[CniRuntime, FakePluginExec]:
    fake = exe or FakePluginExec()
    write_default_conflist(str(tmp_path / "net.d"), cidr, str(tmp_path / "ipam"))
    return CniRuntime(str(tmp_path / "net.d"), str(tmp_path / "cache"), fake), fake


async def test_add_hands_out_addresses_round_robin(tmp_path: Path) -> None:
    rt, _ = runtime(tmp_path)
    assert (await rt.add(pod(1))).pod_ips == ["10.244.1.2"]
    await rt.delete(pod(1))
    assert (await rt.add(pod(2))).pod_ips == ["10.244.1.3"]


async def test_add_runs_the_chain_in_order_passing_prev_result(tmp_path: Path) -> None:
    rt, fake = runtime(tmp_path)
    await rt.add(pod(1))
    assert [(t, c) for t, c, _ in fake.calls] == [
        ("bridge", "ADD"),
        ("portmap", "ADD"),
        ("loopback", "ADD"),
    ]
    assert fake.calls[1][2]["prevResult"]["ips"][0]["address"] == "10.244.1.2/24"


async def test_delete_runs_in_reverse_with_the_cached_result(tmp_path: Path) -> None:
    rt, fake = runtime(tmp_path)
    await rt.add(pod(1))
    fake.calls.clear()
    await rt.delete(pod(1))
    assert [t for t, _, _ in fake.calls] == ["loopback", "portmap", "bridge"]
    assert all("prevResult" in conf for _, _, conf in fake.calls)


async def test_delete_releases_the_address_and_repeats_safely(tmp_path: Path) -> None:
    rt, _ = runtime(tmp_path, "10.244.9.0/30")
    await rt.add(pod(1))
    await rt.delete(pod(1))
    await rt.delete(pod(1))
    assert (await rt.add(pod(2))).pod_ips == ["10.244.9.2"]


async def test_exhausted_range_is_a_typed_error_with_host_locals_message(tmp_path: Path) -> None:
    rt, _ = runtime(tmp_path, "10.244.9.0/30")
    await rt.add(pod(1))
    with pytest.raises(IpamExhausted) as err:
        await rt.add(pod(2))
    assert err.value.msg == "no IP addresses available in range set: 10.244.9.1-10.244.9.2"


async def test_failed_add_is_followed_by_a_del_of_the_chain(tmp_path: Path) -> None:
    rt, fake = runtime(tmp_path, "10.244.9.0/30")
    await rt.add(pod(1))
    fake.calls.clear()
    with pytest.raises(IpamExhausted):
        await rt.add(pod(2))
    assert [(t, c) for t, c, _ in fake.calls] == [
        ("bridge", "ADD"),
        ("loopback", "DEL"),
        ("portmap", "DEL"),
        ("bridge", "DEL"),
    ]


async def test_port_mappings_reach_portmap_as_runtime_config(tmp_path: Path) -> None:
    rt, fake = runtime(tmp_path)
    await rt.add(pod(1, (PortMapping(8080, 80, "TCP"),)))
    assert fake.port_mappings["cid1"] == [
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}
    ]


async def test_missing_plugin_is_named(tmp_path: Path) -> None:
    rt, _ = runtime(tmp_path, exe=FakePluginExec(INSTALLED - {"portmap"}))
    with pytest.raises(PluginNotFound, match='failed to find plugin "portmap"'):
        await rt.add(pod(1))


async def test_check_fails_for_a_container_never_added(tmp_path: Path) -> None:
    rt, _ = runtime(tmp_path)
    with pytest.raises(CniError):
        await rt.check(pod(1))


async def test_a_users_conflist_sorting_first_replaces_svcnets(tmp_path: Path) -> None:
    rt, fake = runtime(tmp_path)
    mine = default_conflist("10.244.50.0/24", str(tmp_path / "mine"))
    mine["plugins"] = mine["plugins"][:1]
    (tmp_path / "net.d" / "00-mine.conflist").write_text(json.dumps(mine))
    assert (await rt.add(pod(1))).pod_ips == ["10.244.50.2"]
    assert [t for t, _, _ in fake.calls] == ["bridge"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{", "invalid JSON"),
        ('{"name": "x", "plugins": []}', "non-empty"),
        ('{"name": "x", "plugins": [{"bridge": "cni0"}]}', "needs a type"),
        ('{"plugins": [{"type": "bridge"}]}', "missing network name"),
    ],
)
def test_bad_conflists_are_config_errors(tmp_path: Path, text: str, error: str) -> None:
    (tmp_path / "a.conflist").write_text(text)
    with pytest.raises(ConfigError, match=error):
        load_conflist(str(tmp_path))


def test_plugin_stdin_carries_name_version_and_no_capabilities(tmp_path: Path) -> None:
    net = load_conflist(
        write_default_conflist(str(tmp_path), "10.244.1.0/24", "/x").rsplit("/", 1)[0]
    )
    conf = json.loads(plugin_stdin(net, net.plugins[1], pod(1), {"ips": []}))
    assert (conf["name"], conf["cniVersion"], "capabilities" in conf) == ("svcnet", "1.0.0", False)


@pytest.mark.parametrize(
    ("stdout", "kind", "msg"),
    [
        (b'{"code": 7, "msg": "bad"}', ConfigError, "bad"),
        (b'{"code": 11, "msg": "later"}', CniError, "later"),
        (b"garbage", CniError, "boom"),
    ],
)
def test_plugin_errors_become_typed_errors(stdout: bytes, kind: type[CniError], msg: str) -> None:
    err = parse_error("bridge", 1, stdout, b"boom")
    assert type(err) is kind and err.msg == msg
