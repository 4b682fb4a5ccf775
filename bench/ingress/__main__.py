"""``python -m bench.ingress``: the ingress add-on against a pod and against nginx (root: it
starts a real cluster).

    sudo .venv/bin/python -m bench.ingress [--rounds 3] [--seconds 5] [--concurrency 16]
        [--modes keepalive,new] [--schemes http,https] [--route-changes 20]
        [--skip throughput|route-change]

One 2-node cluster (bench/cluster/harness.py); the objects of :mod:`bench.ingress.setup`.
From the machine, wrk (one thread, ``--concurrency`` connections; ``new`` = a connection per
request, ``keepalive`` = one per wrk connection for the run) against three targets serving the
same answer, HTTP and HTTPS:
- direct: the backend pod's IP (its own TLS on 8443);
- ingress: the add-on's LoadBalancer address, Host ``bench.example.com``;
- nginx: the peer's LoadBalancer address, the same Host.
Rounds interleave the targets (the order turns every round) so that other jobs on the shared
cores hit them alike; the headline is the median of the per-round ratios to direct. Target:
the ingress at ≥ 70 % of direct's requests/s, and above nginx.

Route change → served: an Ingress for a new host is created through the API and a prober (a new
connection every 5 ms) asks the add-on for that host until the backend answers; the time from
the create request to that answer, ``--route-changes`` times (each one a reload). Target:
p99 ≤ 1 s. Memory: RSS and PSS of the controller and its HAProxy (master and worker), idle
with one route and again after the load and the route changes.

Prints its figures as JSON, then rows for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import http.client
import json
import ssl
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.cluster.harness import BenchCluster, machine_load, percentile, running_cluster
from bench.cluster.procs import children, usage
from bench.ingress import setup
from bench.table import Machine, Row, command_line, print_rows
from svcnet.cluster.addons import INGRESS_NAME, INGRESS_NAMESPACE
from svcnet.ingress.certs import self_signed
from svcnet.testing import wrk
from svcnet.testing.cluster_process import cluster_process

TARGETS = ("direct", "ingress", "nginx")
RPS_TARGET = 0.70
ROUTE_P99_TARGET_S = 1.0


def _json(c: BenchCluster, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(c.kubectl("get", *args, "-o", "json"))
    return out


def _wait(what: str, probe: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = probe()
        except (OSError, RuntimeError, KeyError, IndexError, http.client.HTTPException):
            got = None
        if got:
            return got
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def _lb_address(c: BenchCluster, name: str, namespace: str = "default") -> str:
    svc = _json(c, "service", name, "-n", namespace)
    return str(svc["status"]["loadBalancer"]["ingress"][0]["ip"])


def _pod(c: BenchCluster, name: str) -> dict[str, Any]:
    pod = _json(c, "pod", name)
    ready = any(
        x.get("type") == "Ready" and x.get("status") == "True"
        for x in pod.get("status", {}).get("conditions") or []
    )
    return pod if ready and pod["status"].get("podIP") else {}


def answer(address: str, port: int, host: str, tls: bool = False) -> tuple[int, bytes]:
    """One GET with ``host`` as its Host header; (status, body)."""
    conn: http.client.HTTPConnection
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(address, port, timeout=2, context=ctx)
    else:
        conn = http.client.HTTPConnection(address, port, timeout=2)
    try:
        conn.request("GET", "/", headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _serves(address: str, port: int, tls: bool = False) -> bool:
    return answer(address, port, setup.HOST, tls) == (200, b"bench-backend")


def prepare(c: BenchCluster) -> dict[str, str]:
    """The backend, the Ingress and nginx, all serving; each target's address."""
    ingress_address = _wait(
        "the add-on's address", lambda: _lb_address(c, INGRESS_NAME, INGRESS_NAMESPACE)
    )
    c.kubectl("rollout", "status", f"deployment/{INGRESS_NAME}", "-n", INGRESS_NAMESPACE,
              "--timeout=240s")  # fmt: skip
    [controller] = _json(c, "pods", "-n", INGRESS_NAMESPACE)["items"]
    node = controller["spec"]["nodeName"]
    other = "node-1" if node != "node-1" else "node-2"
    pem = self_signed(setup.HOST, datetime.datetime.now(datetime.UTC))
    c.kubectl("apply", "-f", "-", input=_list(setup.backend_objects(other, pem)))
    backend = _wait("the backend pod", lambda: _pod(c, setup.BACKEND))
    pod_ip = backend["status"]["podIP"]
    _wait("the backend answering", lambda: _serves(pod_ip, setup.HTTP_PORT))
    c.kubectl("apply", "-f", "-", input=json.dumps(setup.route_ingress("bench", setup.HOST)))
    _wait("the ingress serving", lambda: _serves(ingress_address, 80))
    c.kubectl("apply", "-f", "-", input=_list(setup.nginx_objects(node, pem, pod_ip)))
    nginx_address = _wait("nginx's address", lambda: _lb_address(c, setup.NGINX))
    _wait("nginx serving", lambda: _serves(nginx_address, 80) and _serves(nginx_address, 443, True))
    _wait("the ingress serving HTTPS", lambda: _serves(ingress_address, 443, True))
    _wait("the backend's HTTPS", lambda: _serves(pod_ip, setup.HTTPS_PORT, True))
    return {"direct": pod_ip, "ingress": ingress_address, "nginx": nginx_address,
            "controller_node": node, "backend_node": other}  # fmt: skip


def _list(items: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def url(target: str, address: str, scheme: str) -> str:
    if target == "direct":
        port = setup.HTTPS_PORT if scheme == "https" else setup.HTTP_PORT
        return f"{scheme}://{address}:{port}/"
    return f"{scheme}://{address}/"


def run_wrk(
    target_url: str, mode: wrk.Mode, args: argparse.Namespace, script: str
) -> wrk.WrkResult:
    argv = wrk.wrk_argv(target_url, mode, seconds=args.seconds, connections=args.concurrency,
                        threads=1, script=script)  # fmt: skip
    argv = [*argv[:-1], "-H", f"Host: {setup.HOST}", argv[-1]]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=args.seconds + 60,
                         check=False)  # fmt: skip
    return wrk.parse_summary(res.stdout)


def throughput(addresses: dict[str, str], args: argparse.Namespace, script: str) -> dict[str, Any]:
    modes = [wrk.Mode(m) for m in args.modes.split(",")]
    schemes = args.schemes.split(",")
    runs: dict[str, dict[str, list[wrk.WrkResult]]] = {
        f"{s} {m.value}": {t: [] for t in TARGETS} for s in schemes for m in modes
    }
    for r in range(args.rounds):
        for scheme in schemes:
            for mode in modes:
                order = TARGETS[r % 3 :] + TARGETS[: r % 3]
                for target in order:
                    res = run_wrk(url(target, addresses[target], scheme), mode, args, script)
                    runs[f"{scheme} {mode.value}"][target].append(res)
    out: dict[str, Any] = {}
    for key, by_target in runs.items():
        res_key: dict[str, Any] = {}
        for target, rs in by_target.items():
            res_key[target] = {
                "rps": round(statistics.median(x.rps for x in rs)),
                "p50_ms": statistics.median(x.p50_ms for x in rs),
                "p99_ms": statistics.median(x.p99_ms for x in rs),
                "errors": sum(x.errors for x in rs),
                "rps_rounds": [round(x.rps) for x in rs],
            }
        # The targets of one round ran back to back: their ratio is nearly free of the drift
        # between rounds (other jobs on the shared cores).
        for peer in ("ingress", "nginx"):
            ratios = [
                p.rps / d.rps
                for d, p in zip(by_target["direct"], by_target[peer], strict=True)
                if d.rps
            ]
            res_key[f"{peer}_ratio"] = round(statistics.median(ratios), 3)
            res_key[f"{peer}_ratio_rounds"] = [round(x, 3) for x in ratios]
        vs = [
            i.rps / n.rps
            for n, i in zip(by_target["nginx"], by_target["ingress"], strict=True)
            if n.rps
        ]
        res_key["ingress_vs_nginx"] = round(statistics.median(vs), 3)
        out[key] = res_key
    return out


def _probe(address: str, host: str, deadline: float, served: list[float]) -> None:
    while time.monotonic() < deadline:
        try:
            if answer(address, 80, host) == (200, b"bench-backend"):
                served.append(time.monotonic())
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.005)


async def route_changes(c: BenchCluster, address: str, n: int) -> list[float]:
    out = []
    async with c.api() as api:
        for i in range(n):
            host = f"rc{i}.{setup.HOST}"
            served: list[float] = []
            started = time.monotonic()
            prober = threading.Thread(target=_probe, args=(address, host, started + 30, served))
            prober.start()
            await api.create(setup.route_ingress(f"rc-{i}", host))
            await asyncio.to_thread(prober.join)
            if not served:
                raise RuntimeError(f"{host} not served in 30 s")
            out.append(served[0] - started)
            await asyncio.sleep(0.5)  # the next change starts from a settled HAProxy
    return out


def memory(c: BenchCluster) -> dict[str, Any]:
    # The add-on's container process, ``python -m svcnet.ingress``; HAProxy is its child.
    pid = cluster_process(c.service_cidr, lambda argv: b"svcnet.ingress" in argv)
    total, alone = usage(pid), usage(pid, exclude=set(children(pid)))
    return {
        "processes": total.processes,
        "rss_mib": round(total.rss_kib / 1024, 1),
        "pss_mib": round(total.pss_kib / 1024, 1),
        "controller_rss_mib": round(alone.rss_kib / 1024, 1),
        "controller_pss_mib": round(alone.pss_kib / 1024, 1),
    }


def _served(r: dict[str, Any]) -> str:
    return f"{r['rps']:,}/s (p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.1f} ms)"


def rows(out: dict[str, Any]) -> list[Row]:
    result = []
    for key, r in out.get("throughput", {}).items():
        ing, direct, nginx = r["ingress"], r["direct"], r["nginx"]
        figure = (
            f"ingress {_served(ing)} = {r['ingress_ratio']:.0%} of direct {_served(direct)}; "
            f"nginx {_served(nginx)} = {r['nginx_ratio']:.0%}; ingress/nginx "
            f"{r['ingress_vs_nginx']:.2f}; errors {ing['errors']}/{direct['errors']}/{nginx['errors']}"
        )
        result.append(Row("Ingress", f"req/s and latency, {key}, through the add-on vs the pod vs nginx "
                          f"(wrk -c{out['setup']['concurrency']}, median of {out['setup']['rounds']} rounds)",
                          figure, "≥ 70 % of direct, above nginx",
                          r["ingress_ratio"] >= RPS_TARGET and r["ingress_vs_nginx"] >= 1.0))  # fmt: skip
    rc = out.get("route_change", {"seconds": []})
    if rc["seconds"]:
        result.append(Row("Ingress", f"route change → served ({len(rc['seconds'])} new Ingresses, each a reload)",
                          f"p50 {rc['p50_s']:.2f} s, p99 {rc['p99_s']:.2f} s, max {rc['max_s']:.2f} s",
                          "p99 ≤ 1 s", rc["p99_s"] <= ROUTE_P99_TARGET_S))  # fmt: skip
    idle, busy = out["memory_idle"], out["memory_after"]
    result.append(Row("Ingress", "memory of the add-on (controller + HAProxy master and worker) — load-independent",
                      f"idle, 1 route: RSS {idle['rss_mib']} MiB, PSS {idle['pss_mib']} MiB (controller "
                      f"PSS {idle['controller_pss_mib']} MiB); after the run, "
                      f"{len(rc['seconds']) + 1} routes: RSS {busy['rss_mib']} MiB, PSS {busy['pss_mib']} MiB"))  # fmt: skip
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ingress", description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--modes", default="keepalive,new")
    p.add_argument("--schemes", default="http,https")
    p.add_argument("--route-changes", type=int, default=20)
    p.add_argument("--skip", choices=("throughput", "route-change"), action="append", default=[])
    args = p.parse_args(argv)
    machine = Machine.now()
    out: dict[str, Any] = {"setup": vars(args), "load_start": machine_load()}
    with (
        tempfile.TemporaryDirectory(prefix="svcnet-bench-ingress-") as files,
        running_cluster(2) as c,
    ):
        script = str(Path(files) / "summary.lua")
        Path(script).write_text(wrk.SUMMARY_SCRIPT)
        addresses = prepare(c)
        out["addresses"] = addresses
        out["memory_idle"] = memory(c)
        if "throughput" not in args.skip:
            out["throughput"] = throughput(addresses, args, script)
            print(json.dumps({"throughput": out["throughput"]}), flush=True)
        if "route-change" not in args.skip:
            seconds = asyncio.run(route_changes(c, addresses["ingress"], args.route_changes))
            out["route_change"] = {
                "seconds": [round(s, 3) for s in seconds],
                "p50_s": percentile(seconds, 50),
                "p99_s": percentile(seconds, 99),
                "max_s": max(seconds),
            }
        out["memory_after"] = memory(c)
        out["load_end"] = machine_load()
    print(json.dumps(out))
    print_rows(rows(out), command_line("python -m bench.ingress", argv), machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
