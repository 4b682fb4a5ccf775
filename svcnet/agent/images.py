"""Unsandboxed containers (an agent without an image store, and tests of the process layer):
what a container with no ``command`` runs, given its image name. Pods of a cluster take
:mod:`svcnet.runtime` instead: images with a filesystem, in a sandbox.

Here ``command``/``args`` run as given on the node's filesystem. Only when ``command`` is empty does the image matter, and then only the
images svcnet knows how to play are accepted (Kubernetes semantics: args without command
are passed to the image's entrypoint):
- ``registry.k8s.io/e2e-test-images/agnhost:<tag>`` (any registry, any tag) → ``agnhost ARGS``
- ``nginx`` / ``httpd`` (any tag) → an HTTP server on port 80 with a page naming the pod
Anything else is ErrImageNeverPull, the reason kubelet gives when an image is not present
and may not be pulled, with a message saying what to do instead.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import svcnet

REASON_IMAGE_NEVER_PULL = "ErrImageNeverPull"
AGNHOST = "agnhost"


@dataclass(frozen=True)
class ResolvedCommand:
    argv: tuple[str, ...] = ()
    reason: str = ""  # set when the container cannot start: the Waiting reason
    message: str = ""

    @property
    def ok(self) -> bool:
        return not self.reason


def image_repository(image: str) -> str:
    """The last path segment of the repository: "registry.k8s.io/x/agnhost:2.52" → "agnhost"."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[0].lower()


def resolve_command(image: str, command: Sequence[str], args: Sequence[str]) -> ResolvedCommand:
    if command:
        return ResolvedCommand(argv=(*command, *args))
    repo = image_repository(image)
    if repo == AGNHOST:
        return ResolvedCommand(argv=(AGNHOST, *args))
    if repo in ("nginx", "httpd"):
        return ResolvedCommand(argv=(AGNHOST, "svcnet-page", "--port", "80", "--server", repo))
    return ResolvedCommand(
        reason=REASON_IMAGE_NEVER_PULL,
        message=(
            f'Container image "{image}" is not present with pull policy of Never: svcnet runs '
            "no container runtime. Set the container's command (it runs on the node as given) "
            "or use a built-in image: registry.k8s.io/e2e-test-images/agnhost:<tag>, nginx, httpd"
        ),
    )


def agnhost_wrapper_text(python: str | None = None) -> str:
    """The `agnhost` script put on every pod's PATH.

    -S skips site-packages processing (agnhost is stdlib only) to save start time; the repo
    root goes on PYTHONPATH for this one exec only, so the container's env is untouched.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(svcnet.__file__)))
    return (
        "#!/bin/sh\n"
        f'PYTHONPATH="{root}" exec "{python or sys.executable}" -S -m svcnet.agent.agnhost "$@"\n'
    )


def ensure_bin_dir(bin_dir: str) -> str:
    """Write the wrapper dir (idempotent); prepend the returned dir to containers' PATH."""
    os.makedirs(bin_dir, exist_ok=True)
    path = os.path.join(bin_dir, AGNHOST)
    text = agnhost_wrapper_text()
    try:
        with open(path) as f:
            if f.read() == text:
                return bin_dir
    except FileNotFoundError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    os.replace(tmp, path)
    return bin_dir
