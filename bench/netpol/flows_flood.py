"""The agent's CPU cost of ``svcnet flows`` under a flood of dropped packets.

A 2-node benchmark cluster with examples/netpol (production under a default deny). From the
worker pod, a UDP flood to a backend-api pod's address on 8080 for ``--seconds``: every packet
is dropped by the worker's egress isolation on its node, where the drop rule's log statement
(``limit rate 100/second burst 50 packets``, :data:`svcnet.netpol.rules.FLOW_LOG`) passes at
most 100 a second to NFLOG, read by that node's agent. Printed: packets sent, dropped packets
recorded in the ring, and the CPU time of that agent's own process (its pods excluded) during
the flood, against the same flood sent to the worker's own address (it never leaves the pod:
no drop, no log, but the same ``svcnet exec`` session, which the agent relays) and against
the same time idle.

    sudo .venv/bin/python -m bench.netpol.flows_flood [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench.cluster.harness import BenchCluster, machine_load, running_cluster
from bench.cluster.procs import cluster_usage

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "netpol"
PY = sys.executable
SVCNET = [PY, "-m", "svcnet.cli.main"]

FLOOD = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end, n, data = time.monotonic() + float(sys.argv[2]), 0, b"x" * 32
while time.monotonic() < end:
    for _ in range(100):
        s.sendto(data, (sys.argv[1], 8080))
    n += 100
print(n)
"""


def cli(c: BenchCluster, *args: str, timeout: float = 120) -> str:
    argv = [*SVCNET, *args, "--name", c.name, "--data-dir", str(c.data_dir)]
    if args[0] == "exec":  # its options go before the pod
        argv = [*SVCNET, "exec", "--name", c.name, "--data-dir", str(c.data_dir), *args[1:]]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=True)
    return res.stdout


def pod(c: BenchCluster, app: str) -> dict[str, object]:
    out = c.kubectl("get", "pods", "-n", "production", "-l", f"app={app}", "-o", "json")
    items: list[dict[str, object]] = json.loads(out)["items"]
    return items[0]


def agent_cpu(c: BenchCluster, node: str) -> float:
    usage = cluster_usage(c.data_dir / "state")
    (name,) = [k for k in usage if "agent" in k and k.endswith(node)]
    return usage[name].root_cpu_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    with running_cluster(nodes=2) as c:
        c.kubectl("apply", "-f", str(EXAMPLE))
        c.kubectl(
            "wait", "-n", "production", "--for=condition=Ready", "pod", "--all", "--timeout=180s"
        )
        worker, backend = pod(c, "worker"), pod(c, "backend-api")
        node = str(worker["spec"]["nodeName"])  # type: ignore[index]
        target = str(backend["status"]["podIP"])  # type: ignore[index]
        name = str(worker["metadata"]["name"])  # type: ignore[index]
        before = agent_cpu(c, node)
        time.sleep(args.seconds)
        idle = agent_cpu(c, node) - before
        print(f"idle {args.seconds:.0f} s: agent {node} {idle:.2f} s CPU; load: {machine_load()}")
        own = str(worker["status"]["podIP"])  # type: ignore[index]

        def flood_to(address: str) -> tuple[int, float]:
            before = agent_cpu(c, node)
            sent = cli(
                c, "exec", "-n", "production", name, "--",
                PY, "-c", FLOOD, address, str(args.seconds),
            )  # fmt: skip
            return int(sent.strip()), agent_cpu(c, node) - before

        flood_to(own)  # the agent's first exec session warms up (imports, buffers): not counted
        sent_self, control = flood_to(own)
        print(
            f"control {args.seconds:.0f} s: {sent_self:,} UDP packets to itself; agent {node} "
            f"{control:.2f} s CPU; load: {machine_load()}",
            flush=True,
        )
        sent, flood = flood_to(target)
        flows = json.loads(cli(c, "flows", "-o", "json", "--verdict", "dropped", "--pod", name))[
            "flows"
        ]
        logged = sum(f["events"] for f in flows)
        print(
            f"flood {args.seconds:.0f} s: {sent:,} UDP packets dropped, "
            f"{logged} of them logged ({len(flows)} flows); agent {node} {flood:.2f} s CPU "
            f"({100 * flood / args.seconds:.1f} % of a core; control "
            f"{100 * control / args.seconds:.1f} %, idle {100 * idle / args.seconds:.1f} %); "
            f"logging {1e6 * (flood - control) / max(logged, 1):.0f} us a logged packet; "
            f"load: {machine_load()}",
            flush=True,
        )


if __name__ == "__main__":
    main()
