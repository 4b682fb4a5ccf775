"""Benchmarks (c) and (d) of issue 4 on a real cluster: what the Service data plane costs.

(c) overhead: HTTP requests/s and latency from a client pod on node-2 to one netexec pod on
    node-1, straight to the pod IP vs through the ClusterIP (DNAT by node-2's proxy), with
    ``svcnet.testing.loadgen`` in closed loop (a new TCP connection per request, so every
    request pays the NAT lookup); rounds alternate between the two targets and the medians are
    compared. Target: ClusterIP throughput >= 95 % of the pod IP's.
(d) scale: new-connection latency (TCP connect to the ClusterIP, sequential) with 100 Services
    programmed, then with 10,000 (selector-less Services, each with an EndpointSlice of 10
    endpoints, in namespace ``bench-scale``; the count is read back from node-2's nft map
    before measuring). Target: within 10 %.

    sudo .venv/bin/python -m bench.proxy.dataplane --data-dir DIR [--services 10000]
    sudo .venv/bin/python -m bench.proxy.dataplane --up
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.proxy.latency import AGNHOST, PY, BenchCluster, own_cluster, percentile
from svcnet.api.errors import AlreadyExists, NotFound

SCALE_NS = "bench-scale"
ENDPOINTS = 10

SETUP = f"""
apiVersion: v1
kind: Pod
metadata: {{name: dp-backend, labels: {{app: dp-backend}}}}
spec:
  nodeName: node-1
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: {AGNHOST}
    args: ["netexec", "--http-port=8080", "--udp-port=-1"]
---
apiVersion: v1
kind: Pod
metadata: {{name: dp-client, labels: {{app: dp-client}}}}
spec:
  nodeName: node-2
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {AGNHOST}
    args: ["netexec", "--http-port=8080", "--udp-port=-1"]
---
apiVersion: v1
kind: Service
metadata: {{name: dp}}
spec:
  selector: {{app: dp-backend}}
  ports: [{{port: 80, targetPort: 8080}}]
"""

# Runs in the client pod: sequential TCP connects, the handshake time of each.
CONNECT = r"""
import json, socket, sys, time
ip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = []
for _ in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # RST: no TIME_WAIT pile
    t0 = time.perf_counter()
    s.connect((ip, port))
    out.append(time.perf_counter() - t0)
    s.close()
print(json.dumps(out))
"""


def load(c: BenchCluster, url: str, seconds: float, concurrency: int) -> dict[str, Any]:
    out = c.exec(
        "dp-client",
        [PY, "-m", "svcnet.testing.loadgen", url, "--concurrency", str(concurrency),
         "--duration", str(seconds), "--reset"],
    )  # fmt: skip
    summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return summary


def wait_serving(c: BenchCluster, url: str, timeout: float = 30) -> None:
    """Until the client gets answers through ``url`` (the slice and the rules are in place)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if load(c, url, 0.5, 1)["ok"]:
            return
    raise RuntimeError(f"{url} does not answer")


def overhead(c: BenchCluster, rounds: int, seconds: float, concurrency: int) -> dict[str, Any]:
    backend = c.wait_ready("app=dp-backend", 1)[0]
    pod_url = f"http://{backend['status']['podIP']}:8080/hostname"
    ip = json.loads(c.kubectl("get", "svc", "dp", "-o", "json"))["spec"]["clusterIP"]
    svc_url = f"http://{ip}:80/hostname"
    wait_serving(c, svc_url)
    runs: dict[str, list[dict[str, Any]]] = {"pod": [], "clusterip": []}
    for _ in range(rounds):
        for kind, url in (("pod", pod_url), ("clusterip", svc_url)):
            s = load(c, url, seconds, concurrency)
            runs[kind].append(s)

    def med(kind: str, key: str) -> float:
        if key == "rps":
            return float(statistics.median(float(r["rps"]) for r in runs[kind]))
        return float(statistics.median(float(r["latency_ms"][key]) for r in runs[kind]))

    res: dict[str, Any] = {
        kind: {"rps": med(kind, "rps"), "p50_ms": med(kind, "p50"), "p99_ms": med(kind, "p99")}
        for kind in runs
    }
    for kind in runs:
        res[kind]["failed"] = sum(r["failed"] for r in runs[kind])
        res[kind]["requests"] = sum(r["sent"] for r in runs[kind])
        res[kind]["rps_rounds"] = [r["rps"] for r in runs[kind]]
    res["ratio"] = round(res["clusterip"]["rps"] / res["pod"]["rps"], 3)
    res["rounds"] = rounds
    res["seconds"] = seconds
    res["concurrency"] = concurrency
    return res


def connect_latency(c: BenchCluster, n: int) -> dict[str, float]:
    ip = json.loads(c.kubectl("get", "svc", "dp", "-o", "json"))["spec"]["clusterIP"]
    times = json.loads(c.exec("dp-client", [PY, "-c", CONNECT, ip, "80", str(n)]).splitlines()[-1])
    ms = [t * 1000 for t in times]
    return {
        "n": n,
        "p50_ms": round(percentile(ms, 50), 3),
        "p90_ms": round(percentile(ms, 90), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


def programmed(c: BenchCluster, node: int) -> int:
    """How many entries node N's proxy has in its service-ips map (ClusterIP . proto . port)."""
    netns = f"{c.name}-node-{node}"
    res = subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "-j", "list", "map", "ip", "svcnet-proxy",
         "service-ips"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if res.returncode != 0:
        return -1
    for item in json.loads(res.stdout).get("nftables", []):
        if "map" in item:
            return len(item["map"].get("elem") or [])
    return 0


def scale_objects(i: int, pod_prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    name = f"s{i}"
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": SCALE_NS},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }
    # Endpoints that do not exist (nobody connects to them): only the rule count matters.
    base = 10 * i
    eps = [
        {"addresses": [f"{pod_prefix}.{200 + (base + j) // 250 % 50}.{(base + j) % 250 + 1}"],
         "conditions": {"ready": True}}
        for j in range(ENDPOINTS)
    ]  # fmt: skip
    eps_slice = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{name}-1",
            "namespace": SCALE_NS,
            "labels": {"kubernetes.io/service-name": name},
        },
        "addressType": "IPv4",
        "endpoints": eps,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }
    return svc, eps_slice


async def create_services(c: BenchCluster, start: int, stop: int, pod_prefix: str) -> None:
    async with c.api() as api:
        with contextlib.suppress(AlreadyExists):
            await api.create({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": SCALE_NS}})  # fmt: skip
        sem = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            svc, sl = scale_objects(i, pod_prefix)
            async with sem:
                with contextlib.suppress(AlreadyExists):
                    await api.create(svc)
                with contextlib.suppress(AlreadyExists):
                    await api.create(sl)

        await asyncio.gather(*(one(i) for i in range(start, stop)))


async def delete_services(c: BenchCluster, count: int) -> None:
    async with c.api() as api:
        sem = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            async with sem:
                for rt, name in (("services", f"s{i}"), ("endpointslices", f"s{i}-1")):
                    with contextlib.suppress(NotFound):
                        await api.delete(rt, name, SCALE_NS)

        await asyncio.gather(*(one(i) for i in range(count)))
        with contextlib.suppress(NotFound):
            await api.delete("namespaces", SCALE_NS)


def wait_programmed(c: BenchCluster, at_least: int, timeout: float) -> float:
    t0 = time.monotonic()
    while programmed(c, 2) < at_least:
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"node-2 has {programmed(c, 2)} entries, wanted {at_least}")
        time.sleep(0.5)
    return time.monotonic() - t0


def scale(c: BenchCluster, small: int, large: int, n: int) -> dict[str, Any]:
    pod_prefix = ".".join(
        json.loads(c.kubectl("get", "node", "node-1", "-o", "json"))["spec"]["podCIDR"].split(".")[
            :2
        ]
    )
    base = programmed(c, 2)
    out: dict[str, Any] = {"baseline_entries": base}
    try:
        asyncio.run(create_services(c, 0, small, pod_prefix))
        wait_programmed(c, base + small, 120)
        out[f"{small}"] = {"entries": programmed(c, 2), **connect_latency(c, n)}
        t0 = time.monotonic()
        asyncio.run(create_services(c, small, large, pod_prefix))
        created = time.monotonic() - t0
        waited = wait_programmed(c, base + large, 600)
        out[f"{large}"] = {"entries": programmed(c, 2), **connect_latency(c, n)}
        out["create_s"] = round(created, 1)
        out["programmed_after_create_s"] = round(waited, 1)
        out["p50_ratio"] = round(out[f"{large}"]["p50_ms"] / out[f"{small}"]["p50_ms"], 3)
        out["mean_ratio"] = round(out[f"{large}"]["mean_ms"] / out[f"{small}"]["mean_ms"], 3)
    finally:
        asyncio.run(delete_services(c, large))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.proxy.dataplane")
    p.add_argument("--data-dir", help="a running cluster's data dir (svcnet up --data-dir)")
    p.add_argument("--up", action="store_true", help="make a cluster of our own (removed after)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--services", type=int, default=10000)
    p.add_argument("--baseline-services", type=int, default=100)
    p.add_argument("--connects", type=int, default=2000)
    p.add_argument("--skip", choices=("overhead", "scale"), action="append", default=[])
    args = p.parse_args(argv)
    if not args.data_dir and not args.up:
        p.error("--data-dir or --up")
    with (own_cluster() if args.up else contextlib.nullcontext(
        BenchCluster.attach(args.data_dir)
    )) as c:  # fmt: skip
        assert c is not None
        c.apply(SETUP)
        try:
            c.wait_ready("app in (dp-backend,dp-client)", 2)
            result: dict[str, Any] = {}
            if "overhead" not in args.skip:
                result["overhead"] = overhead(c, args.rounds, args.seconds, args.concurrency)
                print(json.dumps({"overhead": result["overhead"]}), flush=True)
            if "scale" not in args.skip:
                result["scale"] = scale(c, args.baseline_services, args.services, args.connects)
                print(json.dumps({"scale": result["scale"]}), flush=True)
        finally:
            c.kubectl("delete", "-f", "-", "--wait=false", input=SETUP, check=False)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
