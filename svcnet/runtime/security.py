"""A container's sandbox as data: from the pod, the container and its image to a
:class:`SandboxPlan` that :mod:`svcnet.runtime.isolate` applies in the container's process.

Pure: no I/O but reading the image's /etc/passwd and /etc/group to resolve a named user, as
containerd does. The rules are kubelet's and containerd's (CRI ``generateContainerSpec``):
- user: ``runAsUser``/``runAsGroup`` of the container, else of the pod, else the image's
  ``User`` (``uid``, ``uid:gid``, or names from the image's passwd/group); groups add the pod's
  ``supplementalGroups`` and ``fsGroup``. ``runAsNonRoot`` with uid 0 fails the container with
  CreateContainerConfigError and kubelet's message;
- capabilities: containerd's default set, ``drop`` then ``add`` (``ALL`` allowed in both);
  ``privileged`` gives every capability, the node's devices, and /proc and /sys unmasked;
- no_new_privs exactly when ``allowPrivilegeEscalation: false`` and not privileged
  (kubelet's ``AddNoNewPrivileges``: unset means allowed);
- the root filesystem is always a read-only view of the image (no per-container copy is
  made); ``/tmp`` and ``/run`` are fresh tmpfs unless ``readOnlyRootFilesystem: true``, in
  which case nothing but volumes is writable, as with a read-only root under runc.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from svcnet.runtime.images import Image, svcnet_paths

REASON_CONFIG_ERROR = "CreateContainerConfigError"

# Linux capability numbers (linux/capability.h).
CAPABILITIES: dict[str, int] = {
    name: i
    for i, name in enumerate(
        (
            "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
            "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
            "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
            "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
            "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
            "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
            "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
        )
    )
}  # fmt: skip
# containerd's oci.defaultUnixCaps (what a container gets with no securityContext).
DEFAULT_CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)  # fmt: skip
WRITABLE_TMPFS = ("/tmp", "/run")
ETC_FILES = ("hosts", "resolv.conf", "hostname")


class ConfigError(Exception):
    """The container cannot be created as specified: Waiting with CreateContainerConfigError."""


@dataclass(frozen=True)
class Bind:
    source: str  # a path on the node
    target: str  # absolute path in the container
    readonly: bool = True


@dataclass(frozen=True)
class SandboxPlan:
    rootfs: str
    binds: tuple[Bind, ...]
    tmpfs: tuple[str, ...]
    netns: str | None  # None: the node's network namespace (hostNetwork)
    hostname: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    capabilities: tuple[int, ...]
    privileged: bool = False
    no_new_privs: bool = False

    def to_json(self) -> dict[str, Any]:
        """What the fork server receives (see :func:`svcnet.runtime.isolate.apply`)."""
        return {
            "rootfs": self.rootfs,
            "binds": [[b.source, b.target, b.readonly] for b in self.binds],
            "tmpfs": list(self.tmpfs),
            "netns": self.netns,
            "hostname": self.hostname,
            "uid": self.uid,
            "gid": self.gid,
            "groups": list(self.groups),
            "capabilities": list(self.capabilities),
            "privileged": self.privileged,
            "no_new_privs": self.no_new_privs,
        }


def _cap_name(name: object) -> str:
    n = str(name).upper()
    return n[4:] if n.startswith("CAP_") else n


def capability_set(sc: Mapping[str, Any]) -> tuple[int, ...]:
    if sc.get("privileged"):
        return tuple(sorted(CAPABILITIES.values()))
    caps = sc.get("capabilities") or {}
    names = set(DEFAULT_CAPABILITIES)
    drop = {_cap_name(c) for c in caps.get("drop") or ()}
    add = {_cap_name(c) for c in caps.get("add") or ()}
    names = set() if "ALL" in drop else names - drop
    names |= set(CAPABILITIES) if "ALL" in add else add
    unknown = sorted(n for n in names if n not in CAPABILITIES)
    if unknown:
        raise ConfigError(f"unknown capability {unknown[0]!r}")
    return tuple(sorted(CAPABILITIES[n] for n in names))


def _lookup(rootfs: str, table: str, name: str) -> tuple[int, int] | None:
    """(id, gid) of ``name`` in the image's /etc/passwd (gid only for passwd) or /etc/group."""
    try:
        with open(os.path.join(rootfs, "etc", table)) as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 3 and parts[0] == name:
                    gid = int(parts[3]) if table == "passwd" and len(parts) > 3 else int(parts[2])
                    return int(parts[2]), gid
    except (OSError, ValueError):
        return None
    return None


def _gid_of_uid(rootfs: str, uid: int) -> int:
    try:
        with open(os.path.join(rootfs, "etc", "passwd")) as f:
            for line in f:
                parts = line.split(":")
                if len(parts) > 3 and parts[2] == str(uid):
                    return int(parts[3])
    except (OSError, ValueError):
        pass
    return 0


def image_user(image: Image | None) -> tuple[int | None, int | None, str]:
    """(uid, gid, name) from the image config's User; uid None when it is a name unknown."""
    user = image.config.user if image is not None else ""
    if not user:
        return 0, 0, ""
    name, _, group = user.partition(":")
    rootfs = image.rootfs if image is not None else ""
    uid: int | None
    gid: int | None = None
    if name.isdigit():
        uid = int(name)
        gid = _gid_of_uid(rootfs, uid)
    else:
        found = _lookup(rootfs, "passwd", name)
        uid, gid = (found[0], found[1]) if found else (None, None)
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            g = _lookup(rootfs, "group", group)
            gid = g[0] if g else None
    return uid, gid, name


def _merged(pod_sc: Mapping[str, Any], c_sc: Mapping[str, Any], key: str) -> Any:
    v = c_sc.get(key)
    return pod_sc.get(key) if v is None else v


def plan_sandbox(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    image: Image | None,
    node_view: Image,
    netns: str | None,
    hostname: str,
    etc_dir: str,
    volume_binds: Sequence[Bind] = (),
) -> SandboxPlan:
    """The sandbox of one container. ``image`` None runs over ``node_view`` (an unknown image
    with a command); ``volume_binds`` are its volumeMounts, resolved on the node (see
    :mod:`svcnet.runtime.volumes`). Raises :class:`ConfigError` with kubelet's message when
    it cannot run."""
    spec = pod.get("spec") or {}
    pod_sc: Mapping[str, Any] = spec.get("securityContext") or {}
    c_sc: Mapping[str, Any] = container.get("securityContext") or {}
    img = image or node_view
    uid_i, gid_i, user_name = image_user(image)
    run_as_user = _merged(pod_sc, c_sc, "runAsUser")
    run_as_group = _merged(pod_sc, c_sc, "runAsGroup")
    uid = int(run_as_user) if run_as_user is not None else uid_i
    if uid is None:
        raise ConfigError(f"unable to find user {user_name}: no matching entries in passwd file")
    gid = int(run_as_group) if run_as_group is not None else (gid_i or 0)
    if _merged(pod_sc, c_sc, "runAsNonRoot"):
        if run_as_user is None and user_name and not user_name.isdigit():
            raise ConfigError(
                f"container has runAsNonRoot and image has non-numeric user ({user_name}), "
                "cannot verify user is non-root"
            )
        if uid == 0:
            pod_name = (pod.get("metadata") or {}).get("name", "")
            raise ConfigError(
                "container has runAsNonRoot and image will run as root "
                f'(pod: "{pod_name}_{(pod.get("metadata") or {}).get("namespace", "")}'
                f'({(pod.get("metadata") or {}).get("uid", "")})", '
                f"container: {container.get('name', '')})"
            )
    groups = [int(g) for g in pod_sc.get("supplementalGroups") or ()]
    if pod_sc.get("fsGroup") is not None:
        groups.append(int(pod_sc["fsGroup"]))
    privileged = bool(c_sc.get("privileged"))
    binds = [Bind(p, p) for p in img.config.node_binds]
    if "/usr" in img.config.node_binds:
        # svcnet's agnhost and tools, with the interpreter they run on (not svcnet's state)
        binds.extend(Bind(p, p) for p in svcnet_paths())
    usr_local = os.path.join(os.path.dirname(img.rootfs), "rootfs", "usr-local")
    if "/usr" in img.config.node_binds and os.path.isdir(usr_local):
        binds.append(Bind(usr_local, "/usr/local"))
    binds.extend(Bind(os.path.join(etc_dir, f), f"/etc/{f}") for f in ETC_FILES)
    if privileged:
        binds.append(Bind("/dev", "/dev", readonly=False))
    binds.extend(volume_binds)
    read_only = bool(c_sc.get("readOnlyRootFilesystem"))
    ape = c_sc.get("allowPrivilegeEscalation")
    return SandboxPlan(
        rootfs=img.rootfs,
        binds=tuple(binds),
        tmpfs=() if read_only else WRITABLE_TMPFS,
        netns=netns,
        hostname=hostname,
        uid=uid,
        gid=gid,
        groups=tuple(groups),
        capabilities=capability_set({**c_sc, "privileged": privileged}),
        privileged=privileged,
        no_new_privs=ape is False and not privileged,
    )


def container_env(image: Image | None, env: Mapping[str, str]) -> dict[str, str]:
    """The image's env overridden by the container's, as containerd merges them."""
    out = image.config.env_map() if image is not None else {}
    out.update(env)
    return out


def working_dir(image: Image | None, container: Mapping[str, Any]) -> str:
    wd = container.get("workingDir") or (image.config.working_dir if image else "")
    return str(wd or "/")
