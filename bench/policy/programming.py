"""NetworkPolicy on a real cluster: programming latency, and the agent's memory with 1,000 policies.

A 2-node benchmark cluster (:mod:`bench.cluster.harness`) with ``--pods`` idle pods (Deployment
``idle``, label ``bench=idle``). Then ``--policies`` NetworkPolicies are created one at a time,
each selecting the idle pods and allowing them on a port of its own; a policy counts as
programmed when every node's ``svcnet.io/netpol-programmed-revision`` annotation has reached
the resourceVersion its create returned: the agent sets it after the nft transaction that
holds the policy (and the conntrack cleanup of flows it denies) succeeded, so the time is
create -> enforced in every node's kernel. The nodes are followed by a watch (a poll of the
API every few milliseconds would load the API server it measures).

Then ``--bulk`` more policies are created at once (as ``kubectl apply`` of a directory would)
and, once every node has them, each agent's own RSS (its process alone, not the pods it runs)
is read and compared with its RSS before the first policy: the difference is what holding
and programming the policies costs (informer cache, compiled model, nft objects), with the
rule count of each node's table.

    sudo .venv/bin/python -m bench.policy.programming [--pods 200] [--policies 100] [--bulk 900]

Target (issue 11): p99 <= 500 ms with 100 policies over 200 pods.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import time
from typing import Any

from bench.cluster.harness import BenchCluster, machine_load, percentile, running_cluster
from bench.cluster.pod_start import deployment
from bench.cluster.procs import children, components, usage
from bench.table import Machine, Row, command_line, print_rows
from svcnet.api.errors import ApiError
from svcnet.api.wellknown import NETPOL_PROGRAMMED_ANNOTATION
from svcnet.client.rest import ApiClient, ConnectionFailed

TARGET_P99_MS = 500
SETTLE = 20.0


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


class Programmed:
    """Every node's programmed revision, kept current by a watch on Nodes."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self.values: dict[str, int] = {}
        self._changed = asyncio.Event()

    def _record(self, node: dict[str, Any]) -> None:
        meta = node["metadata"]
        value = (meta.get("annotations") or {}).get(NETPOL_PROGRAMMED_ANNOTATION, -1)
        self.values[meta["name"]] = int(value)
        self._changed.set()

    async def run(self) -> None:
        while True:
            listing = await self.api.list("nodes")
            for node in listing["items"]:
                self._record(node)
            rv = listing["metadata"]["resourceVersion"]
            with contextlib.suppress(ApiError, ConnectionFailed):
                async for event in self.api.watch("nodes", resource_version=rv):
                    if event.type in ("ADDED", "MODIFIED"):
                        self._record(event.object)

    async def wait(self, revision: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not self.values or min(self.values.values()) < revision:
            self._changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"revision {revision} not on every node in {timeout}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)


async def create_and_wait(c: BenchCluster, first: int, n: int, one_by_one: bool) -> list[float]:
    """Create policies ``first`` .. ``first + n - 1``; one by one: each one's time to every
    node; else all at once: the time until every node has the last."""
    out = []
    async with c.api() as api:
        programmed = Programmed(api)
        watcher = asyncio.create_task(programmed.run())
        try:
            start = time.monotonic()
            for i in range(first, first + n):
                if one_by_one:
                    start = time.monotonic()
                created = await api.create(policy(i), namespace="default")
                if one_by_one:
                    await programmed.wait(int(created["metadata"]["resourceVersion"]))
                    out.append(time.monotonic() - start)
            if not one_by_one:
                await programmed.wait(int(created["metadata"]["resourceVersion"]), 600)
                out.append(time.monotonic() - start)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    return out


async def start_idle_pods(c: BenchCluster, n: int, timeout: float = 900) -> None:
    """A Deployment of ``n`` idle pods; returns once each runs with an address (what a policy
    selects; readiness plays no part, and a loaded machine's missed heartbeats can leave pods
    NotReady for a long time)."""
    async with c.api() as api:
        await api.create(deployment("idle", n, probe=False))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pods = (await api.list("pods", "default", label_selector="bench=idle"))["items"]
            running = [
                p
                for p in pods
                if (p.get("status") or {}).get("podIP")
                and (p.get("status") or {}).get("phase") == "Running"
            ]
            if len(running) >= n:
                return
            await asyncio.sleep(0.5)
    raise RuntimeError(f"{n} idle pods without an address after {timeout}s")


def slowest(ms: list[float], n: int = 5) -> str:
    """The ``n`` slowest samples as ``#index ms``: whether they cluster says what delayed them."""
    top = sorted(range(len(ms)), key=lambda i: ms[i], reverse=True)[:n]
    return ", ".join(f"#{i} {ms[i]:.0f}" for i in sorted(top))


def rule_counts(c: BenchCluster) -> dict[str, int]:
    """Rules in each node's NetworkPolicy table."""
    out = {}
    for node in range(1, c.nodes + 1):
        netns = f"{c.name}-node-{node}"
        res = subprocess.run(
            ["ip", "netns", "exec", netns, "nft", "-j", "list", "table", "ip", "svcnet-netpol"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        items = json.loads(res.stdout)["nftables"] if res.returncode == 0 else []
        out[f"node-{node}"] = sum(1 for o in items if "rule" in o)
    return out


def agent_rss_mib(c: BenchCluster) -> dict[str, float]:
    """Each agent's own RSS: its process alone, without the pods it runs."""
    out = {}
    for name, pid in components(c.data_dir / "state").items():
        if name.startswith("agent"):
            out[name] = usage(pid, set(children(pid))).rss_kib / 1024
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pods", type=int, default=200)
    ap.add_argument("--policies", type=int, default=100)
    ap.add_argument("--bulk", type=int, default=900)
    args = ap.parse_args()
    rows: list[Row] = []
    with running_cluster(nodes=2) as c:
        asyncio.run(start_idle_pods(c, args.pods))
        time.sleep(SETTLE)  # the agents' start-up work done before their memory is read
        print(f"{args.pods} pods running; load: {machine_load()}", flush=True)
        machine = Machine.now()
        before = agent_rss_mib(c)
        ms = [x * 1000 for x in asyncio.run(create_and_wait(c, 0, args.policies, True))]
        p50, p99 = statistics.median(ms), percentile(ms, 99)
        print(
            f"programming latency, {args.policies} policies over {args.pods} pods, 2 nodes: "
            f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {max(ms):.0f} ms "
            f"(slowest, by creation order: {slowest(ms)}); "
            f"rules {rule_counts(c)}; load: {machine_load()}",
            flush=True,
        )
        rows.append(
            Row(
                "NetworkPolicy",
                f"programming latency (create -> every node), {args.policies} policies over "
                f"{args.pods} pods, p50 / p99",
                f"{p50:.0f} / {p99:.0f} ms",
                f"p99 <= {TARGET_P99_MS} ms",
                p99 <= TARGET_P99_MS,
            )
        )
        if args.bulk:
            [took] = asyncio.run(create_and_wait(c, args.policies, args.bulk, False))
            total = args.policies + args.bulk
            after = agent_rss_mib(c)
            mem = ", ".join(
                f"{k} {after[k]:.0f} MiB (+{after[k] - before.get(k, 0):.0f})"
                for k in sorted(after)
            )
            print(
                f"{args.bulk} more policies created at once: on every node after {took:.1f} s; "
                f"with {total} policies: rules {rule_counts(c)}; agent RSS {mem}; "
                f"load: {machine_load()}",
                flush=True,
            )
            rows.append(
                Row(
                    "NetworkPolicy",
                    f"{args.bulk} policies created at once -> every node",
                    f"{took:.1f} s",
                )
            )
            rows.append(
                Row(
                    "NetworkPolicy",
                    f"agent RSS with {total} policies (its own process; growth from none)",
                    mem,
                )
            )
    print_rows(rows, command_line("sudo .venv/bin/python -m bench.policy.programming"), machine)


if __name__ == "__main__":
    main()
