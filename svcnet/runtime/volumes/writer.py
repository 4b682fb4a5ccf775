"""The node side of a pod's volumes: the few file and mount operations a plan needs.

- :func:`write_atomic` is kubelet's ``AtomicWriter``: the files go into a fresh hidden folder
  ``..<timestamp>``; ``..data`` is a symbolic link to it, swapped with one ``rename`` (a
  reader sees the old set or the new one, never a mix); each top-level name is a link
  ``name -> ..data/name``. The container mounts the volume's folder, so a swap shows in
  running containers at once. Nothing is written when the payload is unchanged.
- :func:`check_host_path` is the hostPath plugin's type check (``DirectoryOrCreate`` and
  ``FileOrCreate`` create the path), with its error wording.
- an ``emptyDir`` is a folder with mode 0777; with ``medium: Memory`` a tmpfs is mounted on
  it (``size=`` its sizeLimit), in the agent's mount namespace — the machine's, since the
  agent changes only its network namespace — so every container of the pod shares it;
  :func:`remove_pod_volumes` unmounts and removes them with the pod's sandbox, and
  :func:`unmount_under` sweeps what a killed agent left.
- :func:`resolve_sub_path`: a subPath is created when missing (not in API-data volumes) and
  must resolve, symbolic links followed, inside its volume.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from datetime import datetime

from svcnet.runtime.isolate import MNT_DETACH, MS_NODEV, MS_NOSUID, SandboxError, libc
from svcnet.runtime.volumes.plan import MountError, Payload

DATA_LINK = "..data"
DATA_TMP = "..data_tmp"
EMPTY_DIR_MODE = 0o777


# -- configMap, secret, downwardAPI, projected ---------------------------------------------------
def _current(target: str) -> dict[str, tuple[bytes, int]] | None:
    """The payload the volume shows now, or None when it has none yet."""
    data = os.path.join(target, DATA_LINK)
    if not os.path.islink(data):
        return None
    out = {}
    for dirpath, _dirs, files in os.walk(data, followlinks=False):
        for f in files:
            path = os.path.join(dirpath, f)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, data)] = (fh.read(), stat.S_IMODE(os.lstat(path).st_mode))
    return out


def _visible(payload: Payload) -> set[str]:
    return {p.split("/", 1)[0] for p in payload}


def write_atomic(target: str, payload: Payload, now: datetime) -> bool:
    """Make ``target`` show ``payload``; True when something was written."""
    os.makedirs(target, exist_ok=True)
    current = _current(target)
    wanted = {p: (e.data, e.mode) for p, e in payload.items()}
    if current == wanted:
        return False
    old = os.readlink(os.path.join(target, DATA_LINK)) if current is not None else ""
    prefix = now.strftime("..%Y_%m_%d_%H_%M_%S.")
    ts_dir = tempfile.mkdtemp(prefix=prefix, dir=target)
    os.chmod(ts_dir, 0o755)
    for path, entry in payload.items():
        full = os.path.join(ts_dir, path)
        os.makedirs(os.path.dirname(full), mode=0o755, exist_ok=True)
        fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(entry.data)
        os.chmod(full, entry.mode)
    tmp_link = os.path.join(target, DATA_TMP)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp_link)
    os.symlink(os.path.basename(ts_dir), tmp_link)
    os.rename(tmp_link, os.path.join(target, DATA_LINK))
    visible = _visible(payload)
    for name in visible:
        link = os.path.join(target, name)
        if not os.path.lexists(link):
            os.symlink(os.path.join(DATA_LINK, name), link)
    for name in os.listdir(target):
        if name.startswith("..") or name in visible:
            continue
        os.unlink(os.path.join(target, name))  # a user-visible link of the old payload
    if old and old != os.path.basename(ts_dir):
        shutil.rmtree(os.path.join(target, old), ignore_errors=True)
    return True


# -- hostPath -----------------------------------------------------------------------------------
_TYPE_CHECKS = {
    "Directory": (stat.S_ISDIR, "is not a directory"),
    "File": (stat.S_ISREG, "is not a file"),
    "Socket": (stat.S_ISSOCK, "is not a socket file"),
    "CharDevice": (stat.S_ISCHR, "is not a character device"),
    "BlockDevice": (stat.S_ISBLK, "is not a block device"),
}


def check_host_path(volume: str, path: str, kind: str) -> None:
    """The hostPath plugin's checkTypeInternal; raises :class:`MountError`."""
    if kind == "":
        return
    if kind == "DirectoryOrCreate" and not os.path.lexists(path):
        os.makedirs(path, mode=0o755, exist_ok=True)
        return
    if kind == "FileOrCreate" and not os.path.lexists(path):
        try:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
        except OSError as e:
            raise MountError(volume, f"open {path}: {(e.strerror or str(e)).lower()}") from e
        return
    base = kind.removesuffix("OrCreate")
    if base not in _TYPE_CHECKS:
        raise MountError(volume, f"{kind} is an invalid volume type")
    is_kind, words = _TYPE_CHECKS[base]
    try:
        ok = is_kind(os.stat(path).st_mode)
    except OSError:
        ok = False
    if not ok:
        raise MountError(volume, f"hostPath type check failed: {path} {words}")


# -- emptyDir -----------------------------------------------------------------------------------
def mount_points() -> list[str]:
    """Every mount point of this process's mount namespace (/proc/self/mountinfo)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            # octal escapes (\040 for a space) as the kernel writes them
            out.append(fields[4].encode().decode("unicode_escape"))
    return out


def setup_empty_dir(path: str, memory: bool, size_limit: int | None) -> None:
    os.makedirs(path, exist_ok=True)
    os.chmod(path, EMPTY_DIR_MODE)
    if not memory or os.path.realpath(path) in mount_points():
        return
    options = f"mode={EMPTY_DIR_MODE:o}" + (f",size={size_limit}" if size_limit else "")
    ret = libc().mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options.encode())
    if ret != 0:
        import ctypes

        raise SandboxError(f"mount tmpfs on {path}: {os.strerror(ctypes.get_errno())}")


def unmount_under(root: str) -> list[str]:
    """Detach every mount at or below ``root``, deepest first; what was unmounted."""
    real = os.path.realpath(root)
    under = [m for m in mount_points() if m == real or m.startswith(real + "/")]
    for m in sorted(under, key=len, reverse=True):
        libc().umount2(m.encode(), MNT_DETACH)
    return under


def remove_pod_volumes(pods_root: str, pod_uid: str) -> None:
    """The pod's volume folders (its tmpfs unmounted first); hostPaths are not touched."""
    root = os.path.join(pods_root, pod_uid)
    if not os.path.isdir(root):
        return
    unmount_under(root)
    shutil.rmtree(root, ignore_errors=True)


# -- subPath ------------------------------------------------------------------------------------
def resolve_sub_path(root: str, sub_path: str, create: bool) -> str:
    """The real path a subPath mount binds; raises OSError or ValueError when it cannot."""
    path = os.path.join(root, sub_path)
    if create and not os.path.lexists(path):
        os.makedirs(path, mode=stat.S_IMODE(os.stat(root).st_mode), exist_ok=True)
    real = os.path.realpath(path)
    real_root = os.path.realpath(root)
    if real != real_root and not real.startswith(real_root + "/"):
        raise ValueError(f"subpath {sub_path!r} not within volume path {root!r}")
    os.stat(real)
    return real


def remove_orphan_volumes(pods_root: str, keep: set[str]) -> list[str]:
    """The volume folders of pods not in ``keep`` (left by an agent that was killed); the
    pods' log folders beside them are left alone."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for uid in os.listdir(pods_root):
            if uid not in keep and os.path.isdir(os.path.join(pods_root, uid, "volumes")):
                remove_pod_volumes(pods_root, uid)
                removed.append(uid)
    return removed
