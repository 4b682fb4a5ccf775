"""Which command a container runs, by image, when it has no command."""

from __future__ import annotations

import pytest

from svcnet.agent.images import REASON_IMAGE_NEVER_PULL, image_repository, resolve_command


@pytest.mark.parametrize(
    ("image", "repo"),
    [
        ("registry.k8s.io/e2e-test-images/agnhost:2.52", "agnhost"),
        ("nginx", "nginx"),
        ("docker.io/library/nginx:1.27@sha256:abc", "nginx"),
        ("localhost:5000/httpd", "httpd"),
    ],
)
def test_image_repository(image: str, repo: str) -> None:
    assert image_repository(image) == repo


@pytest.mark.parametrize(
    ("image", "command", "args", "argv"),
    [
        ("busybox", ("sleep",), ("10",), ("sleep", "10")),
        ("registry.k8s.io/e2e-test-images/agnhost:2.52", (), ("netexec",), ("agnhost", "netexec")),
        ("nginx:1.27", (), (), ("agnhost", "svcnet-page", "--port", "80", "--server", "nginx")),
        ("httpd", (), (), ("agnhost", "svcnet-page", "--port", "80", "--server", "httpd")),
    ],
)
def test_runnable_images(
    image: str, command: tuple[str, ...], args: tuple[str, ...], argv: tuple[str, ...]
) -> None:
    assert resolve_command(image, command, args).argv == argv


def test_unknown_image_without_command_never_pulls_and_says_what_to_do() -> None:
    got = resolve_command("redis:7", (), ())
    assert not got.ok and got.reason == REASON_IMAGE_NEVER_PULL
    assert 'Container image "redis:7" is not present with pull policy of Never' in got.message
    assert "Set the container's command" in got.message
