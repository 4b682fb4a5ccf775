"""Store write throughput and watch fan-out, through the store alone (no HTTP).

Run: .venv/bin/python -m bench.store.write_throughput [--n 10000] [--watchers 100]
Prints creates/s for SqliteStore and MemoryStore, full-list time, and watch delivery latency.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import orjson
import uvloop

from svcnet.store import MemoryStore, SqliteStore, Store


def service_value(i: int) -> bytes:
    # Roughly the size of a stored Service with two ports (about 700 bytes of JSON).
    return orjson.dumps(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": f"svc-{i}",
                "namespace": "default",
                "uid": f"0a1b2c3d-0000-4000-8000-{i:012d}",
                "resourceVersion": "0",
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"app": f"app-{i % 100}"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
            },
            "spec": {
                "type": "ClusterIP",
                "clusterIP": f"10.96.{i // 250}.{i % 250 + 2}",
                "clusterIPs": [f"10.96.{i // 250}.{i % 250 + 2}"],
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "selector": {"app": f"app-{i % 100}"},
                "ports": [
                    {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                    {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
                ],
                "sessionAffinity": "None",
                "internalTrafficPolicy": "Cluster",
            },
            "status": {"loadBalancer": {}},
        }
    )


async def run(store: Store, n: int, watchers: int) -> dict[str, float]:
    values = [service_value(i) for i in range(n)]
    start_rev = store.revision
    latencies: list[float] = []
    sent: dict[int, float] = {}

    async def consume() -> None:
        watch = store.watch("/registry/services/", start_rev)
        seen = 0
        while seen < n:
            batch = await watch.next_batch()
            now = time.perf_counter()
            for ev in batch:
                latencies.append(now - sent[ev.revision])
            seen += len(batch)
        watch.close()

    tasks = [asyncio.create_task(consume()) for _ in range(watchers)]
    await asyncio.sleep(0)
    t0 = time.perf_counter()
    for i, value in enumerate(values):
        key = f"/registry/services/default/svc-{i:05d}"
        sent[store.revision + 1] = time.perf_counter()
        await store.create(key, value)
        if i % 50 == 0:
            # Let watchers run, as an HTTP server between requests would.
            await asyncio.sleep(0)
    t_write = time.perf_counter() - t0
    await asyncio.gather(*tasks)
    t_all = time.perf_counter() - t0
    t1 = time.perf_counter()
    result = await store.list("/registry/services/")
    t_list = time.perf_counter() - t1
    assert len(result.items) == n
    t2 = time.perf_counter()
    for kv in result.items:
        await store.update(kv.key, kv.value, kv.mod_revision)
    t_update = time.perf_counter() - t2
    t3 = time.perf_counter()
    for kv in result.items:
        await store.delete(kv.key)
    t_delete = time.perf_counter() - t3
    q = statistics.quantiles(latencies, n=100) if latencies else [0.0] * 99
    return {
        "creates_per_s": n / t_write,
        "updates_per_s": n / t_update,
        "deletes_per_s": n / t_delete,
        "total_s": t_all,
        "list_ms": t_list * 1000,
        "watch_p50_ms": q[49] * 1000,
        "watch_p99_ms": q[98] * 1000,
    }


async def main(n: int, watchers: int) -> None:
    print(f"{n} keys of {len(service_value(0))} bytes")
    with tempfile.TemporaryDirectory() as tmp:
        for name, store in (
            ("sqlite, no watchers", SqliteStore(Path(tmp) / "a.db")),
            ("memory, no watchers", MemoryStore()),
        ):
            r = await run(store, n, 0)
            await store.close()
            print(
                f"{name:28s} {r['creates_per_s']:9.0f} creates/s {r['updates_per_s']:9.0f} "
                f"updates/s {r['deletes_per_s']:9.0f} deletes/s  full list {r['list_ms']:.1f} ms"
            )
        for name, store in (
            (f"sqlite, {watchers} watchers", SqliteStore(Path(tmp) / "b.db")),
            (f"memory, {watchers} watchers", MemoryStore()),
        ):
            r = await run(store, n, watchers)
            await store.close()
            print(
                f"{name:28s} {r['creates_per_s']:9.0f} creates/s  all delivered in "
                f"{r['total_s']:.2f} s  watch p50 {r['watch_p50_ms']:.1f} ms "
                f"p99 {r['watch_p99_ms']:.1f} ms"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--watchers", type=int, default=100)
    args = parser.parse_args()
    uvloop.run(main(args.n, args.watchers))
