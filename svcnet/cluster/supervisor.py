"""Supervision of a cluster's processes: start each component, restart it when it dies.

``svcnet up`` starts one supervisor process per cluster (detached, in its own session); the
supervisor starts the components named in the cluster's spec file as its children, restarts
any that exits with a back-off (1 s doubling to 30 s, reset after a minute of good health, as
kubelet does for containers), logs why, and keeps ``status.json`` current so that
``svcnet status`` can show each component's PID, restarts and last exit. On SIGTERM it stops
its children (SIGTERM, then SIGKILL after a grace period) and exits: ``svcnet down`` stops the
supervisor by the PID it recorded, never by name.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from svcnet.util.log import setup_logging

log = logging.getLogger(__name__)

BACKOFF_BASE = 1.0
BACKOFF_MAX = 30.0
HEALTHY_RESET = 60.0
STOP_GRACE = 10.0


@dataclass(frozen=True)
class Component:
    name: str
    argv: tuple[str, ...]
    log_path: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class ComponentStatus:
    name: str
    pid: int | None = None
    state: str = "Starting"  # Running | Restarting | Stopped
    restarts: int = 0
    started_at: float | None = None
    last_exit_code: int | None = None
    last_exit_at: float | None = None


def load_spec(path: Path) -> list[Component]:
    data = json.loads(path.read_text())
    return [
        Component(c["name"], tuple(c["argv"]), c["log_path"], dict(c.get("env", {})))
        for c in data["components"]
    ]


def write_spec(path: Path, components: list[Component]) -> None:
    path.write_text(json.dumps({"components": [asdict(c) for c in components]}, indent=2))


def read_status(state_dir: Path) -> dict[str, ComponentStatus]:
    try:
        data = json.loads((state_dir / "status.json").read_text())
    except (OSError, ValueError):
        return {}
    return {name: ComponentStatus(**entry) for name, entry in data.items()}


class Supervisor:
    def __init__(self, state_dir: Path, components: list[Component]) -> None:
        self.state_dir = state_dir
        self.components = components
        self.status = {c.name: ComponentStatus(c.name) for c in components}
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._stopping = asyncio.Event()

    def _write_status(self) -> None:
        path = self.state_dir / "status.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({n: asdict(s) for n, s in self.status.items()}, indent=2))
        tmp.replace(path)

    async def _start(self, comp: Component) -> asyncio.subprocess.Process:
        log_file = open(comp.log_path, "ab", buffering=0)  # noqa: SIM115 - handed to the child
        try:
            proc = await asyncio.create_subprocess_exec(
                *comp.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                env={**os.environ, **comp.env},
            )
        finally:
            log_file.close()
        st = self.status[comp.name]
        st.pid, st.state, st.started_at = proc.pid, "Running", time.time()
        self._procs[comp.name] = proc
        self._write_status()
        log.info("started %s (pid %d)", comp.name, proc.pid)
        return proc

    async def _keep_running(self, comp: Component) -> None:
        backoff = BACKOFF_BASE
        while not self._stopping.is_set():
            proc = await self._start(comp)
            started = time.monotonic()
            code = await proc.wait()
            st = self.status[comp.name]
            st.pid, st.last_exit_code, st.last_exit_at = None, code, time.time()
            if self._stopping.is_set():
                st.state = "Stopped"
                self._write_status()
                return
            if time.monotonic() - started > HEALTHY_RESET:
                backoff = BACKOFF_BASE
            st.restarts += 1
            st.state = "Restarting"
            self._write_status()
            log.warning("%s exited with code %s; restarting in %.0fs (restart %d)",
                        comp.name, code, backoff, st.restarts)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def _stop_all(self) -> None:
        # Stop in reverse order: node agents before the control plane they talk to.
        for comp in reversed(self.components):
            proc = self._procs.get(comp.name)
            if proc is None or proc.returncode is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for comp in reversed(self.components):
            proc = self._procs.get(comp.name)
            if proc is None:
                continue
            try:
                await asyncio.wait_for(proc.wait(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                log.warning("%s did not stop in %.0fs; killing it", comp.name, STOP_GRACE)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        self._write_status()
        tasks = [asyncio.create_task(self._keep_running(c), name=c.name) for c in self.components]
        await self._stopping.wait()
        await self._stop_all()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for st in self.status.values():
            st.state, st.pid = "Stopped", None
        self._write_status()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m svcnet.cluster.supervisor")
    p.add_argument("--state-dir", required=True, type=Path)
    args = p.parse_args(argv)
    setup_logging("supervisor")
    components = load_spec(args.state_dir / "spec.json")
    asyncio.run(Supervisor(args.state_dir, components).run())
    sys.exit(0)


if __name__ == "__main__":
    main()
