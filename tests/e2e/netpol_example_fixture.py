"""examples/netpol on a 2-node cluster, as a user applies it, and connections from its pods:
shared by the e2e tests of its README's tour (explain and matrix, flows)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cluster_fixture import Cluster, running_cluster

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "netpol"
PY = sys.executable


def ready(pods: dict[str, Any]) -> bool:
    items = pods["items"]
    return len(items) == 4 and all(
        any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
        for p in items
    )


@contextmanager
def example_cluster(base: Path) -> Iterator[Cluster]:
    with running_cluster(base, nodes=2) as c:
        c.kubectl("apply", "-f", str(EXAMPLE))
        c.wait_for("pods", ready, 180, "-n", "production")
        yield c


def pod_of(c: Cluster, app: str) -> str:
    pods = c.get("pods", "-n", "production", "-l", f"app={app}")["items"]
    return str(pods[0]["metadata"]["name"])


def connects(c: Cluster, app: str, target: str) -> str:
    """The outcome of one TCP connect from a pod of ``app`` (``ADDR:PORT``)."""
    res = c.svcnet(
        "exec", *c.cluster_args(), "-n", "production", pod_of(c, app), "--",
        PY, "-m", "svcnet.testing.reachability", "--timeout", "1", f"tcp:{target}",
    )  # fmt: skip
    outcome: str = json.loads(res.stdout.strip().splitlines()[-1])[f"tcp:{target}"]
    return outcome
