"""kill -9 of the API server loses nothing it acknowledged; a restart rebuilds allocations."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from apiserver_harness import Kubectl

REPO = Path(__file__).resolve().parents[2]


def _start(data_dir: Path, port: int = 0) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "svcnet.apiserver",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--log-level",
            "WARNING",
            "--prepare-workers",
            "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r"serving https://127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        raise AssertionError(f"server did not start: {line!r}")
    return proc, int(m.group(1))


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"


def test_kill_9_and_restart_loses_nothing_acknowledged(data_dir: Path) -> None:
    proc, port = _start(data_dir)
    procs = [proc]
    try:
        k = Kubectl(data_dir / "kubeconfig", "default")
        created = {}
        for i in range(20):
            out = k("create", "configmap", f"c{i}", f"--from-literal=i={i}", "-o", "json")
            created[f"c{i}"] = json.loads(out)["metadata"]["resourceVersion"]
        svc = json.loads(k("create", "service", "nodeport", "np", "--tcp=80:8080", "-o", "json"))
        k("delete", "configmap", "c0")
        workers = _children(proc.pid)
        assert len(workers) == 1  # the prepare worker
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        # Its prepare workers see their input end and exit: nothing is left running.
        deadline = time.monotonic() + 10
        while any(_running(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_running(w) for w in workers)

        proc2, _ = _start(data_dir, port)
        procs.append(proc2)
        items = json.loads(k("get", "configmaps", "-o", "json"))["items"]
        got = {
            i["metadata"]["name"]: i["metadata"]["resourceVersion"]
            for i in items
            if i["metadata"]["name"].startswith("c")
        }
        del created["c0"]
        assert got == created
        again = json.loads(k("get", "service", "np", "-o", "json"))
        assert again["spec"]["clusterIP"] == svc["spec"]["clusterIP"]
        # The allocators were rebuilt from the stored Services: the IP and port stay taken.
        port_taken = svc["spec"]["ports"][0]["nodePort"]
        dup = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "dup"},
            "spec": {
                "type": "NodePort",
                "clusterIP": svc["spec"]["clusterIP"],
                "ports": [{"port": 80, "nodePort": port_taken}],
            },
        }
        proc3 = k.run("create", "-f", "-", input=json.dumps(dup), check=False)
        assert "provided IP is already allocated" in proc3.stderr
        assert "provided port is already allocated" in proc3.stderr
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
