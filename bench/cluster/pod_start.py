"""Pod start latency (create → Ready) over N pods, with where the time goes.

Two ways to create them: (a) one Deployment of N replicas (the controllers make the pods), and
(b) N bare pods POSTed at ``rate`` per second. Each pod runs agnhost netexec, with (default) a
readiness probe httpGet /healthz periodSeconds 1 as a user would write it, or none.

A watch on the pods records, on this machine's monotonic clock, the first time each pod is
seen (a) at all, (b) bound to a node, (c) with a pod IP (sandbox + CNI done), (d) with its
container running, (e) Ready=True. Latency of a bare pod = Ready seen - the moment its POST was
sent; of a Deployment's pod = Ready seen - the moment the pod first appeared in the watch (and,
what a user waits for, - the Deployment's POST). The API's own timestamps (creationTimestamp,
the Ready condition's lastTransitionTime) have 1 s resolution and are reported for reference.
Target: p99 under 1 s (the Kubernetes SLO is 5 s p99, excluding image pulls).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.cluster.harness import BenchCluster, machine_load, percentile, running_cluster
from bench.cluster.procs import Usage, cluster_usage, components
from svcnet.client.rest import ApiClient

IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.52"
STAGES = ("seen", "scheduled", "ip", "running", "ready")


def container(probe: bool) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": "netexec",
        "image": IMAGE,
        "args": ["netexec", "--http-port=8080"],
        "ports": [{"containerPort": 8080}],
    }
    if probe:
        c["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1}
    return c


def pod(name: str, label: str, probe: bool) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"bench": label}},
        "spec": {"containers": [container(probe)], "terminationGracePeriodSeconds": 1},
    }


def deployment(label: str, replicas: int, probe: bool) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": label, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"bench": label}},
            "template": {
                "metadata": {"labels": {"bench": label}},
                "spec": {"containers": [container(probe)], "terminationGracePeriodSeconds": 1},
            },
        },
    }


def is_ready(p: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (p.get("status") or {}).get("conditions") or []
    )


def stages_of(p: dict[str, Any]) -> set[str]:
    st = p.get("status") or {}
    out = {"seen"}
    if (p.get("spec") or {}).get("nodeName"):
        out.add("scheduled")
    if st.get("podIP"):
        out.add("ip")
    if any("running" in (cs.get("state") or {}) for cs in st.get("containerStatuses") or []):
        out.add("running")
    if is_ready(p):
        out.add("ready")
    return out


def _ts(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def api_latency(p: dict[str, Any]) -> float | None:
    """Ready lastTransitionTime - creationTimestamp (whole seconds, the API's resolution)."""
    ready = next(
        (c for c in (p.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"),
        None,
    )
    created = (p.get("metadata") or {}).get("creationTimestamp")
    if not ready or not created or not ready.get("lastTransitionTime"):
        return None
    return _ts(str(ready["lastTransitionTime"])) - _ts(str(created))


def summary(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {}
    return {
        "n": len(xs),
        "p50": percentile(xs, 50),
        "p90": percentile(xs, 90),
        "p99": percentile(xs, 99),
        "max": max(xs),
        "mean": statistics.fmean(xs),
    }


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.access(found, os.X_OK):
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    return found


def start_profilers(c: BenchCluster, out_dir: Path) -> list[subprocess.Popen[bytes]]:
    """py-spy (sampling, non-blocking) on the control plane and node-1's agent: where their
    CPU goes during the burst, as collapsed stacks for a flame graph or a quick sort."""
    spy = py_spy()
    out_dir.mkdir(parents=True, exist_ok=True)
    comps = components(c.data_dir / "state")
    procs = []
    for name in ("controlplane", "agent-node-1"):
        if name in comps:
            procs.append(subprocess.Popen(
                [spy, "record", "--nonblocking", "-r", "50", "-f", "raw", "-p", str(comps[name]),
                 "-o", str(out_dir / f"{name}.collapsed")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
    time.sleep(0.5)  # py-spy attaches
    return procs


def stop_profilers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


async def measure(
    c: BenchCluster, pods: int, mode: str, probe: bool, rate: float, timeout: float = 300,
    profile: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    label = f"ps{os.getpid() % 10000}"
    first: dict[str, dict[str, float]] = {}  # pod → stage → first seen (monotonic)
    sent: dict[str, float] = {}  # bare pod → its POST sent
    writes: dict[str, int] = {}  # pod → watch events (each one a write that changed the pod)
    all_ready = asyncio.Event()
    async with c.api() as api:
        settled = await wait_addons_ready(api)
        listing = await api.list("pods", "default", label_selector=f"bench={label}")
        rv = listing["metadata"]["resourceVersion"]

        async def watch() -> None:
            async for ev in api.watch(
                "pods", "default", resource_version=rv, label_selector=f"bench={label}"
            ):
                now = time.monotonic()
                if ev.type not in ("ADDED", "MODIFIED"):
                    continue
                name = str(ev.object.get("metadata", {}).get("name", ""))
                writes[name] = writes.get(name, 0) + 1
                seen = first.setdefault(name, {})
                for s in stages_of(ev.object):
                    seen.setdefault(s, now)
                if sum(1 for v in first.values() if "ready" in v) >= pods:
                    all_ready.set()

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.2)  # the watch is open before the first create
        spies = start_profilers(c, profile) if profile else []
        cpu_before = cluster_usage(c.data_dir / "state")
        t0 = time.monotonic()
        try:
            if mode == "deployment":
                await api.create(deployment(label, pods, probe))
            else:
                creates = []
                for i in range(pods):
                    delay = t0 + i / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    name = f"{label}-{i:03d}"
                    sent[name] = time.monotonic()
                    creates.append(asyncio.create_task(api.create(pod(name, label, probe))))
                await asyncio.gather(*creates)
            posted = time.monotonic() - t0
            await asyncio.wait_for(all_ready.wait(), timeout)
            t_all = time.monotonic() - t0
            cpu_after = cluster_usage(c.data_dir / "state")
        finally:
            stop_profilers(spies)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
        final = (await api.list("pods", "default", label_selector=f"bench={label}"))["items"]
        events = (await api.list("events", "default"))["items"]
    reasons: dict[str, int] = {}
    for e in events:
        if str((e.get("involvedObject") or {}).get("name", "")).startswith(label):
            r = str(e.get("reason", ""))
            reasons[r] = reasons.get(r, 0) + int(e.get("count") or 1)

    start = {n: (sent.get(n) or v["seen"]) for n, v in first.items()}
    lat = [v["ready"] - start[n] for n, v in first.items() if "ready" in v]
    steps: dict[str, list[float]] = {}
    prev_names = ("create", *STAGES[:-1])
    for n, v in first.items():
        prev = start[n]
        for before, stage in zip(prev_names, STAGES, strict=True):
            if stage in v:
                steps.setdefault(f"{before}->{stage}", []).append(v[stage] - prev)
                prev = v[stage]
    by_node: dict[str, int] = {}
    for p in final:
        node = str((p.get("spec") or {}).get("nodeName") or "-")
        by_node[node] = by_node.get(node, 0) + 1
    api_lat = [x for p in final if (x := api_latency(p)) is not None]
    return {
        "mode": mode,
        "probe": probe,
        "pods": pods,
        "rate_per_s": rate if mode == "bare" else None,
        "create_to_ready": summary(lat),
        "from_first_post_to_ready": summary(
            [v["ready"] - t0 for v in first.values() if "ready" in v]
        ),
        "from_first_post_to_seen": summary([v["seen"] - t0 for v in first.values()]),
        "stages": {k: summary(v) for k, v in steps.items()},
        "posts_done_s": posted,
        "all_ready_s": t_all,
        "api_timestamps_create_to_ready": summary(api_lat),
        "pods_per_node": by_node,
        "cpu_s_during_burst": cpu_spent(cpu_before, cpu_after),
        "pod_writes_per_pod": summary([float(x) for x in writes.values()]),
        "events_by_reason": reasons,
        "addons_ready_wait_s": settled,
    }


async def wait_addons_ready(api: ApiClient, timeout: float = 60.0) -> float | None:
    """Seconds until every kube-system pod (the DNS add-on) is Ready; None on timeout.

    `svcnet up` returns once the nodes are Ready, while the add-on pods may still be starting
    (a Python DNS server imports for ~0.5 CPU-s): a burst that began then would share the CPU
    with them and count their start in the agents' CPU, which is no part of a pod's start.
    """
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        items = (await api.list("pods", "kube-system"))["items"]
        if items and all(is_ready(p) for p in items):
            return round(time.monotonic() - t0, 2)
        await asyncio.sleep(0.2)
    return None


def cpu_spent(before: dict[str, Usage], after: dict[str, Usage]) -> dict[str, dict[str, float]]:
    """CPU seconds each component burnt between the first create and the last Ready: its own
    and its live descendants' (``live``: the component + pod processes) and its reaped
    children's (``reaped``: short-lived helpers such as CNI plugins, ``ip``, ``nsenter``)."""
    out = {}
    for name, a in after.items():
        b = before.get(name, Usage())
        out[name] = {
            "own": round(a.root_cpu_s - b.root_cpu_s, 2),
            "live": round(a.cpu_s - b.cpu_s, 2),
            "reaped": round(a.reaped_children_cpu_s - b.reaped_children_cpu_s, 2),
        }
    return out


def run(
    pods: int = 100, mode: str = "deployment", probe: bool = True, rate: float = 10.0,
    nodes: int = 3, debug: bool = False, keep_logs: Path | None = None,
    profile: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    if profile is not None:
        py_spy()  # before making a cluster, not after
    env = {"SVCNET_LOG_LEVEL": "DEBUG"} if debug else None
    with running_cluster(nodes, env=env, keep_logs=keep_logs) as c:
        out = asyncio.run(measure(c, pods, mode, probe, rate, profile=profile))
    out["load"] = machine_load()
    return out
