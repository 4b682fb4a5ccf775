"""One container's start prepared from its image and the pod spec: the image found (loaded
by reference, built in by repository), command/args/env/workingDir, and the Waiting reasons
kubelet gives when it cannot start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from svcnet.runtime.container import REASON_IMAGE_NEVER_PULL, prepare_container
from svcnet.runtime.images import ImageConfig, ImageStore
from svcnet.runtime.security import REASON_CONFIG_ERROR

ETC = "/etc/netns/node-1_default_p_u"
APP = "example.test/app:v1"


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    s = ImageStore(str(tmp_path / "images"))
    staging = s.staging_dir()
    (Path(staging) / "rootfs" / "etc").mkdir(parents=True)
    config = ImageConfig(
        entrypoint=("/bin/app",),
        cmd=("--serve",),
        env=("PATH=/bin", "MODE=image"),
        working_dir="/srv",
    )
    s.commit(staging, "app", [APP], config, builtin=False)
    return s


def prepare(store: ImageStore, container: dict[str, Any], env: Any = None) -> Any:
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": {}}
    c = {"name": "c", **container}
    return prepare_container(
        store,
        pod,
        c,
        c.get("command") or (),
        c.get("args") or (),
        env or {},
        netns="node-1_default_p_u",
        hostname="p",
        etc_dir=ETC,
    )


def test_loaded_image_runs_its_entrypoint_with_the_containers_args(store: ImageStore) -> None:
    prep = prepare(store, {"image": APP, "args": ["--port", "80"]}, {"MODE": "pod"})
    assert prep.ok and not prep.warning
    assert prep.argv == ("/bin/app", "--port", "80")
    assert prep.env == {"PATH": "/bin", "MODE": "pod"}  # the container's env wins
    assert prep.working_dir == "/srv"
    assert prep.sandbox["rootfs"] == str(Path(store.root, "app", "rootfs"))
    assert prep.sandbox["netns"] == "node-1_default_p_u"
    assert prep.sandbox["agnhost"] is False


def test_container_working_dir_overrides_the_images(store: ImageStore) -> None:
    assert prepare(store, {"image": APP, "workingDir": "/data"}).working_dir == "/data"


def test_unknown_image_without_command_is_err_image_never_pull(store: ImageStore) -> None:
    prep = prepare(store, {"image": "quay.io/nobody/nothing:1"})
    assert prep.reason == REASON_IMAGE_NEVER_PULL
    assert 'Container image "quay.io/nobody/nothing:1" is not present' in prep.message
    assert "svcnet image load" in prep.message


def test_run_as_non_root_over_a_root_image_is_a_config_error(store: ImageStore) -> None:
    prep = prepare(store, {"image": APP, "securityContext": {"runAsNonRoot": True}})
    assert prep.reason == REASON_CONFIG_ERROR
    assert "container has runAsNonRoot and image will run as root" in prep.message


def _with_volume(store: ImageStore, folder: Path, mount: dict[str, Any], api_data: bool) -> Any:
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": {}}
    container = {"name": "c", "image": APP, "volumeMounts": [{"name": "v", **mount}]}
    return prepare_container(
        store, pod, container, (), (), {},
        netns=None, hostname="p", etc_dir=ETC, volumes={"v": (str(folder), api_data)},
    )  # fmt: skip


def test_volume_mounts_become_binds_with_readonly_honoured(
    store: ImageStore, tmp_path: Path
) -> None:
    prep = _with_volume(store, tmp_path, {"mountPath": "/data", "readOnly": True}, False)
    assert [str(tmp_path), "/data", True] in prep.sandbox["binds"]
    prep = _with_volume(store, tmp_path, {"mountPath": "/data"}, False)
    assert [str(tmp_path), "/data", False] in prep.sandbox["binds"]


def test_api_data_volumes_are_always_read_only(store: ImageStore, tmp_path: Path) -> None:
    prep = _with_volume(store, tmp_path, {"mountPath": "/cfg"}, True)
    assert [str(tmp_path), "/cfg", True] in prep.sandbox["binds"]


def test_sub_path_is_made_in_a_writable_volume(store: ImageStore, tmp_path: Path) -> None:
    prep = _with_volume(store, tmp_path, {"mountPath": "/data", "subPath": "a/b"}, False)
    assert (tmp_path / "a" / "b").is_dir()
    assert [str(tmp_path / "a" / "b"), "/data", False] in prep.sandbox["binds"]


def test_sub_path_follows_a_link_inside_its_volume(store: ImageStore, tmp_path: Path) -> None:
    (tmp_path / "..2026").mkdir()
    (tmp_path / "..2026" / "k").write_text("v")
    (tmp_path / "..data").symlink_to("..2026")
    (tmp_path / "k").symlink_to("..data/k")
    prep = _with_volume(store, tmp_path, {"mountPath": "/etc/k", "subPath": "k"}, True)
    assert [str(tmp_path / "..2026" / "k"), "/etc/k", True] in prep.sandbox["binds"]


@pytest.mark.parametrize("sub_path", ["escape", "../x", "/etc"])
def test_sub_path_leaving_its_volume_is_a_config_error(
    store: ImageStore, tmp_path: Path, sub_path: str
) -> None:
    volume = tmp_path / "vol"
    volume.mkdir()
    (volume / "escape").symlink_to("/etc")
    prep = _with_volume(store, volume, {"mountPath": "/data", "subPath": sub_path}, False)
    assert prep.reason == REASON_CONFIG_ERROR
    assert prep.message == 'failed to prepare subPath for volumeMount "v" of container "c"'
