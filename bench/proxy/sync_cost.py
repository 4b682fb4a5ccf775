"""The proxy's rule sync cost at 1k / 5k / 10k Services x 10 endpoints.

Runs the real rule builder and applies its transactions with the real ``nft`` inside a scratch
network namespace of its own (removed at the end, also on failure). For each size: full sync
time (build + ``nft -f``), partial sync time for one endpoint change of one Service, the
kernel's rule / element / chain counts, and this process's peak RSS.

    sudo .venv/bin/python -m bench.proxy.sync_cost [--sizes 1000,5000,10000]

It prints each size's figures, then rows of the table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import time
from dataclasses import replace

from bench.table import Machine, Row, command_line, print_rows
from svcnet.dataplane.nft_exec import NftExecutor
from svcnet.proxy.model import Endpoint, Protocol, ServiceKey, ServicePort
from svcnet.proxy.rules import FAMILY, TABLE, ProxyConfig, build_full, build_partial, commit

NODE = "node-1"
NODES = ("node-1", "node-2", "node-3")
ENDPOINTS_PER_SERVICE = 10


def make_services(n: int) -> dict[ServiceKey, tuple[tuple[ServicePort, tuple[Endpoint, ...]], ...]]:
    out: dict[ServiceKey, tuple[tuple[ServicePort, tuple[Endpoint, ...]], ...]] = {}
    for i in range(n):
        key = ServiceKey("bench", f"svc-{i}")
        sp = ServicePort(
            service=key,
            port_name="http",
            protocol=Protocol.TCP,
            port=80,
            cluster_ip=f"10.96.{i // 250}.{i % 250 + 1}",
            node_port=0,
            external_ips=(),
            load_balancer_ips=(),
            external_policy_local=False,
            internal_policy_local=False,
            affinity_timeout=None,
            health_check_node_port=0,
        )
        eps = tuple(
            Endpoint(_endpoint_ip(i * ENDPOINTS_PER_SERVICE + j), 8080, node_name=NODES[j % 3])
            for j in range(ENDPOINTS_PER_SERVICE)
        )
        out[key] = ((sp, eps),)
    return out


def _endpoint_ip(k: int) -> str:
    """The k-th pod address from 10.128.0.1 upwards (250 per /24), clear of the Service range."""
    return f"10.{128 + k // 62500}.{k // 250 % 250}.{k % 250 + 1}"


def children_cpu() -> float:
    """CPU seconds (user + system) of reaped child processes: nft's own work, kernel included."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_size(
    ex: NftExecutor, n: int, partial_rounds: int = 20, full_runs: int = 3
) -> dict[str, float]:
    cfg = ProxyConfig(node_name=NODE, cluster_cidr="10.244.0.0/16", node_ips=("172.18.0.11",))
    services = make_services(n)
    # The machine is shared: a full load is repeated and its median reported.
    fulls: list[tuple[float, float, float]] = []
    for _ in range(full_runs):
        ex.delete_table_if_exists(FAMILY, TABLE)
        c0 = time.process_time() + children_cpu()
        t0 = time.perf_counter()
        tx, state = build_full(cfg, services)
        t1 = time.perf_counter()
        ex.apply_sync(tx)
        t2 = time.perf_counter()
        fulls.append((t2 - t0, t1 - t0, time.process_time() + children_cpu() - c0))
    full_s, full_build_s, full_cpu_s = sorted(fulls)[len(fulls) // 2]
    t2 = time.perf_counter()
    # A second full sync over the loaded table: the periodic resync's cost.
    tx2, state = build_full(cfg, services, ex.chain_names(FAMILY, TABLE))
    t3 = time.perf_counter()
    ex.apply_sync(tx2)
    t4 = time.perf_counter()
    partial: list[float] = []
    build_only: list[float] = []
    for r in range(partial_rounds):
        key = ServiceKey("bench", f"svc-{(r * 7919) % n}")
        ((sp, eps),) = services[key]
        moved = replace(eps[0], ip=f"10.250.{r // 250}.{r % 250 + 1}")
        changed = {key: ((sp, (moved, *eps[1:])),)}
        p0 = time.perf_counter()
        ptx, delta = build_partial(cfg, state, changed)
        p1 = time.perf_counter()
        ex.apply_sync(ptx)
        commit(state, delta)
        p2 = time.perf_counter()
        services.update(changed)
        partial.append(p2 - p0)
        build_only.append(p1 - p0)
    rules, elements, chains = ex.counts(FAMILY, TABLE)
    return {
        "services": n,
        "full_build_s": full_build_s,
        "full_apply_s": full_s - full_build_s,
        "full_s": full_s,
        "full_min_s": min(f for f, _, _ in fulls),
        "full_cpu_s": full_cpu_s,
        "resync_s": t4 - t2,
        "resync_build_s": t3 - t2,
        "partial_p50_ms": statistics.median(partial) * 1000,
        "partial_max_ms": max(partial) * 1000,
        "partial_build_ms": statistics.median(build_only) * 1000,
        "rules": rules,
        "elements": elements,
        "chains": chains,
        "rss_mib": rss_mib(),
        "script_kib": len(tx.render()) / 1024,
    }


def rows(results: list[dict[str, float]]) -> list[Row]:
    """The figures as rows of docs/benchmarks.md's table, one group per size."""
    out = []
    for r in results:
        size = f"{r['services']:,.0f} Services x {ENDPOINTS_PER_SERVICE} endpoints"
        full_target = r["services"] == 10_000
        out += [
            Row(
                "proxy",
                f"full sync, {size} (build + nft, median of 3)",
                f"{r['full_s']:.2f} s ({r['full_build_s']:.2f} + {r['full_apply_s']:.2f}), best "
                f"{r['full_min_s']:.2f} s, CPU {r['full_cpu_s']:.2f} s",
                "< 3 s" if full_target else "",
                r["full_s"] < 3 if full_target else None,
            ),
            Row(
                "proxy",
                f"partial sync, one endpoint change, {size} (includes `ip netns exec`)",
                f"p50 {r['partial_p50_ms']:.1f} ms, max {r['partial_max_ms']:.1f} ms "
                f"(build {r['partial_build_ms']:.2f} ms)",
                "< 50 ms",
                r["partial_p50_ms"] < 50,
            ),
            Row(
                "proxy",
                f"kernel objects, {size}",
                f"{r['rules']:.0f} rules, {r['chains']:.0f} chains, {r['elements']:,.0f} "
                f"elements; bench process peak RSS {r['rss_mib']:.0f} MiB",
            ),
        ]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="1000,5000,10000")
    args = ap.parse_args(argv)
    machine = Machine.now()
    ns = f"kpxb-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        ex = NftExecutor(netns=ns)
        results = []
        for n in (int(s) for s in args.sizes.split(",")):
            r = run_size(ex, n)
            print(
                f"{n:>6} services: full {r['full_s']:.2f}s (build {r['full_build_s']:.2f}s, "
                f"best {r['full_min_s']:.2f}s, cpu {r['full_cpu_s']:.2f}s) "
                f"resync {r['resync_s']:.2f}s partial p50 {r['partial_p50_ms']:.1f}ms "
                f"max {r['partial_max_ms']:.1f}ms rules {r['rules']:.0f} elements "
                f"{r['elements']:.0f} chains {r['chains']:.0f} rss {r['rss_mib']:.0f}MiB",
                flush=True,
            )
            results.append(r)
        print(
            f"nft: {subprocess.run(['nft', '--version'], capture_output=True, text=True).stdout.strip()}, "
            f"kernel {os.uname().release}"
        )
        print_rows(rows(results), command_line("python -m bench.proxy.sync_cost", argv), machine)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
