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


def test_missing_host_path_directory_is_a_config_error(store: ImageStore) -> None:
    pod_container = {
        "image": APP,
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    pod = {
        "metadata": {"name": "p", "namespace": "default", "uid": "u"},
        "spec": {
            "volumes": [{"name": "data", "hostPath": {"path": "/no/such/dir", "type": "Directory"}}]
        },
    }
    prep = prepare_container(
        store, pod, {"name": "c", **pod_container}, (), (), {},
        netns=None, hostname="p", etc_dir=ETC,
    )  # fmt: skip
    assert prep.reason == REASON_CONFIG_ERROR
    assert "hostPath type check failed: /no/such/dir is not a directory" in prep.message
