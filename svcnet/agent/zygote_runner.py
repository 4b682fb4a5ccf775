"""The agent's side of :mod:`svcnet.agent.zygote`: a ProcessRunner that starts every sandboxed
container (a ProcessSpec with a ``sandbox``, see :mod:`svcnet.runtime.isolate`) and, without a
sandbox, the built-in agnhost on the node's PATH by asking the node's warm fork server; any
other unsandboxed command goes through the exec-chain runner as before.

The zygote starts with the first such container and lives as long as this runner (the agent's
run); it is the containers' parent and reports their exit statuses, so no thread per child
waits here: one reader on the socket, in the event loop, routes "started", "error" and
"exited" messages to the waiting container.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from typing import Any

import svcnet
from svcnet.agent.images import AGNHOST
from svcnet.agent.zygote_protocol import ARGV_ROOM, ENV_ROOM, MAX_MESSAGE, PAD_VAR
from svcnet.dataplane.process import (
    DEFAULT_PATH,
    ExecutableNotFound,
    NamespaceProcessRunner,
    ProcessError,
    ProcessSpec,
    RunningProcess,
    exit_code_of,
)

START_TIMEOUT = 10.0


class ZygoteProcess:
    """A container forked by the zygote; the same contract as the exec runner's processes."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._code: int | None = None
        self._done = asyncio.Event()

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def exit_code(self) -> int | None:
        return self._code

    def exited(self, status: int) -> None:
        if self._code is None:
            self._code = exit_code_of(
                -os.WTERMSIG(status) if os.WIFSIGNALED(status) else (os.WEXITSTATUS(status))
            )
            self._done.set()

    async def wait(self) -> int:
        await self._done.wait()
        assert self._code is not None
        return self._code

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._pid, sig)

    async def stop(self, grace_seconds: float) -> int:
        if self._code is None:
            self._signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self._done.wait()), grace_seconds)
            except TimeoutError:
                self._signal(signal.SIGKILL)
        code = await self.wait()
        # Children that ignored SIGTERM outlive the leader; the pod's processes go together.
        self._signal(signal.SIGKILL)
        return code


class ZygoteRunner:
    """ProcessRunner: built-in images from the warm fork server, the rest via ``fallback``."""

    def __init__(self, bin_dir: str, fallback: NamespaceProcessRunner | None = None) -> None:
        self.bin_dir = bin_dir
        self.fallback = fallback or NamespaceProcessRunner()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._next_id = 0
        self._starting: dict[int, asyncio.Future[int]] = {}
        self._running: dict[int, ZygoteProcess] = {}
        self._early_exits: dict[int, int] = {}
        self._failed: set[int] = set()  # children that reported a failed start
        self._lock = asyncio.Lock()

    def serves(self, spec: ProcessSpec) -> bool:
        """Every sandboxed container (attached ones too: the zygote takes their stdin and
        terminal); unsandboxed, only the built-in agnhost on this node's PATH, as the
        container would resolve it, and not attachable (then an ordinary process)."""
        if spec.sandbox is not None:
            return bool(spec.argv)
        if not spec.argv or spec.argv[0] != AGNHOST or spec.attached:
            return False
        path = spec.env.get("PATH", DEFAULT_PATH)
        first = next((d for d in path.split(":") if os.path.exists(os.path.join(d, AGNHOST))), "")
        return os.path.abspath(first) == os.path.abspath(self.bin_dir)

    async def start(self, spec: ProcessSpec) -> RunningProcess:
        if not self.serves(spec):
            return await self.fallback.start(spec)
        sock = await self._ensure()
        env = dict(spec.env)
        env.setdefault("PATH", DEFAULT_PATH)
        if spec.working_dir and spec.sandbox is None:
            os.makedirs(spec.working_dir, exist_ok=True)
        os.makedirs(os.path.dirname(spec.log_path) or ".", exist_ok=True)
        self._next_id += 1
        req_id = self._next_id
        started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._starting[req_id] = started
        msg = {
            "id": req_id,
            # Sandboxed: the whole command; else agnhost's arguments.
            "argv": list(spec.argv if spec.sandbox is not None else spec.argv[1:]),
            "sandbox": dict(spec.sandbox) if spec.sandbox is not None else None,
            "env": env,
            "cwd": spec.working_dir or "/",
            "netns": spec.netns,
            "hostname": spec.hostname,
            "log": spec.log_path,
        }
        try:
            streams = [
                (name, fd)
                for name, fd in (
                    ("stdin", spec.stdin_fd if spec.sandbox is not None else None),
                    ("stdout", spec.stdout_fd),
                    ("stderr", spec.stderr_fd),
                )
                if fd is not None
            ]
            msg["fds"] = [name for name, _ in streams]
            msg["tty"] = spec.tty and spec.sandbox is not None
            socket.send_fds(sock, [json.dumps(msg).encode()], [fd for _, fd in streams])
            pid = await asyncio.wait_for(started, START_TIMEOUT)
        except OSError as e:
            raise ProcessError(f"built-in image runner: {e}") from e
        except TimeoutError as e:
            raise ProcessError("built-in image runner: no answer from the zygote") from e
        finally:
            self._starting.pop(req_id, None)
        proc = ZygoteProcess(pid)
        early = self._early_exits.pop(pid, None)
        if early is not None:
            proc.exited(early)
        else:
            self._running[pid] = proc
        return proc

    async def _ensure(self) -> socket.socket:
        async with self._lock:
            if self._sock is not None and self._proc is not None and self._proc.poll() is None:
                return self._sock
            self._shutdown()
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            root = os.path.dirname(os.path.dirname(os.path.abspath(svcnet.__file__)))
            env = {
                "PATH": DEFAULT_PATH,
                "PYTHONPATH": root,
                # Room for each child's /proc/<pid>/environ (see svcnet.agent.zygote).
                PAD_VAR: "x" * ENV_ROOM,
            }
            argv = [
                sys.executable,
                "-S",
                "-m",
                "svcnet.agent.zygote",
                str(theirs.fileno()),
                " " * ARGV_ROOM,  # room for each child's /proc/<pid>/cmdline
            ]
            try:
                self._proc = subprocess.Popen(
                    argv,
                    env=env,
                    pass_fds=(theirs.fileno(),),
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    cwd="/",
                )
            finally:
                theirs.close()
            ours.setblocking(False)
            self._sock = ours
            asyncio.get_running_loop().add_reader(ours.fileno(), self._on_readable)
            return ours

    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        while True:
            try:
                data = sock.recv(MAX_MESSAGE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._zygote_gone()
                return
            self._dispatch(json.loads(data))

    def _dispatch(self, msg: dict[str, Any]) -> None:
        if "exited" in msg:
            pid, status = int(msg["exited"]), int(msg["status"])
            if pid in self._failed:
                self._failed.discard(pid)
                return
            proc = self._running.pop(pid, None)
            if proc is not None:
                proc.exited(status)
            else:
                self._early_exits[pid] = status  # exited before its "started" was handled
            return
        fut = self._starting.get(int(msg.get("id") or 0))
        if fut is None or fut.done():
            return
        if "started" in msg:
            fut.set_result(int(msg["started"]))
        else:
            if msg.get("pid"):
                self._failed.add(int(msg["pid"]))
            error = ExecutableNotFound if msg.get("notfound") else ProcessError
            fut.set_exception(error(str(msg.get("error") or "start failed")))

    def _zygote_gone(self) -> None:
        """The zygote died: its children were reparented, nobody reports their exits now.
        They are killed, so that the agent restarts them as containers that exited."""
        loop = asyncio.get_running_loop()
        if self._sock is not None:
            loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        for fut in self._starting.values():
            if not fut.done():
                fut.set_exception(ProcessError("built-in image runner stopped"))
        for pid, proc in list(self._running.items()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            proc.exited(signal.SIGKILL)  # a wait status: killed by SIGKILL → 137
        self._running.clear()

    def _shutdown(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            proc = self._proc
            self._proc = None
            # Closing the socket ends the zygote; reap it without blocking the loop long.
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        """Stop the zygote (its containers were stopped by their pod workers first)."""
        self._shutdown()
