"""Container processes: a command run inside a pod's network, UTS and mount namespaces.

The mechanism is ``ip netns exec <pod netns> unshare --uts -- /bin/sh -c '<set hostname>;
exec "$@"' <hostname> <argv...>``, chosen because each step is the standard tool and execs
into the next, so the PID we hold ends up being the container's own process:
- `ip netns exec` joins the pod's network namespace, unshares a private mount namespace and
  bind-mounts every file of /etc/netns/<name>/ over /etc (hosts, resolv.conf, hostname) and
  remounts /sys — exactly the per-pod /etc the issue asks for, with no mount code of ours;
- `unshare --uts` gives the container its own hostname, which the shell sets by writing
  /proc/sys/kernel/hostname (a shell builtin write: no `hostname` binary needed);
- the alternative, setns/unshare in a preexec_fn, needs ctypes for mount(2) (Python 3.11
  has no os.setns/os.unshare) and runs Python code between fork and exec in a process that
  has other threads, which is unsafe.
Each container gets its own session (process group), so stopping it reaches its children.
Exit codes follow container runtimes: a process killed by signal N exits 128+N.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# stdin is the write end of a pipe until the final exec swaps it for /dev/null: the runner
# reads EOF exactly when the container's own command starts, so `started` (and an exec into
# the container right after) never sees the half-made process.
SET_HOSTNAME_AND_EXEC = 'printf %s "$0" > /proc/sys/kernel/hostname && exec "$@" </dev/null'
# A container with stdin (``stdin: true``, attach) keeps the stdin it was given instead.
SET_HOSTNAME_AND_EXEC_WITH_STDIN = 'printf %s "$0" > /proc/sys/kernel/hostname && exec "$@"'
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ProcessError(Exception):
    pass


class ExecutableNotFound(ProcessError):
    """The command does not exist: runtimes answer StartError, exit code 128."""


@dataclass(frozen=True)
class ProcessSpec:
    argv: tuple[str, ...]
    netns: str | None  # pod namespace name; None runs in the current namespace (tests)
    hostname: str | None
    log_path: str
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    # The container's standard streams when the caller holds their other ends (the agent
    # copies output to the log itself, and keeps stdin for attach): pipes or one terminal.
    # None: stdin from /dev/null, output appended to log_path. The runner does not close them.
    stdin_fd: int | None = None
    stdout_fd: int | None = None
    stderr_fd: int | None = None
    tty: bool = False  # the streams are a terminal: it becomes the controlling terminal
    # The container's sandbox as svcnet.runtime.security renders it (rootfs, mounts, user,
    # capabilities); None runs the command on the node's filesystem, as root.
    sandbox: Mapping[str, Any] | None = None

    @property
    def attached(self) -> bool:
        """The container reads a stdin of its own (``stdin``/``tty`` in the pod spec)."""
        return self.stdin_fd is not None or self.tty


def exit_code_of(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def wrap_argv(spec: ProcessSpec) -> list[str]:
    """The full argv that enters the pod's namespaces and then runs ``spec.argv``."""
    argv = list(spec.argv)
    if spec.hostname:
        argv = [
            "unshare",
            "--uts",
            "--",
            "/bin/sh",
            "-c",
            SET_HOSTNAME_AND_EXEC_WITH_STDIN if spec.attached else SET_HOSTNAME_AND_EXEC,
            spec.hostname,
            *argv,
        ]
    if spec.netns:
        argv = ["ip", "netns", "exec", spec.netns, *argv]
    return argv


def resolve_executable(argv0: str, env: Mapping[str, str], cwd: str | None) -> str | None:
    if "/" in argv0:
        path = argv0 if os.path.isabs(argv0) else os.path.join(cwd or os.getcwd(), argv0)
        return path if os.access(path, os.X_OK) and not os.path.isdir(path) else None
    return shutil.which(argv0, path=env.get("PATH", DEFAULT_PATH))


class RunningProcess(Protocol):
    @property
    def pid(self) -> int: ...
    @property
    def exit_code(self) -> int | None: ...
    async def wait(self) -> int:
        """The exit code once the process has ended (128+N for signal N)."""
        ...

    async def stop(self, grace_seconds: float) -> int:
        """SIGTERM to the container's process group, SIGKILL after the grace period."""
        ...


class ProcessRunner(Protocol):
    async def start(self, spec: ProcessSpec) -> RunningProcess: ...


class _Proc:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self._code: int | None = None

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def exit_code(self) -> int | None:
        return self._code

    async def wait(self) -> int:
        rc = await self._proc.wait()
        self._code = exit_code_of(rc)
        return self._code

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    async def stop(self, grace_seconds: float) -> int:
        if self._proc.returncode is None:
            self._signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self._proc.wait()), grace_seconds)
            except TimeoutError:
                self._signal(signal.SIGKILL)
        code = await self.wait()
        # Children that ignored SIGTERM outlive the leader; the pod's processes go together.
        self._signal(signal.SIGKILL)
        return code


class NamespaceProcessRunner:
    """Starts container processes for real."""

    async def start(self, spec: ProcessSpec) -> RunningProcess:
        env = dict(spec.env)
        env.setdefault("PATH", DEFAULT_PATH)
        if not spec.argv:
            raise ProcessError("empty command")
        if spec.working_dir:
            os.makedirs(spec.working_dir, exist_ok=True)
        if resolve_executable(spec.argv[0], env, spec.working_dir) is None:
            raise ExecutableNotFound(f'exec: "{spec.argv[0]}": executable file not found in $PATH')
        os.makedirs(os.path.dirname(spec.log_path) or ".", exist_ok=True)
        if spec.attached:
            return await self._start_attached(spec, env)
        # The shell and ip need a PATH that finds them even when the container's own PATH
        # does not; env's PATH is what the container sees after the final exec.
        log = open(spec.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        ready_r, ready_w = os.pipe() if spec.hostname else (-1, -1)
        try:
            proc = await asyncio.create_subprocess_exec(
                *wrap_argv(spec),
                stdin=ready_w if spec.hostname else asyncio.subprocess.DEVNULL,
                stdout=log if spec.stdout_fd is None else spec.stdout_fd,
                stderr=log if spec.stderr_fd is None else spec.stderr_fd,
                env=env,
                cwd=spec.working_dir or "/",
                start_new_session=True,
            )
        finally:
            log.close()
            if spec.hostname:
                os.close(ready_w)
        if spec.hostname:
            try:
                await asyncio.wait_for(asyncio.to_thread(os.read, ready_r, 1), 10.0)
            except TimeoutError:
                pass  # a stuck mount or exec: the process is still ours to wait on and stop
            finally:
                os.close(ready_r)
        return _Proc(proc)

    @staticmethod
    async def _start_attached(spec: ProcessSpec, env: dict[str, str]) -> RunningProcess:
        """A container with its own stdin: no start hand-shake over stdin (the container
        reads it); with a terminal, ``setsid -c`` makes it the controlling one (the child is
        not a group leader yet, so setsid execs in place and the PID stays the container's)."""
        argv = wrap_argv(spec)
        if spec.tty:
            argv = ["setsid", "-c", *argv]
        log = None
        if spec.stdout_fd is None or spec.stderr_fd is None:
            log = open(spec.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=spec.stdin_fd if spec.stdin_fd is not None else asyncio.subprocess.DEVNULL,
                stdout=log if spec.stdout_fd is None else spec.stdout_fd,
                stderr=log if spec.stderr_fd is None else spec.stderr_fd,
                env=env,
                cwd=spec.working_dir or "/",
                start_new_session=not spec.tty,
            )
        finally:
            if log is not None:
                log.close()
        return _Proc(proc)


def log_path(log_dir: str, container: str, restart_count: int) -> str:
    """kubelet's layout: /var/log/pods/<ns>_<pod>_<uid>/<container>/<restartCount>.log."""
    return os.path.join(log_dir, container, f"{restart_count}.log")


def prune_logs(log_dir: str, container: str, restart_count: int) -> None:
    """Keep the current instance's log and the previous one (for `kubectl logs --previous`)."""
    folder = os.path.join(log_dir, container)
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    for name in names:
        stem = name.removesuffix(".log")
        if stem.isdigit() and int(stem) < restart_count - 1:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(folder, name))


# Enters a sandboxed container with its own capabilities and user (svcnet.runtime.isolate,
# run as a file: stdlib only, and this layer does not import the runtime's).
ENTER_SANDBOX = os.path.join(os.path.dirname(os.path.dirname(__file__)), "runtime", "isolate.py")


def _own_pid_namespace(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid") == os.readlink("/proc/self/ns/pid")
    except OSError:
        return True


def command_for_exec(pid: int, argv: Sequence[str]) -> list[str]:
    """argv for `kubectl exec`: join the running container's namespaces (and, for a
    sandboxed container, its root, user and capabilities)."""
    if not _own_pid_namespace(pid):
        return [sys.executable, "-S", ENTER_SANDBOX, "enter", str(pid), "--", *argv]
    return ["nsenter", "-t", str(pid), "-n", "-m", "-u", "--", *argv]
