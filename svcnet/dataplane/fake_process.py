"""A fake :class:`~svcnet.dataplane.process.ProcessRunner`: processes the test ends by hand.

Rules kept from the real runner: the process holds its own copies of the stdout/stderr
descriptors it was given until it exits (the agent's pipes: their readers see EOF then); a
command that cannot be found fails to start with ExecutableNotFound; stop() on a running process is SIGTERM (exit 143) unless the test said the
process ignores it, then SIGKILL (137) after the grace period; a process exits once.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

from svcnet.dataplane.process import ExecutableNotFound, ProcessSpec


@dataclass
class FakeProcess:
    spec: ProcessSpec
    pid: int
    ignores_sigterm: bool = False
    stopped_with: str | None = None
    _done: asyncio.Event = field(default_factory=asyncio.Event)
    _code: int | None = None
    # Its own copies of the streams it was given (a real child's are dup'd by fork).
    _fds: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, fd in (("stdout", self.spec.stdout_fd), ("stderr", self.spec.stderr_fd)):
            if fd is not None:
                self._fds[name] = os.dup(fd)

    @property
    def exit_code(self) -> int | None:
        return self._code

    def write(self, stream: str, data: bytes) -> None:
        """What the process prints on ``stream`` ("stdout"/"stderr"): to the descriptor it
        was given, else appended to its log file, as the real runner wires it."""
        fd = self._fds.get(stream)
        if fd is None:
            with open(self.spec.log_path, "ab") as f:
                f.write(data)
            return
        while data:
            data = data[os.write(fd, data) :]

    def exit(self, code: int) -> None:
        if self._code is None:
            self._code = code
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
            self._done.set()

    async def wait(self) -> int:
        await self._done.wait()
        assert self._code is not None
        return self._code

    async def stop(self, grace_seconds: float) -> int:
        if self._code is None:
            if self.ignores_sigterm:
                self.stopped_with = "SIGKILL"
                self.exit(137)
            else:
                self.stopped_with = "SIGTERM"
                self.exit(143)
        return await self.wait()


class FakeProcessRunner:
    def __init__(self, known_commands: frozenset[str] | None = None) -> None:
        self.known = known_commands
        self.started: list[FakeProcess] = []
        self._next_pid = 1000

    async def start(self, spec: ProcessSpec) -> FakeProcess:
        if self.known is not None and spec.argv[0] not in self.known:
            raise ExecutableNotFound(f'exec: "{spec.argv[0]}": executable file not found in $PATH')
        self._next_pid += 1
        proc = FakeProcess(spec, self._next_pid)
        self.started.append(proc)
        return proc
