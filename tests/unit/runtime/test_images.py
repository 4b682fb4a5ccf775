"""Image references, Kubernetes' command/args over entrypoint/cmd, and the image store's
index (built-in images are exercised by the e2e tests: building them needs the node's
Debian packages)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from svcnet.runtime.archive import archive_kind
from svcnet.runtime.images import (
    ImageConfig,
    ImageError,
    ImageStore,
    container_command,
    normalize_reference,
    repository_name,
)


@pytest.mark.parametrize(
    ("ref", "normalized"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("nicolaka/netshoot", "docker.io/nicolaka/netshoot:latest"),
        ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("localhost/app:v1", "localhost/app:v1"),
        ("busybox@sha256:abc", "docker.io/library/busybox@sha256:abc"),
    ],
)
def test_normalize_reference(ref: str, normalized: str) -> None:
    assert normalize_reference(ref) == normalized


@pytest.mark.parametrize(
    ("ref", "repo"),
    [
        ("registry.k8s.io/e2e-test-images/agnhost:2.52", "agnhost"),
        ("nginx", "nginx"),
        ("curlimages/curl:8.5.0", "curl"),
        ("localhost:5000/App:1", "app"),
    ],
)
def test_repository_name(ref: str, repo: str) -> None:
    assert repository_name(ref) == repo


CFG = ImageConfig(entrypoint=("/entry",), cmd=("default", "arg"))


@pytest.mark.parametrize(
    ("command", "args", "argv"),
    [
        ((), (), ("/entry", "default", "arg")),  # neither: entrypoint + cmd
        ((), ("x",), ("/entry", "x")),  # args replace cmd
        (("sh",), (), ("sh",)),  # command replaces entrypoint and drops cmd
        (("sh", "-c"), ("echo",), ("sh", "-c", "echo")),
    ],
)
def test_container_command_follows_kubernetes(
    command: tuple[str, ...], args: tuple[str, ...], argv: tuple[str, ...]
) -> None:
    assert container_command(CFG, command, args) == argv


def test_env_map_keeps_everything_after_the_first_equals() -> None:
    cfg = ImageConfig(env=("PATH=/bin", "OPTS=a=b", "EMPTY="))
    assert cfg.env_map() == {"PATH": "/bin", "OPTS": "a=b", "EMPTY": ""}


def test_commit_indexes_references_and_replaces_an_older_image(tmp_path: Path) -> None:
    store = ImageStore(str(tmp_path))
    for image_id in ("one", "two"):
        staging = store.staging_dir()
        Path(staging, "rootfs").mkdir()
        store.commit(staging, image_id, ["docker.io/library/app:latest"], CFG, builtin=False)
    found = store.find("app")
    assert found is not None and found.id == "two"
    assert found.config == CFG
    assert not (tmp_path / "one").exists()  # no reference left to it
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "index.json",
        "two",
    ]


def test_unknown_loaded_reference_is_not_found(tmp_path: Path) -> None:
    assert ImageStore(str(tmp_path)).find("quay.io/nobody/nothing:1") is None


@pytest.mark.parametrize("content", [b"not a tar at all", b""], ids=["garbage", "empty"])
def test_archive_that_is_not_a_tar_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.tar"
    path.write_bytes(content)
    with pytest.raises(ImageError, match="not an image archive"):
        archive_kind(str(path))


def test_tar_without_an_image_layout_is_refused(tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hi")
    path = tmp_path / "x.tar"
    with tarfile.open(path, "w") as tar:
        tar.add(tmp_path / "hello.txt", "hello.txt")
    with pytest.raises(ImageError, match=r"no manifest\.json"):
        archive_kind(str(path))
