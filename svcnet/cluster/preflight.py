"""What ``svcnet up`` needs from the machine, checked before it changes anything.

Each requirement names the Debian package that provides it, so the message says exactly what
to install. The check itself is pure over three probes (is a command on PATH, does a file
exist, the effective UID), so it is tested without changing the machine.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass

CNI_PLUGIN_DIRS: tuple[str, ...] = ("/usr/lib/cni", "/opt/cni/bin")
CNI_PLUGINS: tuple[str, ...] = ("bridge", "host-local", "loopback", "portmap")


@dataclass(frozen=True)
class Requirement:
    what: str  # a command name or a CNI plugin
    package: str  # the Debian package that provides it
    kind: str = "command"  # "command" | "cni-plugin"


REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("ip", "iproute2"),
    Requirement("nft", "nftables"),
    Requirement("conntrack", "conntrack"),
    Requirement("nsenter", "util-linux"),
    Requirement("unshare", "util-linux"),
    Requirement("setsid", "util-linux"),
    Requirement("sysctl", "procps"),
    *(Requirement(p, "containernetworking-plugins", "cni-plugin") for p in CNI_PLUGINS),
)


class PreflightError(Exception):
    """svcnet cannot start on this machine; the message says what to do."""


def missing(
    requirements: Sequence[Requirement] = REQUIREMENTS,
    *,
    which: Callable[[str], str | None] = shutil.which,
    exists: Callable[[str], bool] = os.path.exists,
    plugin_dirs: Sequence[str] = CNI_PLUGIN_DIRS,
) -> list[Requirement]:
    out = []
    for r in requirements:
        if r.kind == "cni-plugin":
            if not any(exists(os.path.join(d, r.what)) for d in plugin_dirs):
                out.append(r)
        elif which(r.what) is None:
            out.append(r)
    return out


def message(euid: int, absent: Sequence[Requirement]) -> str | None:
    """The reason svcnet cannot start, or None when it can."""
    if euid != 0:
        return (
            "svcnet up needs root: it creates network namespaces, a bridge, routes and nftables "
            "rules. Run it with sudo."
        )
    if not absent:
        return None
    packages = sorted({r.package for r in absent})
    commands = [r.what for r in absent if r.kind == "command"]
    plugins = [r.what for r in absent if r.kind == "cni-plugin"]
    parts = []
    if commands:
        parts.append("command(s) " + ", ".join(commands))
    if plugins:
        parts.append(
            "CNI plugin(s) " + ", ".join(plugins) + f" (looked in {', '.join(CNI_PLUGIN_DIRS)})"
        )
    return (
        f"svcnet up needs {' and '.join(parts)}, which this machine lacks. "
        f"Install them with: apt-get install {' '.join(packages)}"
    )


def check() -> None:
    """Raise :class:`PreflightError` unless this machine can run svcnet."""
    text = message(os.geteuid(), missing())
    if text is not None:
        raise PreflightError(text)
