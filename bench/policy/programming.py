"""NetworkPolicy on a real cluster: programming latency, and the agent's memory with 1,000 policies.

A 2-node benchmark cluster (:mod:`bench.cluster.harness`) with ``--pods`` idle pods (Deployment
``idle``, label ``bench=idle``). Then ``--policies`` NetworkPolicies are created one at a time,
each selecting the idle pods and allowing them on a port of its own; a policy counts as
programmed when every node's ``svcnet.io/netpol-programmed-revision`` annotation has reached
the resourceVersion its create returned: the agent sets it after the nft transaction that
holds the policy (and the conntrack cleanup of flows it denies) succeeded, so the time is
create -> enforced in every node's kernel. The nodes are polled through the API every 5 ms.

Then ``--bulk`` more policies are created at once (as ``kubectl apply`` of a directory would)
and, once every node has them, each agent's RSS and PSS are read (their NetworkPolicy state
included: every pod, namespace and policy of the cluster, the compiled model and the table),
with the rule count of node-1's table.

    sudo .venv/bin/python -m bench.policy.programming [--pods 200] [--policies 100] [--bulk 900]

Target (issue 11): p99 <= 500 ms with 100 policies over 200 pods.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import time
from typing import Any

from bench.cluster.harness import BenchCluster, machine_load, percentile, running_cluster
from bench.cluster.memory import start_pods
from bench.cluster.procs import cluster_usage
from svcnet.api.wellknown import NETPOL_PROGRAMMED_ANNOTATION

POLL = 0.005


def policy(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"pol-{i}", "namespace": "default"},
        "spec": {
            "podSelector": {"matchLabels": {"bench": "idle"}},
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"bench": "idle"}}}],
                    "ports": [{"port": 1000 + i % 60000}],
                }
            ],
        },
    }


async def wait_programmed(api: Any, revision: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = (await api.list("nodes"))["items"]
        values = [
            int((n["metadata"].get("annotations") or {}).get(NETPOL_PROGRAMMED_ANNOTATION, -1))
            for n in nodes
        ]
        if values and min(values) >= revision:
            return
        await asyncio.sleep(POLL)
    raise RuntimeError(f"revision {revision} not programmed on every node in {timeout}s")


async def latencies(c: BenchCluster, n: int) -> list[float]:
    out = []
    async with c.api() as api:
        for i in range(n):
            start = time.monotonic()
            created = await api.create(policy(i), namespace="default")
            await wait_programmed(api, int(created["metadata"]["resourceVersion"]))
            out.append(time.monotonic() - start)
    return out


async def bulk(c: BenchCluster, first: int, n: int) -> float:
    async with c.api() as api:
        start = time.monotonic()
        last = 0
        for i in range(first, first + n):
            created = await api.create(policy(i), namespace="default")
            last = int(created["metadata"]["resourceVersion"])
        await wait_programmed(api, last, timeout=600)
        return time.monotonic() - start


def rule_count(c: BenchCluster) -> int:
    netns = f"{c.name}-node-1"
    out = subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "-j", "list", "table", "ip", "svcnet-netpol"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        return -1
    return sum(1 for o in json.loads(out.stdout)["nftables"] if "rule" in o)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pods", type=int, default=200)
    ap.add_argument("--policies", type=int, default=100)
    ap.add_argument("--bulk", type=int, default=900)
    args = ap.parse_args()
    with running_cluster(nodes=2) as c:
        asyncio.run(start_pods(c, args.pods, timeout=900))
        print(f"{args.pods} pods Ready; load: {machine_load()}", flush=True)
        lat = asyncio.run(latencies(c, args.policies))
        ms = [x * 1000 for x in lat]
        print(
            f"programming latency, {args.policies} policies over {args.pods} pods, 2 nodes: "
            f"p50 {statistics.median(ms):.0f} ms, p99 {percentile(ms, 99):.0f} ms, "
            f"max {max(ms):.0f} ms; node-1 rules {rule_count(c)}; load: {machine_load()}",
            flush=True,
        )
        if args.bulk:
            took = asyncio.run(bulk(c, args.policies, args.bulk))
            total = args.policies + args.bulk
            usage = {k: v for k, v in cluster_usage(c.data_dir / "state").items() if "agent" in k}
            mem = ", ".join(
                f"{k} RSS {u.rss_kib / 1024:.0f} MiB PSS {u.pss_kib / 1024:.0f} MiB"
                for k, u in sorted(usage.items())
            )
            print(
                f"{args.bulk} more policies created at once: on every node after {took:.1f} s; "
                f"with {total} policies: node-1 rules {rule_count(c)}; {mem}; "
                f"load: {machine_load()}",
                flush=True,
            )


if __name__ == "__main__":
    main()
