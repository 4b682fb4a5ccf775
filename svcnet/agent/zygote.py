"""A warm fork server for the built-in images: one per node, started by the agent on demand.

A container of a built-in image (agnhost, nginx, httpd: see :mod:`svcnet.agent.images`) used
to start as ``ip netns exec`` → ``unshare --uts`` → ``sh`` → a fresh ``python -m
svcnet.agent.agnhost``: four execs and ~40 ms of CPU for an interpreter start and imports,
then ~50 ms before it listened — longer than the agent takes to send the first readiness probe.
Here one process has imported agnhost once; for each container it forks, and the child enters
the pod's namespaces itself before it runs the subcommand. What the child does is what the
exec chain did, step by step, so the container is the same kind of process:
- ``setsid()``: its own session and process group (the agent signals the group);
- ``setns(/run/netns/<pod>, CLONE_NEWNET)``: the pod's network namespace;
- ``unshare(CLONE_NEWNS)``, ``/`` made recursively slave, /sys remounted for the pod's netns,
  and every file of ``/etc/netns/<pod>/`` bind-mounted over ``/etc`` — what ``ip netns exec``
  does (iproute2 ``netns_exec``/``bind_etc``), so /etc/hosts and /etc/resolv.conf are the pod's;
- ``unshare(CLONE_NEWUTS)`` and ``sethostname``: what ``unshare --uts`` and the shell did;
- working directory, environment, stdin from /dev/null, stdout and stderr the two pipes the
  agent sent with the request (it writes the log) or else appended to the container's log file; the server subcommands' ports bound (``agnhost.prebind``: a compiled
  agnhost listens within a moment of its exec, a Python thread scheduled late would not);
  then the subcommand, and its return code is the exit code.
The child tells the agent "started" only after all of that, as the exec chain's pipe did, so
a probe or an exec never meets a half-made container. Signals reach it as before (the agent
``killpg``s its group); a signal's death is reported as the wait status, so the agent maps it
to 128+N like any process. The zygote is the children's parent: it reaps them and sends each
exit status to the agent. ``/proc/<pid>/cmdline`` and ``/proc/<pid>/environ`` of the child
are rewritten in place (the zygote is started with room for them) to show the container's
own command and environment, as after an exec.

A request with a ``sandbox`` (every pod's container when the agent runs with an image store:
see :mod:`svcnet.runtime.isolate` for the steps and why this, not runc) is forked into a PID
namespace of its own; the child builds the container's mount namespace over its image's root
filesystem, drops to the container's user and capabilities, and then either runs the built-in
agnhost in this process or execs the container's command. Without a sandbox the child does
what the exec chain did, as below.

Stdlib only and no asyncio (kept small: it stays resident, and every child shares its pages).
The zygote is single-threaded, so fork() is safe; it exits when the agent closes its socket.

Protocol over a SOCK_SEQPACKET socket pair (one JSON object per message):
- agent → zygote: ``{"id", "argv", "env", "cwd", "netns", "hostname", "log"}``, with the
  container's stdout and stderr as SCM_RIGHTS descriptors when the agent holds them;
- child → agent: ``{"id", "started": pid}`` or ``{"id", "error": text, "pid"}``;
- zygote → agent: ``{"exited": pid, "status": wait status}``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import select
import signal
import socket
import sys
import termios
import traceback
from typing import Any

from svcnet.agent import agnhost
from svcnet.agent.zygote_protocol import MAX_MESSAGE
from svcnet.runtime import isolate

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SLAVE = 0x80000
MNT_DETACH = 0x2
ST_RDONLY = 0x1
NETNS_DIR = "/run/netns"
ETC_NETNS_DIR = "/etc/netns"

_libc: Any = None


class SetupError(Exception):
    pass


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err)}")


def enter_pod(netns: str, hostname: str) -> None:
    """Join the pod's network namespace and make the container's mount and UTS namespaces."""
    libc = _libc
    fd = os.open(os.path.join(NETNS_DIR, netns), os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(libc.setns(fd, CLONE_NEWNET), f"setting the network namespace {netns}")
    finally:
        os.close(fd)
    _check(libc.unshare(CLONE_NEWNS), "unshare of the mount namespace")
    # As ip netns exec: nothing mounted here propagates back to the node.
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_SLAVE, None), 'mount --make-rslave "/"')
    flags = 0
    if libc.umount2(b"/sys", MNT_DETACH) != 0 and os.statvfs("/sys").f_flag & ST_RDONLY:
        flags = MS_RDONLY  # a read-only sysfs cannot be shadowed by a read-write one
    _check(libc.mount(netns.encode(), b"/sys", b"sysfs", flags, None), "mount of /sys")
    etc = os.path.join(ETC_NETNS_DIR, netns)
    try:
        names = os.listdir(etc)
    except FileNotFoundError:
        names = []
    for name in names:
        src = os.path.join(etc, name).encode()
        dst = os.path.join("/etc", name).encode()
        _check(libc.mount(src, dst, b"none", MS_BIND, None), f"bind {etc}/{name} -> /etc/{name}")
    if hostname:
        _check(libc.unshare(CLONE_NEWUTS), "unshare of the UTS namespace")
        socket.sethostname(hostname)


def _proc_ranges() -> tuple[int, int, int, int]:
    """(arg_start, arg_end, env_start, env_end) of this process, from /proc/self/stat."""
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    # Fields 48 to 51 of proc(5) (arg_start .. env_end); field N is index N-3 after ")".
    a0, a1, e0, e1 = (int(x) for x in fields[45:49])
    return a0, a1, e0, e1


def _rewrite(start: int, end: int, data: bytes) -> None:
    size = end - start
    if size <= 0:
        return
    data = data[: size - 1]
    ctypes.memmove(start, data + b"\0" * (size - len(data)), size)


def show_as(argv: list[str], env: dict[str, str]) -> None:
    """Make /proc/self/cmdline and /environ show the container's command and environment."""
    a0, a1, e0, e1 = _proc_ranges()
    _rewrite(a0, a1, b"".join(a.encode() + b"\0" for a in argv))
    block = b""
    for k, v in env.items():
        item = f"{k}={v}".encode() + b"\0"
        if len(block) + len(item) >= e1 - e0:
            break  # no room: the agent keeps the full environment for exec and hooks
        block += item
    _rewrite(e0, e1, block)


def _child(
    sock: socket.socket, wake_fds: tuple[int, ...], req: dict[str, Any], streams: dict[str, int]
) -> None:
    """In the forked child: become the container, tell the agent, run the subcommand."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as a fresh interpreter
        for fd in wake_fds:
            os.close(fd)
        os.setsid()
        argv = [str(a) for a in req["argv"]]
        env = {str(k): str(v) for k, v in req["env"].items()}
        if "stdout" in streams and "stderr" in streams:  # the agent's pipes: it writes the log
            out_fd, err_fd = streams["stdout"], streams["stderr"]
        else:
            out_fd = err_fd = os.open(
                req["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
            )
        null_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        plan = req.get("sandbox")
        if plan is not None:
            in_fd = streams.get("stdin", null_fd)
            _sandboxed(sock, req, plan, argv, env, (in_fd, out_fd, err_fd))
        if req.get("netns"):
            enter_pod(str(req["netns"]), str(req.get("hostname") or ""))
        elif req.get("hostname"):
            _check(_libc.unshare(CLONE_NEWUTS), "unshare of the UTS namespace")
            socket.sethostname(str(req["hostname"]))
        os.chdir(req.get("cwd") or "/")
        os.environ.clear()
        os.environ.update(env)
        show_as(["agnhost", *argv], env)
        os.dup2(null_fd, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        os.close(null_fd)
        for fd in {out_fd, err_fd}:
            os.close(fd)
        sys.argv = ["agnhost", *argv]
        agnhost.prebind(argv)
    except BaseException as e:
        text = str(e) if isinstance(e, SetupError | OSError) else traceback.format_exc()
        _send(sock, {"id": req.get("id"), "error": text, "pid": os.getpid()})
        os._exit(127)
    _send(sock, {"id": req["id"], "started": os.getpid()})
    sock.close()
    _run_agnhost(argv)


def _sandboxed(
    sock: socket.socket,
    req: dict[str, Any],
    plan: dict[str, Any],
    argv: list[str],
    env: dict[str, str],
    stdio: tuple[int, int, int],
) -> None:
    """A container in its sandbox (:mod:`svcnet.runtime.isolate`): this process is PID 1 of
    its own PID namespace. The built-in agnhost runs in this process, anything else is
    exec'd; the agent hears "started" only once the sandbox is whole and the command found."""
    in_process = bool(plan.get("agnhost"))
    host_pid = int(os.readlink("/proc/self"))  # getpid() is 1: /proc is still the node's
    try:
        isolate.enter_sandbox(plan, isolate.terminal_name(stdio[0]) if req.get("tty") else None)
        os.chdir(req.get("cwd") or "/")
        path = "" if in_process else isolate.find_executable(argv[0], env)
        isolate.drop_to_plan(plan)
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        for fd in set(stdio) - {0, 1, 2}:
            os.close(fd)
        if req.get("tty"):
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # after setsid: the container's terminal
        if in_process:
            # /agnhost SUBCOMMAND… or /pause: agnhost's own argument list
            sub = argv[1:] if os.path.basename(argv[0]) == "agnhost" else ["pause", *argv[1:]]
            os.environ.clear()
            os.environ.update(env)
            show_as(argv, env)
            sys.argv = list(argv)
            agnhost.prebind(sub)
    except BaseException as e:
        text = str(e) if isinstance(e, isolate.SandboxError | OSError) else traceback.format_exc()
        msg: dict[str, Any] = {"id": req.get("id"), "error": text, "pid": host_pid}
        if isinstance(e, isolate.NotFoundError):
            msg["notfound"] = True
        _send(sock, msg)
        os._exit(127)
    _send(sock, {"id": req["id"], "started": host_pid})
    sock.close()
    if in_process:
        _run_agnhost(sub)
    try:
        os.execve(path, argv, env)
    except OSError as e:  # after "started": the container's own failure, as runc's exec
        os.write(2, f"exec {argv[0]}: {e.strerror}\n".encode())
        os._exit(126 if e.errno == errno.EACCES else 127)


def _exit_on_signal(signum: int, _frame: object) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(128 + signum)


def _run_agnhost(argv: list[str]) -> None:
    if os.getpid() == 1:
        # PID 1 of a namespace gets only the signals it handles: agnhost (a Go program
        # upstream, whose runtime handles SIGTERM) stops on SIGTERM as 128+15.
        signal.signal(signal.SIGTERM, _exit_on_signal)
    code = 1
    try:
        code = agnhost.main(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:  # a crash is the container's exit 1, with its trace in the log
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed log cannot take the last words
                stream.flush()
    os._exit(code & 0xFF)  # daemon threads may be blocked in accept(); do not wait for them


def _send(sock: socket.socket, msg: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the agent is gone: nobody to tell
        sock.send(json.dumps(msg).encode())


def serve(sock: socket.socket) -> None:
    global _libc
    _libc = ctypes.CDLL(None, use_errno=True)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    # The agent signals whole process groups; a SIGTERM meant for the node must not kill us
    # before the agent closes the socket.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        ready, _, _ = select.select([sock.fileno(), wake_r], [], [])
        if wake_r in ready:
            while True:
                try:
                    if not os.read(wake_r, 512):
                        break
                except BlockingIOError:
                    break
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            _send(sock, {"exited": pid, "status": status})
        if sock.fileno() in ready:
            try:
                data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 3)
            except InterruptedError:
                continue
            except OSError:
                data = b""  # reset by the agent's end: closed all the same
            if not data:
                return  # the agent closed its end: children keep running, reparented
            req = json.loads(data)
            names = req.get("fds") or (["stdout", "stderr"] if len(fds) == 2 else [])
            streams = dict(zip(names, fds, strict=False)) if len(names) == len(fds) else {}
            sandboxed = req.get("sandbox") is not None
            try:
                if sandboxed:
                    isolate.new_pid_namespace_for_children(own_pid_ns)
                pid = os.fork()
            except (OSError, isolate.SandboxError) as e:
                _send(sock, {"id": req.get("id"), "error": f"fork: {e}", "pid": 0})
                pid = -1
            finally:
                if sandboxed:
                    with contextlib.suppress(isolate.SandboxError):
                        isolate.reset_pid_namespace_for_children(own_pid_ns)
            if pid == 0:
                _child(sock, (wake_r, wake_w, own_pid_ns), req, streams)
            for fd in fds:  # the child has them
                os.close(fd)


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    serve(sock)


if __name__ == "__main__":
    main()
