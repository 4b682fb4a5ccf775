"""One container's start, prepared: its image found, its command, env and working directory
from the image config and the pod spec, and its sandbox planned.

What the kubelet asks the runtime for, in one call the agent makes per container:
- a known image: ``command``/``args`` over the image's entrypoint/cmd, the image's env under
  the container's, its workingDir unless the container sets one, its root filesystem;
- an unknown image without a command: Waiting with ErrImageNeverPull (kubelet's reason when
  an image is absent and may not be pulled), the message naming ``svcnet image load``;
- an unknown image with a command: the command over a read-only view of the node's
  programs (the ``node`` view: the node's /usr and a few /etc files, nothing of svcnet's),
  with a Warning event saying so;
- a securityContext that cannot be met: CreateContainerConfigError with kubelet's message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from svcnet.runtime.builtin_images import AGNHOST_IMAGE, NODE_VIEW, PAUSE_IMAGE
from svcnet.runtime.images import Image, ImageError, ImageStore, container_command
from svcnet.runtime.security import (
    REASON_CONFIG_ERROR,
    Bind,
    ConfigError,
    container_env,
    plan_sandbox,
    working_dir,
)
from svcnet.runtime.volumes.plan import check_sub_path, container_mounts
from svcnet.runtime.volumes.writer import resolve_sub_path

REASON_IMAGE_NEVER_PULL = "ErrImageNeverPull"
REASON_NODE_FILESYSTEM = "ImageNotPresent"
# Commands of the built-in agnhost image that its fork server runs without an exec.
AGNHOST_COMMANDS = ("/agnhost", "agnhost", "/usr/local/bin/agnhost", "/pause")


@dataclass(frozen=True)
class PreparedContainer:
    argv: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str = "/"
    sandbox: dict[str, Any] | None = None
    reason: str = ""  # the Waiting reason when the container cannot start
    message: str = ""
    warning: str = ""  # a Warning event to record once

    @property
    def ok(self) -> bool:
        return not self.reason


def never_pull_message(image: str) -> str:
    return (
        f'Container image "{image}" is not present with pull policy of Never: load it with '
        "`svcnet image load FILE.tar` (`svcnet image ls` lists the images pods can run), or "
        "set the container's command to run it over a read-only view of the node's programs"
    )


def prepare_container(
    store: ImageStore,
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    command: Sequence[str],
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    netns: str | None,
    hostname: str,
    etc_dir: str,
    volumes: Mapping[str, tuple[str, bool]] | None = None,
) -> PreparedContainer:
    """``volumes``: the pod's volumes set up on the node (name → (folder, API data))."""
    ref = str(container.get("image") or "")
    try:
        image: Image | None = store.find(ref)
        node_view = store.read(NODE_VIEW.ensure(store), builtin=True) if image is None else image
    except ImageError as e:
        return PreparedContainer(reason=REASON_IMAGE_NEVER_PULL, message=f"{ref}: {e}")
    warning = ""
    if image is None:
        if not command:
            return PreparedContainer(
                reason=REASON_IMAGE_NEVER_PULL, message=never_pull_message(ref)
            )
        warning = (
            f'Container image "{ref}" is not present: running the container\'s command over a '
            "read-only view of the node's programs (`svcnet image load FILE.tar` adds images)"
        )
    assert node_view is not None
    config = image.config if image is not None else node_view.config
    argv = container_command(config, command, args)
    if not argv:
        return PreparedContainer(
            reason=REASON_CONFIG_ERROR, message="no command specified", warning=warning
        )
    try:
        binds = volume_binds(container, volumes or {})
        plan = plan_sandbox(pod, container, image, node_view, netns, hostname, etc_dir, binds)
    except ConfigError as e:
        return PreparedContainer(reason=REASON_CONFIG_ERROR, message=str(e), warning=warning)
    sandbox = plan.to_json()
    sandbox["agnhost"] = (
        image is not None
        and image.builtin
        and image.references[:1] in ((AGNHOST_IMAGE,), (PAUSE_IMAGE,))
        and argv[0] in AGNHOST_COMMANDS
    )
    return PreparedContainer(
        argv=argv,
        env=container_env(image or node_view, env),
        working_dir=working_dir(image, container),
        sandbox=sandbox,
        warning=warning,
    )


def volume_binds(
    container: Mapping[str, Any], volumes: Mapping[str, tuple[str, bool]]
) -> list[Bind]:
    """The container's volumeMounts as binds; a subPath made (emptyDir, hostPath) and resolved
    on the node, refused with kubelet's makeMounts message when it leaves its volume."""
    out = []
    name = str(container.get("name", ""))
    for m in container_mounts(container, volumes):
        source = m.source
        if m.sub_path:
            failed = f'failed to prepare subPath for volumeMount "{m.volume}" of container "{name}"'
            if check_sub_path(m.sub_path) is not None:
                raise ConfigError(failed)
            try:
                source = resolve_sub_path(
                    m.volume_root, m.sub_path, create=not volumes[m.volume][1]
                )
            except (OSError, ValueError) as e:
                raise ConfigError(failed) from e
        out.append(Bind(source, m.target, m.readonly))
    return out
