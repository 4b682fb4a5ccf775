"""Mount targets of a container resolved inside its root, as runc's securejoin does: links
in the image (absolute or relative, chained, climbing past /) never lead out of the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from svcnet.runtime.isolate import SandboxError, resolve_in_root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "rootfs"
    (r / "run").mkdir(parents=True)
    (r / "usr" / "lib").mkdir(parents=True)
    (r / "var").mkdir()
    (r / "var" / "run").symlink_to("/run")  # absolute: the container's /run
    (r / "var" / "lock").symlink_to("../run/lock")
    (r / "lib").symlink_to("usr/lib")
    (r / "up").symlink_to("../../../../etc")  # climbs past / : stays at the root
    (r / "loop").symlink_to("loop")
    return r


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "/var/run/secrets/kubernetes.io/serviceaccount",
            "run/secrets/kubernetes.io/serviceaccount",
        ),
        ("/var/lock/x", "run/lock/x"),
        ("/lib/x", "usr/lib/x"),
        ("/up/passwd", "etc/passwd"),
        ("/../../etc/hosts", "etc/hosts"),
        ("/data", "data"),
        ("/", ""),
    ],
)
def test_targets_resolve_inside_the_root(root: Path, path: str, expected: str) -> None:
    assert resolve_in_root(str(root), path) == os.path.join(str(root), expected).rstrip("/")


def test_a_link_loop_is_refused(root: Path) -> None:
    with pytest.raises(SandboxError, match="too many levels"):
        resolve_in_root(str(root), "/loop/x")
