"""The HAProxy applier against the fake master-worker process: reloads only for structure,
the Runtime API for endpoints and weights, and the last good configuration kept.

Fixture ranges: endpoints 10.244.1.0/24.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from svcnet.dataplane.haproxy import ConfigRejected, HaproxyApplier
from svcnet.dataplane.haproxy_config import MAIN_FILE, HaproxyConfig, ServerSlot, runtime_commands
from svcnet.dataplane.haproxy_fake import FakeHaproxy


def config(
    endpoints: list[tuple[str, int, int]], slots: int = 4, route: str = "/"
) -> HaproxyConfig:
    """A small configuration: one backend ``web`` with ``slots`` servers."""
    servers = [
        ServerSlot("web", f"s{i + 1}", *endpoints[i]) if i < len(endpoints)
        else ServerSlot("web", f"s{i + 1}")
        for i in range(slots)
    ]  # fmt: skip
    head = f"frontend f\n    bind :80\n    use_backend web if {{ path_beg {route} }}\n"
    lines = [
        f"    server {s.server} {s.addr}:{s.port} weight {s.weight}" if s.enabled
        else f"    server {s.server} 127.0.0.1:1 disabled"
        for s in servers
    ]  # fmt: skip
    shape = [f"    server {s.server}" for s in servers]
    text = head + "backend web\n" + "\n".join(lines) + "\n"
    return HaproxyConfig(
        files={MAIN_FILE: text.encode()},
        structure=(head + "backend web\n" + "\n".join(shape)).encode(),
        servers=tuple(servers),
    )


A, B, C = ("10.244.1.2", 8080, 1), ("10.244.1.3", 8080, 1), ("10.244.1.4", 8080, 1)


async def test_first_apply_starts_then_endpoint_changes_need_no_reload(tmp_path: Path) -> None:
    fake = FakeHaproxy()
    applier = HaproxyApplier(fake, tmp_path)
    first = await applier.apply(config([A]))
    assert first.reloaded and fake.running and fake.reloads == 0
    assert fake.served("web") == [A]

    scaled = await applier.apply(config([A, B, C]))
    assert not scaled.reloaded and fake.reloads == 0
    assert fake.served("web") == [A, B, C]

    down = await applier.apply(config([(C[0], C[1], 5)], slots=4))
    assert not down.reloaded and fake.reloads == 0
    assert fake.served("web") == [(C[0], C[1], 5)]
    # The file follows, so that a restart serves the same endpoints.
    assert b"10.244.1.4:8080 weight 5" in (tmp_path / "current" / MAIN_FILE).read_bytes()


async def test_a_structure_change_reloads_once(tmp_path: Path) -> None:
    fake = FakeHaproxy()
    applier = HaproxyApplier(fake, tmp_path)
    await applier.apply(config([A]))
    result = await applier.apply(config([A], route="/v2"))
    assert result.reloaded and fake.reloads == 1
    assert (await applier.apply(config([A], route="/v2"))).commands == 0
    assert fake.reloads == 1


async def test_growing_the_slots_reloads(tmp_path: Path) -> None:
    fake = FakeHaproxy()
    applier = HaproxyApplier(fake, tmp_path)
    await applier.apply(config([A], slots=1))
    await applier.apply(config([A, B], slots=2))
    assert fake.reloads == 1 and fake.served("web") == [A, B]


async def test_a_refused_configuration_is_never_loaded(tmp_path: Path) -> None:
    fake = FakeHaproxy(refuse={"/bad("})
    applier = HaproxyApplier(fake, tmp_path)
    await applier.apply(config([A]))
    good = applier.applied
    with pytest.raises(ConfigRejected, match="cannot parse"):
        await applier.apply(config([A], route="/bad("))
    assert fake.reloads == 0 and applier.applied is good and applier.rejected == 1
    assert b"/bad(" not in (tmp_path / "current" / MAIN_FILE).read_bytes()
    # Endpoint changes still reach the configuration that is served.
    await applier.apply(config([A, B]))
    assert fake.served("web") == [A, B] and fake.reloads == 0


async def test_runtime_api_disagreement_falls_back_to_a_reload(tmp_path: Path) -> None:
    fake = FakeHaproxy()
    applier = HaproxyApplier(fake, tmp_path)
    await applier.apply(config([A]))
    fake.servers.clear()  # the worker lost what we think it holds
    await applier.apply(config([A, B]))
    assert fake.reloads == 1 and fake.served("web") == [A, B]


async def test_a_process_that_died_is_started_again(tmp_path: Path) -> None:
    fake = FakeHaproxy()
    applier = HaproxyApplier(fake, tmp_path)
    await applier.apply(config([A]))
    await fake.stop()
    await applier.apply(config([A, B]))
    assert fake.running and fake.restarts == 1 and fake.served("web") == [A, B]


def test_runtime_commands_move_a_slot_out_of_rotation_before_readdressing_it() -> None:
    old = [ServerSlot("web", "s1", *A), ServerSlot("web", "s2")]
    new = [ServerSlot("web", "s1", *B), ServerSlot("web", "s2", *C)]
    assert runtime_commands(old, new) == [
        "set server web/s1 state maint",
        "set server web/s1 addr 10.244.1.3 port 8080",
        "set server web/s1 state ready",
        "set server web/s2 addr 10.244.1.4 port 8080",
        "set server web/s2 state ready",
    ]
    assert runtime_commands(new, [ServerSlot("web", "s1", *B), ServerSlot("web", "s2")]) == [
        "set server web/s2 state maint"
    ]
