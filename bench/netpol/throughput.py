"""Throughput through a node's NetworkPolicy table: 1,000 policies versus none (iperf3, TCP).

Three scratch network namespaces: a client "pod", a server "pod" and the node between them,
which routes (the forward hook, where the table sits) with veth pairs on both sides. The
server is a local pod of the node (its pod block 10.244.1.0/24), the client a pod of another
node (10.244.2.2). With ``--policies N`` the node holds the table a sync builds for N policies
that all select the server: policy i allows the client on TCP port 10000+i, and the last one
(in key order, so a new connection walks every policy chain before it) iperf3's port 5201.
The runs alternate between no table and the table, ``--rounds`` times each, and the medians
are compared. The rule count the table holds is printed with each figure.

    sudo .venv/bin/python -m bench.netpol.throughput [--policies 1000] [--seconds 5] [--rounds 3]

Target (issue 11): with 1,000 policies, >= 90 % of the throughput with none.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.table import Machine, Row, command_line, print_rows
from svcnet.dataplane.nft_exec import NftExecutor
from svcnet.netpol.changetracker import ChangeTracker
from svcnet.netpol.rules import (
    FAMILY,
    TABLE,
    NetpolConfig,
    build_cleanup,
    build_full,
    desired_state,
)

NODE = "node-1"
BLOCK = "10.244.1.0/24"
SERVER, CLIENT = "10.244.1.2", "10.244.2.2"
IPERF_PORT = 5201


def _pod(name: str, node: str, ip: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "bench", "labels": {"app": name}},
        "spec": {"nodeName": node},
        "status": {"phase": "Running", "podIP": ip},
    }


def world(policies: int) -> ChangeTracker:
    t = ChangeTracker()
    t.upsert_namespace({"metadata": {"name": "bench"}})
    t.upsert_pod(_pod("srv", NODE, SERVER))
    t.upsert_pod(_pod("cli", "node-2", CLIENT))
    for i in range(policies):
        port = IPERF_PORT if i == policies - 1 else 10000 + i
        t.upsert_policy(
            {
                "metadata": {"name": f"pol-{i:05d}", "namespace": "bench"},
                "spec": {
                    "podSelector": {"matchLabels": {"app": "srv"}},
                    "ingress": [
                        {
                            "from": [{"podSelector": {"matchLabels": {"app": "cli"}}}],
                            "ports": [{"port": port}],
                        }
                    ],
                },
            }
        )
    return t


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@contextmanager
def topology(prefix: str) -> Iterator[dict[str, str]]:
    """client -- node -- server, each a network namespace; removed on exit."""
    names = {role: f"{prefix}-{role}" for role in ("node", "cli", "srv")}
    try:
        for ns in names.values():
            _run("ip", "netns", "add", ns)
        node = names["node"]
        for role, gw, addr in (("cli", "10.244.2.1", CLIENT), ("srv", "10.244.1.1", SERVER)):
            ns = names[role]
            _run("ip", "-n", node, "link", "add", f"{role}0", "type", "veth",
                 "peer", "name", "eth0", "netns", ns)  # fmt: skip
            _run("ip", "-n", node, "addr", "add", f"{gw}/24", "dev", f"{role}0")
            _run("ip", "-n", node, "link", "set", f"{role}0", "up")
            _run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("ip", "-n", ns, "route", "add", "default", "via", gw)
        _run("ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        yield names
    finally:
        for ns in names.values():
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def iperf(names: dict[str, str], seconds: float) -> float:
    """Gbit/s received by the server in one TCP run."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", names["srv"], "iperf3", "-s", "-1", "-B", SERVER],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.3)
        out = subprocess.run(
            ["ip", "netns", "exec", names["cli"], "iperf3", "-c", SERVER, "-J",
             "-t", str(seconds)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return float(json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"]) / 1e9
    finally:
        server.kill()
        server.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--policies", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    machine = Machine.now()
    cfg = NetpolConfig(NODE, BLOCK)
    desired = desired_state(world(args.policies).compile(NODE), BLOCK, cfg.flow_log)
    runs: dict[bool, list[float]] = {False: [], True: []}
    with topology(f"nptp-{os.getpid()}") as names:
        nft = NftExecutor(netns=names["node"])
        for r in range(args.rounds):
            for with_table in (False, True):
                nft.apply_sync(build_full(cfg, desired) if with_table else build_cleanup(cfg))
                gbps = iperf(names, args.seconds)
                runs[with_table].append(gbps)
                rules = nft.counts(FAMILY, TABLE)[0] if with_table else 0
                print(f"round {r + 1}: {rules} rules: {gbps:.2f} Gbit/s", flush=True)
    none, full = statistics.median(runs[False]), statistics.median(runs[True])
    ratio = full / none
    print(
        f"median: no table {none:.2f} Gbit/s, {args.policies} policies {full:.2f} Gbit/s "
        f"({ratio:.0%}); load: {Machine.now().load}"
    )
    row = Row(
        "NetworkPolicy",
        f"TCP throughput through a node, {args.policies} policies vs none (iperf3)",
        f"{full:.2f} vs {none:.2f} Gbit/s ({ratio:.0%})",
        ">= 90 %",
        ratio >= 0.9,
    )
    print_rows([row], command_line("sudo .venv/bin/python -m bench.netpol.throughput"), machine)


if __name__ == "__main__":
    main()
