"""The sandbox applied from inside a container's first process (the fork server's child).

Why not runc: measured on this machine at load ~15, Debian's runc 1.1.5 runs ``/bin/true`` over
a bind-mounted read-only busybox root in 80 ms p50 (26 ms at best; 28 ms of CPU: two Go
re-execs per container), and the built-in agnhost would then pay a fresh interpreter (~40 ms
of CPU) instead of a fork of the warm one. Through the fork server a sandboxed agnhost starts
in 15-21 ms p50 against 11 ms unsandboxed (30 starts in a row at load ~29), the isolation
itself being 5-10 ms of system calls in the child. So the fork server applies it, step by
step as runc's ``libcontainer`` does for the same config (runc's default spec, containerd's
default capabilities, cgroups left out):
1. before the fork the server makes the child's PID namespace (``unshare(CLONE_NEWPID)``;
   ``setns`` back to its own first, since a process can unshare PID only once otherwise):
   the container's process is PID 1 and sees no process of the machine;
2. the child joins the pod's network namespace (none for hostNetwork), unshares mount, UTS
   and IPC namespaces, makes ``/`` a slave so nothing propagates back to the node;
3. the image's root is bind-mounted on itself, the node directories the image shares
   (``/usr``) and the pod's /etc/hosts, resolv.conf and hostname bound read-only on top; a
   fresh /proc (with runc's masked and read-only paths), /sys read-only, a /dev tmpfs holding
   only null, zero, full, random, urandom, tty, pts, shm and mqueue, then made read-only;
   /tmp and /run as tmpfs; the root remounted read-only; ``pivot_root`` and the old root
   detached, so the node's files, svcnet's state, /run/netns and other pods are unreachable;
4. hostname; capabilities cut to the container's set (bounding set dropped, then
   effective = permitted, inheritable and ambient empty as containerd ≥ 1.6), groups, gid and
   uid set, ``no_new_privs`` when asked; only then the exec.
Every writable mount is ``nodev``, so CAP_MKNOD (in the default set, normally fenced by the
device cgroup) cannot make a node that opens the machine's disks.

``python isolate.py enter PID -- ARGV`` runs a command inside a running container (exec,
exec probes, preStop hooks): it joins the container's namespaces and root as ``nsenter``
does, then takes the same capabilities, uid/gid/groups and no_new_privs as the container's
first process (read from /proc/PID/status). Stdlib only: the fork server imports it with
``-S`` and the agent runs it as a file.
"""

from __future__ import annotations

import ctypes
import os
import platform
import signal
import socket
import sys
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SLAVE = 0x80000
MS_STRICTATIME = 0x1000000
MNT_DETACH = 0x2
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
CAP_VERSION_3 = 0x20080522
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
SYS_OPEN_TREE = 428  # the same number on every architecture
SYS_MOVE_MOUNT = 429
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100
NETNS_DIR = "/run/netns"
# runc's default spec: hidden and read-only parts of /proc and /sys.
MASKED_PATHS = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")

_libc: Any = None


class SandboxError(Exception):
    pass


class NotFoundError(SandboxError):
    """The command is not in the container's filesystem."""


def libc() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(ret: int, what: str) -> None:
    if ret != 0:
        raise SandboxError(f"{what}: {os.strerror(ctypes.get_errno())}")


def _mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        libc().mount(
            src.encode() if src else None,
            dst.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {src or ''} on {dst}",
    )


# -- PID namespace (in the fork server, around the fork) --------------------------------------
def new_pid_namespace_for_children(own_pid_ns: int) -> None:
    _check(libc().setns(own_pid_ns, CLONE_NEWPID), "setns to the server's PID namespace")
    _check(libc().unshare(CLONE_NEWPID), "unshare of the PID namespace")


def reset_pid_namespace_for_children(own_pid_ns: int) -> None:
    _check(libc().setns(own_pid_ns, CLONE_NEWPID), "setns to the server's PID namespace")


# -- the container's first process ------------------------------------------------------------
def _bind_ro(src: str, dst: str, extra: int = 0) -> None:
    _mount(src, dst, None, MS_BIND | MS_REC)
    _mount(None, dst, None, MS_BIND | MS_REMOUNT | MS_RDONLY | extra)


def _make_dev(root: str) -> None:
    dev = root + "/dev"
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k")
    for name in DEVICES:
        path = f"{dev}/{name}"
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o666))
        _mount(f"/dev/{name}", path, None, MS_BIND)
    for link, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ):
        os.symlink(target, f"{dev}/{link}")
    for sub in ("pts", "shm", "mqueue"):
        os.mkdir(f"{dev}/{sub}", 0o755)
    _mount(
        "devpts",
        f"{dev}/pts",
        "devpts",
        MS_NOSUID | MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620",
    )
    _mount("shm", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k")
    _mount("mqueue", f"{dev}/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _mount(None, dev, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID, "mode=755,size=65536k")


def terminal_name(fd: int) -> str | None:
    """The node's name of the terminal on ``fd`` (a pseudo-terminal of the agent's)."""
    try:
        name = os.ttyname(fd)
    except OSError:
        return None
    return name if name.startswith("/dev/pts/") else None


def show_terminal(root: str, name: str) -> None:
    """Make the agent's terminal findable as ``name`` in the container (its own devpts does
    not hold it, so ``tty`` and ttyname() would fail): a small tmpfs over /dev/pts with that
    one device bound in, where runc would hand out a terminal of the container's devpts."""
    _mount("tmpfs", root + "/dev/pts", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755")
    target = root + name
    os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o600))
    _mount(name, target, None, MS_BIND)


def _mask(root: str) -> None:
    for path in MASKED_PATHS:
        target = root + path
        if os.path.isdir(target):
            _mount("tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
        elif os.path.exists(target):
            _mount("/dev/null", target, None, MS_BIND)
    for path in READONLY_PATHS:
        target = root + path
        if os.path.exists(target):
            _bind_ro(target, target, MS_NOSUID | MS_NODEV | MS_NOEXEC)


def resolve_in_root(root: str, path: str) -> str:
    """``path`` of the container as a node path under ``root``, its symbolic links resolved
    as if ``root`` were ``/`` (runc's securejoin): an image's ``/var/run -> /run`` leads to
    the container's /run, never to the node's, and ``..`` stops at the root."""
    parts = [p for p in path.split("/") if p]
    resolved = ""  # relative to root
    links = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            resolved = resolved.rpartition("/")[0]
            continue
        candidate = f"{resolved}/{part}" if resolved else part
        full = os.path.join(root, candidate)
        if os.path.islink(full):
            links += 1
            if links > 40:  # the kernel's MAXSYMLINKS
                raise SandboxError(f"mount point {path}: too many levels of symbolic links")
            target = os.readlink(full)
            if target.startswith("/"):
                resolved = ""
            parts = [p for p in target.split("/") if p] + parts
            continue
        resolved = candidate
    return os.path.join(root, resolved) if resolved else root


def _mount_point(src: str, target: str) -> None:
    """What a volume mounts over, made as runc makes it (an empty folder or file left in the
    image's folder when the path is not in the image; the root is read-only only later).
    ``target`` is already resolved inside the root (:func:`resolve_in_root`)."""
    if os.path.lexists(target):
        return
    if os.path.isdir(src):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o644))


def enter_sandbox(plan: dict[str, Any], terminal: str | None = None) -> None:
    """Steps 2 and 3 of the module docstring; the caller is PID 1 of a new PID namespace.
    ``terminal``: the node's name of the container's terminal, when it has one."""
    lib = libc()
    if plan.get("netns"):
        fd = os.open(os.path.join(NETNS_DIR, str(plan["netns"])), os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(lib.setns(fd, CLONE_NEWNET), f"setting the network namespace {plan['netns']}")
        finally:
            os.close(fd)
    _check(lib.unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC), "unshare")
    _mount(None, "/", None, MS_REC | MS_SLAVE)
    root = str(plan["rootfs"]).rstrip("/")
    privileged = bool(plan.get("privileged"))
    _mount(root, root, None, MS_BIND | MS_REC)
    for path in plan.get("tmpfs") or ():
        mode = "1777" if path == "/tmp" else "755"
        _mount("tmpfs", root + str(path), "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode}")
    for src, dst, readonly in plan.get("binds") or ():
        target = resolve_in_root(root, str(dst))
        _mount_point(str(src), target)
        if readonly:
            _bind_ro(str(src), target)
        else:
            # nodev: no device cgroup fences CAP_MKNOD here (see the module docstring)
            _mount(str(src), target, None, MS_BIND | MS_REC)
            _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_NODEV | MS_NOSUID)
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    sys_flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | (0 if privileged else MS_RDONLY)
    _mount("sysfs", root + "/sys", "sysfs", sys_flags)
    if not privileged:
        _make_dev(root)
        _mask(root)
        if terminal is not None:
            show_terminal(root, terminal)
    _mount(None, root, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fchdir(fd)
    finally:
        os.close(fd)
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise SandboxError(f"pivot_root: unsupported machine {platform.machine()}")
    _check(lib.syscall(number, b".", b"."), "pivot_root")
    _check(lib.umount2(b".", MNT_DETACH), "detaching the node's root")
    os.chdir("/")
    if plan.get("hostname"):
        socket.sethostname(str(plan["hostname"]))


def find_executable(argv0: str, env: dict[str, str]) -> str:
    """The path exec will run, looked up as the container's runtime does (after pivot)."""
    if "/" in argv0:
        candidates = [argv0]
    else:
        path = env.get("PATH") or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        candidates = [os.path.join(d or ".", argv0) for d in path.split(":")]
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise NotFoundError(f'exec: "{argv0}": executable file not found in $PATH')


def _capset(effective: int, permitted: int) -> None:
    header = (ctypes.c_uint32 * 2)(CAP_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)(
        effective & 0xFFFFFFFF,
        permitted & 0xFFFFFFFF,
        0,
        effective >> 32,
        permitted >> 32,
        0,
    )
    _check(libc().capset(header, data), "capset")


def drop_privileges(
    capabilities: int, uid: int, gid: int, groups: list[int], no_new_privs: bool
) -> None:
    """Step 4: ``capabilities`` is the bit mask the container keeps."""
    lib = libc()
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    # What this process holds bounds what it can give (the machine may run svcnet itself
    # with fewer than every capability): privileged means all of those.
    with open("/proc/self/status") as f:
        held = next(int(line.split()[1], 16) for line in f if line.startswith("CapPrm:"))
    capabilities &= held
    for cap in range(last + 1):
        if not capabilities & (1 << cap):
            _check(lib.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"dropping capability {cap}")
    _check(lib.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clearing ambient")
    os.setgroups(groups)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)  # a non-zero uid loses every capability here, as under runc
    if uid == 0:
        _capset(capabilities, capabilities)
    if no_new_privs:
        _check(lib.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def plan_mask(plan: dict[str, Any]) -> int:
    mask = 0
    for cap in plan.get("capabilities") or ():
        mask |= 1 << int(cap)
    return mask


def drop_to_plan(plan: dict[str, Any]) -> None:
    drop_privileges(
        plan_mask(plan),
        int(plan.get("uid") or 0),
        int(plan.get("gid") or 0),
        [int(g) for g in plan.get("groups") or ()],
        bool(plan.get("no_new_privs")),
    )


# -- exec into a running container -------------------------------------------------------------
def _status_of(pid: int) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def _same_device(path: str, fd: int) -> bool:
    try:
        return os.stat(path).st_rdev == os.fstat(fd).st_rdev
    except OSError:
        return False


def enter(pid: int, argv: list[str]) -> int:
    status = _status_of(pid)
    cwd = os.readlink(f"/proc/{pid}/cwd")
    # exec -it: the agent's terminal, taken as a mount of its own while it is in reach
    terminal = terminal_name(0)
    tree = -1
    if terminal is not None:
        tree = libc().syscall(
            SYS_OPEN_TREE, AT_FDCWD, terminal.encode(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC
        )
    root_fd = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY)
    ns_fds = [
        (os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY), flag)
        for ns, flag in (
            ("ipc", CLONE_NEWIPC),
            ("uts", CLONE_NEWUTS),
            ("net", CLONE_NEWNET),
            ("pid", CLONE_NEWPID),
            ("mnt", CLONE_NEWNS),
        )
    ]
    for fd, flag in ns_fds:
        _check(libc().setns(fd, flag), "setns")
        os.close(fd)
    os.fchdir(root_fd)
    os.chroot(".")
    os.close(root_fd)
    try:
        os.chdir(cwd)
    except OSError:
        os.chdir("/")
    child = os.fork()  # a PID namespace applies to children only
    if child == 0:
        try:
            if terminal is not None and tree >= 0 and not _same_device(terminal, 0):
                # shown in a mount namespace of this command's own, as for a container
                _check(libc().unshare(CLONE_NEWNS), "unshare")
                _mount(None, "/", None, MS_REC | MS_SLAVE)
                _mount("tmpfs", "/dev/pts", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755")
                os.close(os.open(terminal, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o600))
                _check(
                    libc().syscall(
                        SYS_MOVE_MOUNT, tree, b"", AT_FDCWD, terminal.encode(),
                        MOVE_MOUNT_F_EMPTY_PATH,
                    ),
                    "move_mount of the terminal",
                )  # fmt: skip
            drop_privileges(
                int(status["CapBnd"], 16),
                int(status["Uid"].split()[0]),
                int(status["Gid"].split()[0]),
                [int(g) for g in status.get("Groups", "").split()],
                status.get("NoNewPrivs", "0") == "1",
            )
            os.execvpe(argv[0], argv, dict(os.environ))
        except FileNotFoundError:
            sys.stderr.write(f'exec: "{argv[0]}": executable file not found in $PATH\n')
            os._exit(127)
        except BaseException as e:
            sys.stderr.write(f"exec {argv[0]}: {e}\n")
            os._exit(126)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: os.kill(child, s))
    while True:
        try:
            _, st = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    return 128 + os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st)


def main(args: list[str]) -> int:
    if len(args) < 4 or args[0] != "enter" or args[2] != "--":
        sys.stderr.write("usage: isolate.py enter PID -- COMMAND...\n")
        return 2
    return enter(int(args[1]), args[3:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
