"""HAProxy: the applier that moves a running HAProxy to a configuration.

Compute, then apply. :class:`HaproxyConfig` is what a controller computes: the files of one
configuration (``haproxy.cfg``, maps, certificates), its ``structure`` (the configuration with
the servers' addresses, weights and states left out) and the server slots with what each holds
now. :class:`HaproxyApplier` changes as little as it can:

* **Endpoints and weights** (same structure): Runtime API commands on the worker's admin
  socket — ``set server B/S addr``, ``weight``, ``state ready|maint`` — and ``haproxy.cfg``
  rewritten in place so that a restart starts from them. No reload: no new worker, no lost
  connection, no re-handshake.
* **Routes, listeners, certificates, slot counts** (structure changed): the files go to a new
  version directory, ``haproxy -c`` checks them there, the ``current`` symlink is switched to
  it and the master-worker process is reloaded (SIGUSR2): a new worker takes the listening
  sockets over (``expose-fd listeners``) while the old one finishes its connections. A
  configuration that ``haproxy -c`` refuses is never loaded: the applier keeps serving the last
  good one and reports :class:`ConfigRejected`.

Relative paths in ``haproxy.cfg`` are resolved against the configuration file's directory
(``default-path config``) and the master reads ``current/haproxy.cfg``, so a version's maps and
certificates are found through the same symlink the reload switches.

:class:`HaproxyProcess` is the narrow interface to the process (check, start, reload, Runtime
API); :class:`MasterWorker` runs the real one and :mod:`svcnet.dataplane.haproxy_fake` is its
faithful fake for unit tests.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from svcnet.dataplane.haproxy_config import (
    MAIN_FILE,
    HaproxyConfig,
    refused_answers,
    runtime_commands,
)
from svcnet.util.files import write_private

log = logging.getLogger(__name__)

CURRENT = "current"
_BATCH = 100  # commands per Runtime API connection (HAProxy reads one line of up to bufsize)
_KEEP_VERSIONS = 2  # the live one and the one before it (its old worker may still read it)


class HaproxyError(Exception):
    """HAProxy could not be driven (a process or socket failure)."""


class ConfigRejected(HaproxyError):
    """``haproxy -c`` refused the configuration; the previous one is still served."""


class HaproxyProcess(Protocol):
    async def check(self, config_file: Path) -> str:
        """Empty when ``haproxy -c`` accepts the file, else its error output."""
        ...

    async def start(self, config_file: Path) -> None: ...

    async def reload(self) -> None:
        """Seamless master-worker reload; returns once the new worker serves. A process that
        is no longer running is started again from the same configuration file."""
        ...

    async def runtime(self, commands: Sequence[str]) -> str:
        """Runtime API commands on the worker's admin socket; their answers."""
        ...

    async def stop(self) -> None: ...


@dataclass
class ApplyResult:
    reloaded: bool = False
    commands: int = 0


@dataclass
class HaproxyApplier:
    """Keeps one HAProxy at the last configuration it was given (or the last good one)."""

    process: HaproxyProcess
    root: Path
    applied: HaproxyConfig | None = None
    reloads: int = 0
    runtime_updates: int = 0
    rejected: int = 0
    _version: int = field(default=0, repr=False)

    @property
    def current_dir(self) -> Path:
        return self.root / CURRENT

    async def apply(self, config: HaproxyConfig) -> ApplyResult:
        if self.applied is not None and self.applied.digest == config.digest:
            commands = runtime_commands(self.applied.servers, config.servers)
            if commands:
                try:
                    bad = refused_answers(await self.process.runtime(commands))
                except HaproxyError as e:
                    bad = [str(e)]
                if bad:
                    # The worker and our record disagree (or it is gone): a reload makes them
                    # agree again.
                    log.warning("haproxy: runtime API: %s; reloading", bad[:3])
                    return await self._reload_with(config)
                self.runtime_updates += 1
            # The next start (or a reload) reads the addresses from the file.
            write_private(self.current_dir / MAIN_FILE, config.files[MAIN_FILE])
            self.applied = config
            return ApplyResult(reloaded=False, commands=len(commands))
        return await self._reload_with(config)

    async def _reload_with(self, config: HaproxyConfig) -> ApplyResult:
        self.root.mkdir(parents=True, exist_ok=True)
        self._version += 1
        version = self.root / f"v{self._version}"
        if version.exists():
            shutil.rmtree(version)
        for rel, content in config.files.items():
            path = version / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            write_private(path, content)
        error = await self.process.check(version / MAIN_FILE)
        if error:
            shutil.rmtree(version, ignore_errors=True)
            self.rejected += 1
            raise ConfigRejected(error)
        link_tmp = self.root / f".{CURRENT}.tmp"
        if link_tmp.is_symlink() or link_tmp.exists():
            link_tmp.unlink()
        link_tmp.symlink_to(version.name)
        os.replace(link_tmp, self.current_dir)
        if self.applied is None:
            await self.process.start(self.current_dir / MAIN_FILE)
        else:
            await self.process.reload()
            self.reloads += 1
        self.applied = config
        self._prune()
        return ApplyResult(reloaded=True)

    def _prune(self) -> None:
        versions = sorted(
            (p for p in self.root.glob("v*") if p.is_dir() and p.name[1:].isdigit()),
            key=lambda p: int(p.name[1:]),
        )
        for old in versions[:-_KEEP_VERSIONS]:
            shutil.rmtree(old, ignore_errors=True)


# -- the real process -----------------------------------------------------------------------


async def unix_command(path: Path, command: str, timeout: float = 5.0) -> str:
    """One command on an HAProxy CLI socket (admin or master), its whole answer."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), timeout)
    except (OSError, TimeoutError) as e:
        raise HaproxyError(f"{path}: {e}") from e
    try:
        writer.write(command.encode() + b"\n")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
    except (OSError, TimeoutError) as e:
        raise HaproxyError(f"{path}: {command.split(' ', 1)[0]}: {e}") from e
    finally:
        writer.close()
    return data.decode(errors="replace")


@dataclass(frozen=True)
class ProcInfo:
    """The master CLI's ``show proc``: the master's reload count and the current worker."""

    master_pid: int
    reloads: int
    worker_pids: tuple[int, ...]


def parse_show_proc(text: str) -> ProcInfo:
    """``#<PID> <type> <reloads> <uptime> <version>`` lines; old workers follow a header."""
    master = reloads = 0
    workers: list[int] = []
    section = ""
    for line in text.splitlines():
        if line.startswith("#"):
            section = line
            continue
        parts = line.split()
        if len(parts) < 3 or not parts[0].isdigit():
            continue
        if parts[1] == "master":
            master, reloads = int(parts[0]), int(parts[2])
        elif parts[1] == "worker" and "old" not in section.lower():
            workers.append(int(parts[0]))
    return ProcInfo(master, reloads, tuple(workers))


@dataclass
class MasterWorker:
    """``haproxy -W``: the master process, its master CLI and the worker's admin socket."""

    master_socket: Path
    admin_socket: Path
    binary: str = "haproxy"
    ready_timeout: float = 10.0
    _proc: asyncio.subprocess.Process | None = None
    _config_file: Path | None = None

    async def check(self, config_file: Path) -> str:
        proc = await asyncio.create_subprocess_exec(
            # Not -q: it silences the alerts too, and their "parsing [file:line]" is how a
            # caller learns what was refused.
            self.binary,
            "-c",
            "-f",
            str(config_file),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        return "" if proc.returncode == 0 else (out.decode(errors="replace").strip() or "refused")

    async def start(self, config_file: Path) -> None:
        self._config_file = config_file
        for sock in (self.master_socket, self.admin_socket):
            sock.unlink(missing_ok=True)
        self._proc = await asyncio.create_subprocess_exec(
            self.binary,
            "-W",
            "-db",
            "-S",
            f"{self.master_socket},mode,600",
            "-f",
            str(config_file),
        )
        await self._wait_worker(lambda info: bool(info.worker_pids))

    async def proc_info(self) -> ProcInfo:
        return parse_show_proc(await unix_command(self.master_socket, "show proc;quit"))

    async def reload(self) -> None:
        if self._proc is None or self._proc.returncode is not None:
            if self._config_file is None:
                raise HaproxyError("haproxy was never started")
            log.warning("haproxy: the master process is gone; starting it again")
            await self.start(self._config_file)
            return
        # The master re-creates its CLI socket when it finishes a reload: wait for it.
        before = await self._wait_worker(lambda info: True)
        os.kill(self._proc.pid, signal.SIGUSR2)
        await self._wait_worker(
            lambda info: (
                info.reloads > before.reloads
                and bool(info.worker_pids)
                and info.worker_pids != before.worker_pids
            )
        )

    async def _wait_worker(self, done: Callable[[ProcInfo], bool]) -> ProcInfo:
        """The first ``show proc`` that satisfies ``done`` with the admin socket present."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ready_timeout
        while True:
            if self._proc is not None and self._proc.returncode is not None:
                raise HaproxyError(f"haproxy exited with {self._proc.returncode}")
            try:
                info = await self.proc_info()
                if done(info) and self.admin_socket.exists():
                    return info
            except HaproxyError:
                pass
            if loop.time() > deadline:
                raise HaproxyError("haproxy: no worker answered in time")
            await asyncio.sleep(0.05)

    async def runtime(self, commands: Sequence[str]) -> str:
        # The master CLI keeps a connection open until "quit"; the admin socket closes it
        # after one line. One connection per batch of commands (";" separates them on one line).
        out = []
        for i in range(0, len(commands), _BATCH):
            out.append(await unix_command(self.admin_socket, ";".join(commands[i : i + _BATCH])))
        return "".join(out)

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
