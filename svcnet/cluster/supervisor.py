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
import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

from svcnet.util.log import setup_logging

log = logging.getLogger(__name__)

BACKOFF_BASE = 1.0
BACKOFF_MAX = 30.0
HEALTHY_RESET = 60.0
STOP_GRACE = 10.0


# Plain classes, not dataclasses: dataclasses imports inspect (with ast, dis, tokenize), ~1 MiB
# of the supervisor's resident memory for nothing it needs.
class Component(NamedTuple):
    name: str
    argv: tuple[str, ...]
    log_path: str
    env: dict[str, str] = {}  # never mutated: load_spec builds a fresh dict per component


class ComponentStatus:
    FIELDS = (
        "name",
        "pid",
        "state",
        "restarts",
        "started_at",
        "last_exit_code",
        "last_exit_at",
    )
    __slots__ = FIELDS

    def __init__(
        self,
        name: str,
        pid: int | None = None,
        state: str = "Starting",  # Running | Restarting | Stopped
        restarts: int = 0,
        started_at: float | None = None,
        last_exit_code: int | None = None,
        last_exit_at: float | None = None,
    ) -> None:
        self.name = name
        self.pid = pid
        self.state = state
        self.restarts = restarts
        self.started_at = started_at
        self.last_exit_code = last_exit_code
        self.last_exit_at = last_exit_at

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.FIELDS}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ComponentStatus) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"ComponentStatus({self.to_dict()!r})"


def load_spec(path: Path) -> list[Component]:
    data = json.loads(path.read_text())
    return [
        Component(c["name"], tuple(c["argv"]), c["log_path"], dict(c.get("env", {})))
        for c in data["components"]
    ]


def write_spec(path: Path, components: list[Component]) -> None:
    path.write_text(json.dumps({"components": [c._asdict() for c in components]}, indent=2))


def read_status(state_dir: Path) -> dict[str, ComponentStatus]:
    try:
        data = json.loads((state_dir / "status.json").read_text())
    except (OSError, ValueError):
        return {}
    return {name: ComponentStatus(**entry) for name, entry in data.items()}


class Supervisor:
    """Synchronous on purpose: the supervisor only waits for children and signals, and
    asyncio (with the ssl it imports) would double its resident memory (~22 → ~12 MiB),
    which the idle-cluster figure of issue 3 counts. Signals and child exits wake one
    ``select`` through ``signal.set_wakeup_fd``; restarts wait for their back-off there too.
    """

    def __init__(self, state_dir: Path, components: list[Component]) -> None:
        self.state_dir = state_dir
        self.components = components
        self.status = {c.name: ComponentStatus(c.name) for c in components}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._started: dict[str, float] = {}  # monotonic start of the running process
        self._backoff = {c.name: BACKOFF_BASE for c in components}
        self._restart_at: dict[str, float] = {}  # monotonic time of a pending restart
        self._stopping = False

    def _write_status(self) -> None:
        path = self.state_dir / "status.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({n: s.to_dict() for n, s in self.status.items()}, indent=2))
        tmp.replace(path)

    def _start(self, comp: Component) -> None:
        with open(comp.log_path, "ab", buffering=0) as log_file:
            proc = subprocess.Popen(
                comp.argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                env={**os.environ, **comp.env},
            )
        st = self.status[comp.name]
        st.pid, st.state, st.started_at = proc.pid, "Running", time.time()
        self._procs[comp.name] = proc
        self._started[comp.name] = time.monotonic()
        self._write_status()
        log.info("started %s (pid %d)", comp.name, proc.pid)

    def _exited(self, comp: Component, code: int) -> None:
        del self._procs[comp.name]
        st = self.status[comp.name]
        st.pid, st.last_exit_code, st.last_exit_at = None, code, time.time()
        if self._stopping:
            st.state = "Stopped"
            self._write_status()
            return
        if time.monotonic() - self._started[comp.name] > HEALTHY_RESET:
            self._backoff[comp.name] = BACKOFF_BASE
        backoff = self._backoff[comp.name]
        st.restarts += 1
        st.state = "Restarting"
        self._write_status()
        log.warning(
            "%s exited with code %s; restarting in %.0fs (restart %d)",
            comp.name,
            code,
            backoff,
            st.restarts,
        )
        self._restart_at[comp.name] = time.monotonic() + backoff
        self._backoff[comp.name] = min(backoff * 2, BACKOFF_MAX)

    def _reap(self) -> None:
        for comp in self.components:
            proc = self._procs.get(comp.name)
            if proc is not None and proc.poll() is not None:
                self._exited(comp, proc.returncode)

    def _stop_all(self) -> None:
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
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs; killing it", comp.name, STOP_GRACE)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
            self._exited(comp, proc.returncode)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self._stopping = True
        # SIGCHLD: nothing here; the loop reaps after the wake-up.

    def run(self) -> None:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, self._on_signal)
        try:
            self._write_status()
            for comp in self.components:
                self._start(comp)
            while not self._stopping:
                self._reap()
                now = time.monotonic()
                for comp in self.components:
                    due = self._restart_at.get(comp.name)
                    if due is not None and due <= now and not self._stopping:
                        del self._restart_at[comp.name]
                        self._start(comp)
                if self._stopping:
                    break
                timeout = min((t - now for t in self._restart_at.values()), default=None)
                with contextlib.suppress(InterruptedError):
                    select.select([wake_r], [], [], None if timeout is None else max(0.0, timeout))
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 512)
            self._reap()
            self._stop_all()
            for st in self.status.values():
                st.state, st.pid = "Stopped", None
            self._write_status()
        finally:
            signal.set_wakeup_fd(-1)
            os.close(wake_r)
            os.close(wake_w)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m svcnet.cluster.supervisor")
    p.add_argument("--state-dir", required=True, type=Path)
    args = p.parse_args(argv)
    setup_logging("supervisor")
    components = load_spec(args.state_dir / "spec.json")
    Supervisor(args.state_dir, components).run()
    sys.exit(0)


if __name__ == "__main__":
    main()
