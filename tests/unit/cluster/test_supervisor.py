"""The supervisor as a real process: it starts its components, restarts one that exits (and
records why in status.json), and on SIGTERM stops them all and exits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from svcnet.cluster.supervisor import Component, read_status, write_spec


def _wait(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"


def test_restarts_a_dead_component_and_stops_all_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    flaky_flag = tmp_path / "ran-once"
    components = [
        Component("steady", ("sleep", "60"), str(tmp_path / "steady.log")),
        # Exits with 3 the first time, then stays up: one restart after the 1 s back-off.
        Component(
            "flaky",
            ("sh", "-c", f"if [ -e {flaky_flag} ]; then exec sleep 60; fi; touch {flaky_flag}; "
             "echo dying; exit 3"),
            str(tmp_path / "flaky.log"),
            env={"SVCNET_TEST": "1"},
        ),
    ]  # fmt: skip
    write_spec(state / "spec.json", components)
    sup = subprocess.Popen(
        [sys.executable, "-m", "svcnet.cluster.supervisor", "--state-dir", str(state)],
        stderr=open(tmp_path / "supervisor.log", "wb"),  # noqa: SIM115
    )
    try:
        _wait(lambda: read_status(state).get("flaky", None) is not None
              and read_status(state)["flaky"].restarts == 1
              and read_status(state)["flaky"].state == "Running")  # fmt: skip
        st = read_status(state)
        assert st["flaky"].last_exit_code == 3
        assert st["steady"].state == "Running" and st["steady"].restarts == 0
        assert (tmp_path / "flaky.log").read_text().strip() == "dying"
        assert (
            "flaky exited with code 3; restarting in 1s"
            in (tmp_path / "supervisor.log").read_text()
        )
        pids = [st["steady"].pid, st["flaky"].pid]
        assert all(p is not None and _alive(p) for p in pids)
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(15) == 0
        assert not any(_alive(p) for p in pids if p is not None)
        final = json.loads((state / "status.json").read_text())
        assert {v["state"] for v in final.values()} == {"Stopped"}
        assert all(v["pid"] is None for v in final.values())
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()
