"""Attachable containers (``stdin``/``stdinOnce``/``tty`` in the pod spec) and attach itself.

What containerd's shim keeps for such a container, the agent keeps here
(:class:`ContainerIO`, one per container instance):
- ``stdin: true``: the container's stdin is a pipe whose write end the agent holds, open while
  nobody is attached (the container blocks reading, as under containerd); ``stdinOnce``: it is
  closed when the first attach session that wrote stdin ends, so the container reads EOF;
- ``tty: true``: stdin, stdout and stderr are one terminal; the agent reads its other end,
  appends everything to the container's log (what ``kubectl logs`` reads) and hands it to
  the attached sessions; a resize message sets the terminal's size.
Output of a container without a terminal goes straight to its log file, and an attach follows
that file — from its start for the first attach of a ``stdinOnce`` container (kubectl run
-i attaches after the container started: its first output must not be lost), from its
current end otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable

OUTPUT_CHUNK = 32768
FOLLOW_POLL = 0.05


class ContainerIO:
    def __init__(self, stdin: bool, stdin_once: bool, tty: bool, log_path: str) -> None:
        self.stdin_once = stdin_once
        self.tty = tty
        self.log_path = log_path
        self.attached_before = False
        self._subscribers: set[asyncio.Queue[bytes]] = set()
        self._reader: asyncio.Task[None] | None = None
        self.ended = asyncio.Event()
        self._stdin_w: int | None = None
        self.master: int | None = None
        self.child_stdin: int | None = None
        self.child_output: int | None = None
        if tty:
            self.master, slave = os.openpty()
            os.set_blocking(self.master, False)
            self.child_stdin = self.child_output = slave
        elif stdin:
            r, w = os.pipe()
            os.set_blocking(w, False)
            self._stdin_w = w
            self.child_stdin = r

    def started(self) -> None:
        """The container process has its ends: drop ours, start copying terminal output."""
        for fd in {self.child_stdin, self.child_output} - {None}:
            assert fd is not None
            os.close(fd)
        self.child_stdin = self.child_output = None
        if self.master is not None:
            self._reader = asyncio.get_running_loop().create_task(self._copy_terminal())
        else:
            self.ended.set()  # nothing to copy: the log file is written by the container

    async def _copy_terminal(self) -> None:
        assert self.master is not None
        fd = self.master
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes] = asyncio.Queue()

        def readable() -> None:
            try:
                data = os.read(fd, OUTPUT_CHUNK)
            except BlockingIOError:
                return
            except OSError:  # EIO: every slave end closed, the container is gone
                data = b""
            queue.put_nowait(data)
            if not data:
                loop.remove_reader(fd)

        loop.add_reader(fd, readable)
        with open(self.log_path, "ab", buffering=0) as log:
            while data := await queue.get():
                log.write(data)
                for sub in self._subscribers:
                    sub.put_nowait(data)
        for sub in self._subscribers:
            sub.put_nowait(b"")
        self.ended.set()

    # -- for attach sessions ------------------------------------------------------------
    def subscribe(self) -> asyncio.Queue[bytes]:
        q: asyncio.Queue[bytes] = asyncio.Queue()
        if self.ended.is_set() and self.master is not None:
            q.put_nowait(b"")
        self._subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[bytes]) -> None:
        self._subscribers.discard(q)

    @property
    def accepts_stdin(self) -> bool:
        return self.master is not None or self._stdin_w is not None

    async def write_stdin(self, data: bytes) -> None:
        fd = self.master if self.master is not None else self._stdin_w
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
        """The container instance is over: release every descriptor."""
        if self._reader is not None:
            self._reader.cancel()
        for fd in (self._stdin_w, self.master, self.child_stdin, self.child_output):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._stdin_w = self.master = self.child_stdin = self.child_output = None
        for sub in self._subscribers:
            sub.put_nowait(b"")


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


async def follow_log(
    path: str,
    from_start: bool,
    running: Callable[[], bool],
    send: Callable[[bytes], Awaitable[None]],
) -> None:
    """Send what the container writes to its log until it is no longer running."""
    with open(path, "rb") as f:
        if not from_start:
            f.seek(0, os.SEEK_END)
        while True:
            data = f.read(OUTPUT_CHUNK)
            if data:
                await send(data)
                continue
            if not running():
                rest = f.read()
                if rest:
                    await send(rest)
                return
            await asyncio.sleep(FOLLOW_POLL)
