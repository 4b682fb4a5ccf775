"""A fake :class:`~svcnet.dataplane.process.ProcessRunner`: processes the test ends by hand.

Rules kept from the real runner: a command that cannot be found fails to start with
ExecutableNotFound; stop() on a running process is SIGTERM (exit 143) unless the test said the
process ignores it, then SIGKILL (137) after the grace period; a process exits once.
"""

from __future__ import annotations

import asyncio
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

    @property
    def exit_code(self) -> int | None:
        return self._code

    def exit(self, code: int) -> None:
        if self._code is None:
            self._code = code
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
