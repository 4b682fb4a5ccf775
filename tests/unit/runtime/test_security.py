"""securityContext → sandbox plan: user, capabilities, privileged, no_new_privs, writable
paths, and kubelet's CreateContainerConfigError messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from svcnet.runtime.images import Image, ImageConfig
from svcnet.runtime.security import (
    CAPABILITIES,
    DEFAULT_CAPABILITIES,
    ConfigError,
    capability_set,
    plan_sandbox,
)

ETC = "/etc/netns/node-1_default_p_u"


def image(tmp_path: Path, user: str = "", passwd: str = "") -> Image:
    rootfs = tmp_path / "img" / "rootfs"
    (rootfs / "etc").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc" / "passwd").write_text(passwd or "root:x:0:0::/root:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\nstaff:x:50:\n")
    return Image("img", ("img",), str(rootfs), ImageConfig(user=user))


def plan(img: Image, container_sc: Any = None, pod_sc: Any = None) -> Any:
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": {}}
    if pod_sc is not None:
        pod["spec"]["securityContext"] = pod_sc
    c = {"name": "c", "image": "img", "securityContext": container_sc or {}}
    return plan_sandbox(pod, c, img, img, "netns-1", "p", ETC)


def names(caps: tuple[int, ...]) -> set[str]:
    by_number = {v: k for k, v in CAPABILITIES.items()}
    return {by_number[c] for c in caps}


def test_default_is_containerds_capability_set_as_root(tmp_path: Path) -> None:
    p = plan(image(tmp_path))
    assert names(p.capabilities) == set(DEFAULT_CAPABILITIES)
    assert not {"NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE"} & names(p.capabilities)
    assert (p.uid, p.gid, p.privileged, p.no_new_privs) == (0, 0, False, False)
    assert p.tmpfs == ("/tmp", "/run")
    assert [b.target for b in p.binds] == ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"]
    assert all(b.readonly for b in p.binds)


@pytest.mark.parametrize(
    ("caps", "added", "removed"),
    [
        ({"add": ["NET_ADMIN"]}, {"NET_ADMIN"}, set()),
        ({"add": ["CAP_NET_ADMIN"]}, {"NET_ADMIN"}, set()),
        ({"drop": ["NET_RAW", "CHOWN"]}, set(), {"NET_RAW", "CHOWN"}),
    ],
)
def test_capabilities_add_and_drop(caps: Any, added: set[str], removed: set[str]) -> None:
    got = names(capability_set({"capabilities": caps}))
    assert got == (set(DEFAULT_CAPABILITIES) | added) - removed


def test_drop_all_then_add_keeps_only_the_added() -> None:
    got = capability_set({"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}})
    assert names(got) == {"NET_BIND_SERVICE"}


def test_unknown_capability_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="NET_WIZARD"):
        capability_set({"capabilities": {"add": ["NET_WIZARD"]}})


def test_privileged_gets_every_capability_and_the_nodes_devices(tmp_path: Path) -> None:
    p = plan(image(tmp_path), {"privileged": True, "allowPrivilegeEscalation": False})
    assert names(p.capabilities) == set(CAPABILITIES)
    assert p.privileged and not p.no_new_privs
    assert any(b.target == "/dev" and not b.readonly for b in p.binds)


@pytest.mark.parametrize(("ape", "nnp"), [(None, False), (True, False), (False, True)])
def test_no_new_privs_only_when_escalation_is_disallowed(
    tmp_path: Path, ape: bool | None, nnp: bool
) -> None:
    sc = {} if ape is None else {"allowPrivilegeEscalation": ape}
    assert plan(image(tmp_path), sc).no_new_privs is nnp


def test_container_user_overrides_pod_user_overrides_image(tmp_path: Path) -> None:
    img = image(tmp_path, user="0")
    assert (plan(img, pod_sc={"runAsUser": 1000}).uid, plan(img).uid) == (1000, 0)
    p = plan(img, {"runAsUser": 2000, "runAsGroup": 3000}, {"runAsUser": 1000})
    assert (p.uid, p.gid) == (2000, 3000)


def test_named_image_user_resolves_through_the_images_passwd(tmp_path: Path) -> None:
    img = image(tmp_path, "app:staff", "root:x:0:0::/:/bin/sh\napp:x:101:102::/:/bin/sh\n")
    p = plan(img)
    assert (p.uid, p.gid) == (101, 50)


def test_pod_groups_become_supplementary_groups(tmp_path: Path) -> None:
    p = plan(image(tmp_path), pod_sc={"supplementalGroups": [5, 6], "fsGroup": 7})
    assert p.groups == (5, 6, 7)


def test_run_as_non_root_refuses_root_with_kubelets_message(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="container has runAsNonRoot and image will run as root"):
        plan(image(tmp_path), {"runAsNonRoot": True})
    assert plan(image(tmp_path), {"runAsNonRoot": True, "runAsUser": 1000}).uid == 1000


def test_run_as_non_root_cannot_verify_a_named_user(tmp_path: Path) -> None:
    img = image(tmp_path, "app", "app:x:101:101::/:/bin/sh\n")
    with pytest.raises(ConfigError, match=r"non-numeric user \(app\)"):
        plan(img, pod_sc={"runAsNonRoot": True})


def test_read_only_root_filesystem_leaves_no_tmpfs(tmp_path: Path) -> None:
    assert plan(image(tmp_path), {"readOnlyRootFilesystem": True}).tmpfs == ()
