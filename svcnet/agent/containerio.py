"""A container's standard streams, held by the agent as containerd's shim holds them.

One :class:`ContainerIO` per container instance:
- stdout and stderr are pipes (one terminal with ``tty: true``) whose read ends the agent
  watches; what arrives is appended to the container's log file as CRI entries
  (:mod:`svcnet.agent.crilog`, each line stamped with the time it was read) and handed to
  the attach sessions subscribed at that moment;
- ``stdin: true``: stdin is a pipe (or the terminal) the agent writes what attach sessions
  send; nobody attached, it stays open and the container blocks reading, as under
  containerd. ``stdinOnce``: it is closed once the first attach session that wrote stdin
  ends, so the container reads EOF. A terminal's size follows the resize messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from typing import BinaryIO

from svcnet.agent.crilog import STDERR, STDOUT, LineWriter

OUTPUT_CHUNK = 32768

Output = tuple[str, bytes]  # (stream, data); b"" data: the container's output ended


class ContainerIO:
    def __init__(
        self,
        stdin: bool,
        stdin_once: bool,
        tty: bool,
        log_path: str,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.stdin_once = stdin_once
        self.tty = tty
        self.log_path = log_path
        self.now_ns = now_ns
        self.attached_before = False
        self.ended = asyncio.Event()
        self._subscribers: set[asyncio.Queue[Output]] = set()
        self._readers: dict[int, LineWriter] = {}  # our read end → its stream's writer
        self._stdin_w: int | None = None
        self._log: BinaryIO | None = None
        self.master: int | None = None
        self.child_fds: tuple[int | None, int, int]  # the container's 0, 1, 2
        if tty:
            self.master, slave = os.openpty()
            os.set_blocking(self.master, False)
            self._readers[self.master] = LineWriter(STDOUT)
            self.child_fds = (slave if stdin else None, slave, slave)
            return
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        self._readers[out_r] = LineWriter(STDOUT)
        self._readers[err_r] = LineWriter(STDERR)
        child_in = None
        if stdin:
            child_in, w = os.pipe2(os.O_CLOEXEC)
            os.set_blocking(w, False)
            self._stdin_w = w
        self.child_fds = (child_in, out_w, err_w)

    @property
    def child_stdin(self) -> int | None:
        return self.child_fds[0]

    def started(self) -> None:
        """The container has its ends: drop ours, start copying its output."""
        self._close_child_fds()
        os.makedirs(os.path.dirname(self.log_path) or ".", exist_ok=True)
        self._log = open(self.log_path, "ab", buffering=0)  # noqa: SIM115 - closed at the end
        loop = asyncio.get_running_loop()
        for fd in self._readers:
            os.set_blocking(fd, False)
            loop.add_reader(fd, self._readable, fd)

    def _close_child_fds(self) -> None:
        for fd in {fd for fd in self.child_fds if fd is not None}:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.child_fds = (None, -1, -1)

    def _readable(self, fd: int) -> None:
        writer = self._readers[fd]
        try:
            data = os.read(fd, OUTPUT_CHUNK)
        except BlockingIOError:
            return
        except OSError:  # EIO on a terminal: every end of the container's side closed
            data = b""
        now = self.now_ns()
        if data:
            self._append(writer.feed(data, now))
            for sub in self._subscribers:
                sub.put_nowait((writer.stream, data))
            return
        self._append(writer.close(now))
        asyncio.get_running_loop().remove_reader(fd)
        del self._readers[fd]
        os.close(fd)
        if fd == self.master:
            self.master = None
        if not self._readers:
            self._finish()

    def _append(self, entries: bytes) -> None:
        if entries and self._log is not None:
            with contextlib.suppress(OSError):
                self._log.write(entries)

    def _finish(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        for sub in self._subscribers:
            sub.put_nowait((STDOUT, b""))
        self.ended.set()

    # -- for attach sessions ------------------------------------------------------------
    def subscribe(self) -> asyncio.Queue[Output]:
        q: asyncio.Queue[Output] = asyncio.Queue()
        if self.ended.is_set():
            q.put_nowait((STDOUT, b""))
        self._subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Output]) -> None:
        self._subscribers.discard(q)

    async def write_stdin(self, data: bytes) -> None:
        fd = self.master if self.tty else self._stdin_w
        if fd is None:
            return
        loop = asyncio.get_running_loop()
        while data:
            try:
                n = os.write(fd, data)
            except BlockingIOError:
                await _writable(loop, fd)
                continue
            except OSError:
                return  # the container closed its stdin or is gone
            data = data[n:]

    def close_stdin(self) -> None:
        """stdinOnce's end of input: EOF on the pipe; on a terminal, its EOF character."""
        if self._stdin_w is not None:
            os.close(self._stdin_w)
            self._stdin_w = None
        elif self.master is not None:
            with contextlib.suppress(OSError):
                os.write(self.master, b"\x04")

    def close(self) -> None:
        """Release every descriptor (the instance is over, or never started)."""
        self._close_child_fds()
        if self._stdin_w is not None:
            with contextlib.suppress(OSError):
                os.close(self._stdin_w)
            self._stdin_w = None
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()
            for fd in list(self._readers):
                loop.remove_reader(fd)
        for fd in list(self._readers):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._readers.clear()
        self.master = None
        if not self.ended.is_set():
            self._finish()


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_writer(fd)
