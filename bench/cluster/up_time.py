"""Time from ``svcnet up --nodes 3`` to every node Ready, N runs (``svcnet down`` between).

Two clocks per run: the wall time until ``svcnet up`` returns (it returns once the API
reports every Node Ready) and, independently, the time until our own 20 ms poll of
``/api/v1/nodes`` first sees N nodes with Ready=True. Target: under 3 s.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.cluster.harness import machine_load, running_cluster


def run(runs: int = 5, nodes: int = 3, keep_logs: Path | None = None) -> dict[str, object]:
    ups: list[float] = []
    apis: list[float] = []
    for i in range(runs):
        logs = keep_logs / f"run{i + 1}" if keep_logs else None
        with running_cluster(nodes, keep_logs=logs) as c:
            ups.append(c.up_seconds)
            if c.api_ready_seconds is not None:
                apis.append(c.api_ready_seconds)
            print(
                f"run {i + 1}: svcnet up returned in {c.up_seconds:.2f}s; API saw {nodes} "
                f"Ready nodes at {c.api_ready_seconds or float('nan'):.2f}s",
                flush=True,
            )
    out: dict[str, object] = {"runs": runs, "nodes": nodes, "load": machine_load()}
    for label, xs in (("up_returned", ups), ("api_all_ready", apis)):
        if xs:
            out[label] = {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}
    return out
