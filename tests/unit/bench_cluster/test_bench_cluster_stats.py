"""bench/cluster's arithmetic and its reading of pods and /proc (the numbers in the report)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from bench.cluster.harness import percentile
from bench.cluster.pod_start import api_latency, stages_of
from bench.cluster.procs import Usage, tree, usage

HUNDRED = [float(i) for i in range(1, 101)]

PERCENTILE_CASES = [
    ("p50 of 1..100 is the 50th smallest", HUNDRED, 50, 50.0),
    ("p99 of 1..100 is the 99th smallest", HUNDRED, 99, 99.0),
    ("p100 is the max", HUNDRED, 100, 100.0),
    ("p0 is the min", HUNDRED, 0, 1.0),
    ("p99 of 20 samples is the max", [float(i) for i in range(20)], 99, 19.0),
    ("unsorted input", [3.0, 1.0, 2.0], 50, 2.0),
]


@pytest.mark.parametrize(
    ("values", "q", "want"), [c[1:] for c in PERCENTILE_CASES], ids=[c[0] for c in PERCENTILE_CASES]
)
def test_percentile_is_nearest_rank(values: list[float], q: float, want: float) -> None:
    assert percentile(values, q) == want


def _pod(
    node: str = "", ip: str = "", running: bool = False, ready: bool = False
) -> dict[str, Any]:
    return {
        "spec": {"nodeName": node} if node else {},
        "status": {
            "podIP": ip,
            "containerStatuses": [{"state": {"running": {}} if running else {"waiting": {}}}],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


STAGE_CASES = [
    ("just created", _pod(), {"seen"}),
    ("bound", _pod(node="node-1"), {"seen", "scheduled"}),
    ("sandbox up", _pod(node="node-1", ip="10.1.1.2"), {"seen", "scheduled", "ip"}),
    (
        "running, probe not passed",
        _pod(node="n", ip="10.1.1.2", running=True),
        {"seen", "scheduled", "ip", "running"},
    ),
    (
        "ready",
        _pod(node="n", ip="10.1.1.2", running=True, ready=True),
        {"seen", "scheduled", "ip", "running", "ready"},
    ),
]


@pytest.mark.parametrize(
    ("pod", "want"), [c[1:] for c in STAGE_CASES], ids=[c[0] for c in STAGE_CASES]
)
def test_stages_of_a_pod(pod: dict[str, Any], want: set[str]) -> None:
    assert stages_of(pod) == want


API_LATENCY_CASES = [
    (
        "ready two seconds after creation",
        {
            "metadata": {"creationTimestamp": "2026-11-25T10:00:00Z"},
            "status": {
                "conditions": [{"type": "Ready", "lastTransitionTime": "2026-11-25T10:00:02Z"}]
            },
        },
        2.0,
    ),
    ("no Ready condition yet", {"metadata": {"creationTimestamp": "2026-11-25T10:00:00Z"}}, None),
]


@pytest.mark.parametrize(
    ("pod", "want"), [c[1:] for c in API_LATENCY_CASES], ids=[c[0] for c in API_LATENCY_CASES]
)
def test_api_latency_from_the_pods_timestamps(pod: dict[str, Any], want: float | None) -> None:
    assert api_latency(pod) == want


def test_usage_counts_a_live_child_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in tree(os.getpid())
        mine = usage(os.getpid())
        alone = usage(os.getpid(), exclude={child.pid})
        assert mine.processes == alone.processes + 1
        assert mine.rss_kib > alone.rss_kib > 0
        assert mine.pss_kib > 0
    finally:
        child.kill()
        child.wait()


def test_usage_of_a_vanished_pid_is_empty() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert usage(child.pid) == Usage()
