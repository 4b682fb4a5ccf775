"""What the Service data plane costs, on a real cluster: overhead (c) and scale (d).

(c) overhead: HTTP requests/s and latency from a client pod on node-2 to one server pod on
    node-1, straight to the pod IP vs through the ClusterIP (DNAT by node-2's proxy). Client:
    wrk (C, in the client pod's network namespace through ``svcnet exec``), in two modes: a new
    TCP connection per request (``Connection: close``: every request pays the DNAT and the
    conntrack set-up) and keep-alive (steady state: only the per-packet NAT). Server: HAProxy
    answering from memory (C), or ``--server agnhost``. Rounds interleave the two targets (the
    order flips every round); the headline ratio is the median of the per-round ClusterIP/pod
    ratios. ``--client loadgen --server agnhost`` is the earlier setup (Python client and
    server, new connections only). Target: ClusterIP throughput >= 95 % of the pod IP's.
(d) scale: new-connection latency (TCP connect to the ClusterIP, sequential) with 100 Services
    programmed, then with 10,000 (selector-less Services, each with an EndpointSlice of 10
    endpoints, in namespace ``bench-scale``; the count is read back from node-2's nft map
    before measuring). Target: within 10 %.

    sudo .venv/bin/python -m bench.proxy.dataplane --data-dir DIR [--skip scale] [--realtime 50]
    sudo .venv/bin/python -m bench.proxy.dataplane --up
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.proxy.latency import AGNHOST, PY, BenchCluster, own_cluster, percentile
from svcnet.api.errors import AlreadyExists, NotFound
from svcnet.testing import wrk

SCALE_NS = "bench-scale"
ENDPOINTS = 10

# The server: a C one by default (HAProxy answering from memory, one thread) so that the
# figures are the network path's and not a Python server's; ``--server agnhost`` keeps the
# earlier setup (agnhost netexec, svcnet's Python implementation). ``option nolinger`` makes
# HAProxy end each connection with a reset instead of leaving a TIME_WAIT socket behind: at
# 10^4 new connections/s a reused client port then never meets an old TIME_WAIT on the server.
HAPROXY_CFG = """\
global
  nbthread 1
defaults
  mode http
  timeout client 10s
  timeout server 10s
  timeout connect 1s
frontend web
  bind :8080
  option nolinger
  http-request return status 200 content-type text/plain string "dp-backend"
"""


def setup_manifest(server: str, haproxy_cfg: str, realtime: int = 0) -> str:
    if server == "haproxy":
        rt = f'chrt, -f, "{realtime}", ' if realtime else ""
        backend = f"""    image: haproxy
    command: [{rt}haproxy, -db, -f, {haproxy_cfg}]"""
    else:
        backend = f"""    image: {AGNHOST}
    args: ["netexec", "--http-port=8080", "--udp-port=-1"]"""
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: dp-backend, labels: {{app: dp-backend}}}}
spec:
  nodeName: node-1
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
{backend}
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
    """The Python load generator (``--client loadgen``): closed loop, a new connection each."""
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


# Client-side settings of the client pod's network namespace for a wrk round, and why:
# - each target gets its own half of the ephemeral port range, so that a connection to the pod
#   IP never reuses the 4-tuple (client:port -> pod:8080) of a recent ClusterIP connection
#   (after DNAT they are the same tuple to the server and to node-2's conntrack, which would
#   then remap the port to resolve the clash);
# - tcp_tw_reuse=1: the client may reuse its own TIME_WAIT ports (2x10^4 ports last ~2 s at
#   10^4 connections/s);
# - tcp_timestamps=0: with timestamps, a SYN that meets a server TIME_WAIT socket is checked by
#   PAWS against the previous connection's timestamp, and one that fails costs the worker a
#   1 s SYN retransmit (seen: up to 60 per 4 s round, on both paths, as random as the port
#   choice); without timestamps the SYN is accepted on its sequence number.
PORT_RANGES = {"pod": "20000 39999", "clusterip": "40000 60999"}


def wrk_round(
    c: BenchCluster, kind: str, url: str, mode: wrk.Mode, args: argparse.Namespace, script: str
) -> tuple[wrk.WrkResult, int]:
    """One wrk run; also the SYN retransmits the client namespace counted meanwhile (each one
    stalls a worker for 1 s: the sign of a 4-tuple collision, see PORT_RANGES)."""
    argv = wrk.wrk_argv(url, mode, seconds=args.seconds, connections=args.concurrency,
                        threads=args.threads, script=script)  # fmt: skip
    net = "/proc/sys/net/ipv4"
    shell = (
        f"echo {PORT_RANGES[kind]} > {net}/ip_local_port_range && "
        f"echo 1 > {net}/tcp_tw_reuse && echo 0 > {net}/tcp_timestamps && "
        'grep TcpExt: /proc/net/netstat; "$@"; grep TcpExt: /proc/net/netstat'
    )
    if args.realtime:
        argv = ["chrt", "-f", str(args.realtime), *argv]
    out = c.exec("dp-client", ["sh", "-c", shell, "wrk", *argv], timeout=args.seconds + 60)
    return wrk.parse_summary(out), syn_retransmits(out)


def syn_retransmits(out: str) -> int:
    """TcpExtTCPSynRetrans after minus before, from two ``TcpExt:`` header/value line pairs."""
    lines = [ln.split() for ln in out.splitlines() if ln.startswith("TcpExt:")]
    if len(lines) != 4:
        return -1
    before, after = (
        dict(zip(lines[0], lines[1], strict=True)),
        dict(zip(lines[2], lines[3], strict=True)),
    )
    key = "TCPSynRetrans"
    return int(after.get(key, 0)) - int(before.get(key, 0))


def overhead_wrk(c: BenchCluster, targets: dict[str, str], args: argparse.Namespace,
                 script: str) -> dict[str, Any]:  # fmt: skip
    """Interleaved rounds: in each, every mode against both targets, the order flipped every
    other round so that drift (other jobs on the two cores) falls on both alike."""
    modes = [wrk.Mode(m) for m in args.modes.split(",")]
    runs: dict[str, dict[str, list[wrk.WrkResult]]] = {
        m.value: {"pod": [], "clusterip": []} for m in modes
    }
    retrans: dict[str, dict[str, list[int]]] = {
        m.value: {"pod": [], "clusterip": []} for m in modes
    }
    for r in range(args.rounds):
        for mode in modes:
            order = ("pod", "clusterip") if r % 2 == 0 else ("clusterip", "pod")
            for kind in order:
                result, syn = wrk_round(c, kind, targets[kind], mode, args, script)
                runs[mode.value][kind].append(result)
                retrans[mode.value][kind].append(syn)
    out: dict[str, Any] = {}
    for m, by_kind in runs.items():
        res: dict[str, Any] = {}
        for kind, rs in by_kind.items():
            res[kind] = {
                "rps": round(statistics.median(x.rps for x in rs)),
                "p50_ms": statistics.median(x.p50_ms for x in rs),
                "p99_ms": statistics.median(x.p99_ms for x in rs),
                "errors": sum(x.errors for x in rs),
                "requests": sum(x.requests for x in rs),
                "rps_rounds": [round(x.rps) for x in rs],
                "syn_retransmits_rounds": retrans[m][kind],
            }
        # The two targets of one round ran back to back: the ratio within a round is nearly
        # free of the drift between rounds (other jobs on the two cores), so the headline is
        # the median of the per-round ratios, with their quartiles as the spread.
        pairs = list(zip(by_kind["pod"], by_kind["clusterip"], strict=True))
        ratios = [cip.rps / pod.rps for pod, cip in pairs]
        res["ratio"] = round(statistics.median(ratios), 3)
        res["ratio_rounds"] = [round(x, 3) for x in ratios]
        if len(ratios) > 1:
            q1, _, q3 = statistics.quantiles(ratios, n=4)
            res["ratio_quartiles"] = [round(q1, 3), round(q3, 3)]
        res["ratio_of_medians"] = round(res["clusterip"]["rps"] / res["pod"]["rps"], 3)
        res["p50_ratio"] = round(
            statistics.median(cip.p50_ms / pod.p50_ms for pod, cip in pairs if pod.p50_ms), 3
        )
        res["p99_ratio"] = round(
            statistics.median(cip.p99_ms / pod.p99_ms for pod, cip in pairs if pod.p99_ms), 3
        )
        out[m] = res
    return out


def overhead_loadgen(c: BenchCluster, targets: dict[str, str],
                     args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    runs: dict[str, list[dict[str, Any]]] = {"pod": [], "clusterip": []}
    for _ in range(args.rounds):
        for kind in ("pod", "clusterip"):
            runs[kind].append(load(c, targets[kind], args.seconds, args.concurrency))

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
    return {"new": res}


def overhead(c: BenchCluster, args: argparse.Namespace, script: str) -> dict[str, Any]:
    backend = c.wait_ready("app=dp-backend", 1)[0]
    ip = json.loads(c.kubectl("get", "svc", "dp", "-o", "json"))["spec"]["clusterIP"]
    path = "/" if args.server == "haproxy" else "/hostname"
    targets = {"pod": f"http://{backend['status']['podIP']}:8080{path}",
               "clusterip": f"http://{ip}:80{path}"}  # fmt: skip
    wait_serving(c, targets["clusterip"])
    res = (overhead_wrk(c, targets, args, script) if args.client == "wrk"
           else overhead_loadgen(c, targets, args))  # fmt: skip
    res["setup"] = {
        "client": args.client, "server": args.server, "rounds": args.rounds,
        "seconds": args.seconds, "concurrency": args.concurrency, "threads": args.threads,
        "realtime": args.realtime,
    }  # fmt: skip
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


def programmed(c: BenchCluster, node: int, addresses: frozenset[str] | None = None) -> int:
    """How many entries node N's proxy has in its service-ips map (ClusterIP . proto . port);
    with ``addresses``, only the entries of those ClusterIPs."""
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
            elems = item["map"].get("elem") or []
            if addresses is None:
                return len(elems)
            return sum(1 for key, _ in elems if key["concat"][0] in addresses)
    return 0


async def scale_addresses(c: BenchCluster) -> frozenset[str]:
    """The ClusterIPs of the scale Services: the entries the scale phase waits for. Other
    entries come and go on their own (a Service whose pods turn not ready on a busy machine
    leaves service-ips), so a count of the whole map cannot tell when the scale ones are in."""
    async with c.api() as api:
        items = (await api.list("services", SCALE_NS))["items"]
    return frozenset(svc["spec"]["clusterIP"] for svc in items)


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
    """Seconds until node-2 has an entry for each of ``at_least`` scale Services."""
    t0 = time.monotonic()
    addresses = asyncio.run(scale_addresses(c))
    while programmed(c, 2, addresses) < at_least:
        if time.monotonic() - t0 > timeout:
            got = programmed(c, 2, addresses)
            raise RuntimeError(f"node-2 has {got} of the {at_least} scale Services' entries")
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
        wait_programmed(c, small, 120)
        out[f"{small}"] = {"entries": programmed(c, 2), **connect_latency(c, n)}
        t0 = time.monotonic()
        asyncio.run(create_services(c, small, large, pod_prefix))
        created = time.monotonic() - t0
        waited = wait_programmed(c, large, 600)
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
    p.add_argument(
        "--client",
        choices=("wrk", "loadgen"),
        default="wrk",
        help="wrk (C) or svcnet.testing.loadgen (Python, new connections only)",
    )
    p.add_argument(
        "--server",
        choices=("haproxy", "agnhost"),
        default="haproxy",
        help="the backend: HAProxy (C) or agnhost netexec (svcnet's, Python)",
    )
    p.add_argument(
        "--modes",
        default="new,keepalive",
        help="wrk: new (a connection per request), keepalive, or both",
    )
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument(
        "--realtime", type=int, default=0, metavar="PRIO",
        help="run wrk and HAProxy as SCHED_FIFO PRIO (chrt): on a shared machine, other jobs "
        "then cannot preempt the measured client and server (the kernel's packet work runs "
        "mostly in their context); the RT throttle leaves others 5%% of each second",
    )  # fmt: skip
    p.add_argument("--services", type=int, default=10000)
    p.add_argument("--baseline-services", type=int, default=100)
    p.add_argument("--connects", type=int, default=2000)
    p.add_argument("--skip", choices=("overhead", "scale"), action="append", default=[])
    args = p.parse_args(argv)
    if not args.data_dir and not args.up:
        p.error("--data-dir or --up")
    with contextlib.ExitStack() as stack:
        files = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="svcnet-dp-")))
        os.chmod(files, 0o755)
        (files / "haproxy.cfg").write_text(HAPROXY_CFG)
        (files / "summary.lua").write_text(wrk.SUMMARY_SCRIPT)
        manifest = setup_manifest(args.server, str(files / "haproxy.cfg"), args.realtime)
        c = stack.enter_context(own_cluster()) if args.up else BenchCluster.attach(args.data_dir)
        c.apply(manifest)
        try:
            c.wait_ready("app in (dp-backend,dp-client)", 2)
            result: dict[str, Any] = {}
            if "overhead" not in args.skip:
                result["overhead"] = overhead(c, args, str(files / "summary.lua"))
                print(json.dumps({"overhead": result["overhead"]}), flush=True)
            if "scale" not in args.skip:
                result["scale"] = scale(c, args.baseline_services, args.services, args.connects)
                print(json.dumps({"scale": result["scale"]}), flush=True)
        finally:
            c.kubectl("delete", "-f", "-", "--wait=true", "--timeout=30s", input=manifest,
                      check=False)  # fmt: skip
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
