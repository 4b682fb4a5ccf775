"""How soon the DNS process answers an API change: the figures tests/e2e/test_dns_controller.py
only asserts the outcome of.

``python -m svcnet.apiserver`` and ``python -m svcnet.dns --kubeconfig ...`` run as their own
processes on loopback; this process writes the objects and asks the DNS server over UDP every
5 ms until the answer changes. Each sample runs from the start of the API write to the first
query (sent) that got the new answer, so it includes up to one 5 ms polling step. Rounds:

1. create: a ClusterIP Service is created -> its name answers its ClusterIP;
2. delete: it is deleted -> NXDOMAIN;
3. endpoint ready: a headless Service's EndpointSlice turns its second endpoint ready -> the
   name answers both addresses (and back to one when it turns not ready);
4. namespace: a Namespace is created -> ``<ns>.svc.cluster.local.`` is NOERROR.

    .venv/bin/python -m bench.dns.change_latency [--rounds 50]

Prints each figure, the command that reproduces them, and JSON on the last line. Both
processes are stopped by PID in a finally.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode

from bench.controllers.latency import api_server, summary
from svcnet.client.kubeconfig import load_kubeconfig
from svcnet.client.rest import ApiClient

HOST = "127.0.0.1"
STEP = 0.005
Answer = tuple[str, list[str]]  # (rcode, sorted A records)


def free_port() -> int:
    """A port free for both UDP and TCP right now (the DNS process binds both)."""
    import socket

    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
            u.bind((HOST, 0))
            port = int(u.getsockname()[1])
            with contextlib.suppress(OSError):
                t.bind((HOST, port))
                return port
    raise OSError("no port free for both UDP and TCP")


async def ask(port: int, name: str) -> Answer | None:
    try:
        r = await dns.asyncquery.udp(dns.message.make_query(name, "A"), HOST, port=port, timeout=1)
    except dns.exception.Timeout:
        return None
    return dns.rcode.to_text(r.rcode()), sorted(rd.to_text() for rrset in r.answer for rd in rrset)


async def until(port: int, name: str, want: Callable[[Answer], bool], t0: float) -> float:
    """Seconds from ``t0`` to the sending of the first query whose answer ``want`` accepts."""
    async with asyncio.timeout(30):
        while True:
            sent = time.monotonic()
            got = await ask(port, name)
            if got is not None and want(got):
                return sent - t0
            await asyncio.sleep(STEP)


def answers(*ips: str) -> Callable[[Answer], bool]:
    return lambda a: a == ("NOERROR", sorted(ips))


def rcode_is(rcode: str) -> Callable[[Answer], bool]:
    return lambda a: a[0] == rcode


@contextlib.asynccontextmanager
async def dns_process(kubeconfig: Path) -> AsyncIterator[int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "svcnet.dns", "--listen", f"{HOST}:{port}",
         "--kubeconfig", str(kubeconfig), "--log-level", "WARNING"],
        env=env,
    )  # fmt: skip
    try:
        await until(port, "kubernetes.default.svc.cluster.local.", rcode_is("NOERROR"), 0)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def service(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}], **spec}}  # fmt: skip


def headless_slice(ns: str, second_ready: bool) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "db-1", "namespace": ns,
                     "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.244.1.5"], "conditions": {"ready": True}},
            {"addresses": ["10.244.2.6"], "conditions": {"ready": second_ready}},
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }  # fmt: skip


async def measure(kubeconfig: Path, rounds: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"create": [], "delete": [], "endpoint_ready": [],
                                   "namespace": []}  # fmt: skip
    async with ApiClient(load_kubeconfig(kubeconfig)) as api, dns_process(kubeconfig) as port:
        ns = "bench-" + uuid.uuid4().hex[:6]
        await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        await api.create(service("db", ns, clusterIP="None"))
        await api.create(headless_slice(ns, False))
        db = f"db.{ns}.svc.cluster.local."
        await until(port, db, answers("10.244.1.5"), 0)
        for i in range(rounds):
            name = f"web-{i}.{ns}.svc.cluster.local."
            t0 = time.monotonic()
            created = await api.create(service(f"web-{i}", ns))
            out["create"].append(await until(port, name, answers(created["spec"]["clusterIP"]), t0))
            t0 = time.monotonic()
            await api.delete("services", f"web-{i}", ns)
            out["delete"].append(await until(port, name, rcode_is("NXDOMAIN"), t0))
            for ready, want in ((True, answers("10.244.1.5", "10.244.2.6")),
                                (False, answers("10.244.1.5"))):  # fmt: skip
                current = await api.get("endpointslices", "db-1", ns)
                current.update(apiVersion="discovery.k8s.io/v1", kind="EndpointSlice")
                current["endpoints"][1]["conditions"]["ready"] = ready
                t0 = time.monotonic()
                await api.update(current)
                out["endpoint_ready"].append(await until(port, db, want, t0))
            new_ns = f"{ns}-{i}"
            t0 = time.monotonic()
            await api.create({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": new_ns}})  # fmt: skip
            out["namespace"].append(
                await until(port, f"{new_ns}.svc.cluster.local.", rcode_is("NOERROR"), t0)
            )
    return out


LABELS = {
    "create": "Service created -> its name answers the ClusterIP",
    "delete": "Service deleted -> NXDOMAIN",
    "endpoint_ready": "headless endpoint ready/not ready -> the name's addresses follow",
    "namespace": "Namespace created -> <ns>.svc NOERROR",
}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.dns.change_latency")
    p.add_argument("--rounds", type=int, default=50)
    args = p.parse_args()
    with api_server() as kubeconfig:
        samples = asyncio.run(measure(kubeconfig, args.rounds))
    results = {k: summary(v) for k, v in samples.items()}
    for key, r in results.items():
        print(
            f"{LABELS[key]}: n={r['n']} p50 {r['p50_ms']:.0f} ms, p90 {r['p90_ms']:.0f} ms, "
            f"p99 {r['p99_ms']:.0f} ms, max {r['max_ms']:.0f} ms"
        )
    print("command: .venv/bin/python -m bench.dns.change_latency " + " ".join(sys.argv[1:]))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
