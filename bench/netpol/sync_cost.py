"""What NetworkPolicy costs one node's sync: rules, set elements and time, versus policies and pods.

A synthetic cluster (10 namespaces; pods labelled ``app=app<i % 20>``, half on the node under
test; policy j selects ``app<j % 20>`` and allows ``app<(j+1) % 20>`` of its namespace and the
whole namespace ``ns<(j+3) % 10>`` on port 8080 and the named port ``http``). For each size:
the compile and desired-state time (pure), the full transaction loaded into a real nft table
in a scratch network namespace, and one pod-label change as a partial sync (compile, diff,
apply). The rule count must not depend on the number of pods.

    sudo .venv/bin/python -m bench.netpol.sync_cost [--pods 200 1000] [--policies 10 100 1000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from typing import Any

from bench.table import Machine, Row, command_line, print_rows
from svcnet.dataplane.nft_exec import NftExecutor
from svcnet.netpol.changetracker import ChangeTracker
from svcnet.netpol.rules import (
    FAMILY,
    TABLE,
    Desired,
    NetpolConfig,
    PolicyObjects,
    build_full,
    build_partial,
    desired_state,
)
from svcnet.util.gctune import paused_gc

NODE = "node-1"
NAMESPACES = [f"ns{i}" for i in range(10)]


def pod(ns: str, name: str, app: str, node: str, ip: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
        "spec": {
            "nodeName": node,
            "containers": [{"ports": [{"name": "http", "containerPort": 8080}]}],
        },
        "status": {"phase": "Running", "podIP": ip},
    }


def policy(j: int) -> dict[str, Any]:
    peers = [
        {"podSelector": {"matchLabels": {"app": f"app{(j + 1) % 20}"}}},
        {"namespaceSelector": {"matchLabels": {"team": NAMESPACES[(j + 3) % 10]}}},
    ]
    return {
        "metadata": {"name": f"pol{j}", "namespace": NAMESPACES[j % 10]},
        "spec": {
            "podSelector": {"matchLabels": {"app": f"app{j % 20}"}},
            "ingress": [{"from": peers, "ports": [{"port": 8080}, {"port": "http"}]}],
        },
    }


def world(pods: int, policies: int) -> ChangeTracker:
    t = ChangeTracker()
    for ns in NAMESPACES:
        t.upsert_namespace({"metadata": {"name": ns, "labels": {"team": ns}}})
    for i in range(pods):
        node = NODE if i % 2 else "node-2"
        ip = f"10.{244 + i % 2}.{i // 250}.{i % 250 + 2}"
        t.upsert_pod(pod(NAMESPACES[i % 10], f"p{i}", f"app{i % 20}", node, ip))
    for j in range(policies):
        t.upsert_policy(policy(j))
    return t


def partial_sync(
    ex: NftExecutor, cfg: NetpolConfig, t: ChangeTracker, memo: PolicyObjects, old: Desired
) -> tuple[Desired, float, int]:
    """One partial sync as the agent's syncer runs it: (new state, seconds, operations)."""
    start = time.perf_counter()
    with paused_gc():
        new = desired_state(t.compile(NODE), flow_log=cfg.flow_log, memo=memo)
        tx = build_partial(cfg, old, new)
    ex.apply_sync(tx)
    return new, time.perf_counter() - start, len(tx)


def measure(ex: NftExecutor, pods: int, policies: int) -> tuple[str, int]:
    """The table line, and the rule count."""
    cfg = NetpolConfig(NODE)
    t = world(pods, policies)
    memo = PolicyObjects()
    with paused_gc():
        start = time.perf_counter()
        desired = desired_state(t.compile(NODE), flow_log=cfg.flow_log, memo=memo)
        computed = time.perf_counter() - start
    start = time.perf_counter()
    ex.apply_sync(build_full(cfg, desired))
    full = time.perf_counter() - start
    rules, elements, chains = ex.counts(FAMILY, TABLE)
    t.upsert_pod(pod("ns1", "p1", "app5", NODE, "10.245.0.3"))  # a label change
    desired, label, label_ops = partial_sync(ex, cfg, t, memo, desired)
    t.upsert_policy(policy(policies + 1))
    desired, added, added_ops = partial_sync(ex, cfg, t, memo, desired)
    line = (
        f"| {pods} | {policies} | {rules} | {elements} | {chains} | {computed * 1000:.0f} ms "
        f"| {full * 1000:.0f} ms | {label * 1000:.0f} ms ({label_ops} ops) "
        f"| {added * 1000:.0f} ms ({added_ops} ops) |"
    )
    return line, rules


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pods", type=int, nargs="+", default=[200, 1000])
    ap.add_argument("--policies", type=int, nargs="+", default=[10, 100, 1000])
    args = ap.parse_args()
    machine = Machine.now()
    rules: dict[int, list[str]] = {}
    ns = f"npbench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        ex = NftExecutor(netns=ns)
        print(
            "| pods | policies | rules | elements | chains | compile | full load | label change "
            "| policy added |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for pods in args.pods:
            for policies in args.policies:
                line, count = measure(ex, pods, policies)
                rules.setdefault(pods, []).append(f"{count} / {policies}")
                print(line, flush=True)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    rows = [
        Row(
            "NetworkPolicy",
            f"nft rules / policies, {pods} pods (one node's table)",
            ", ".join(counts),
            "grows with policies, not pods",
        )
        for pods, counts in rules.items()
    ]
    print_rows(rows, command_line("sudo .venv/bin/python -m bench.netpol.sync_cost"), machine)


if __name__ == "__main__":
    main()
