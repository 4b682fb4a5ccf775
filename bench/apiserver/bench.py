"""API server benchmark: Service creates/s, full-list latency, watch delivery latency.

Starts ``python -m svcnet.apiserver`` (SQLite store in a temporary dir, its default prepare workers
unless ``--prepare-workers`` says otherwise) and drives it over
HTTPS keep-alive with aiohttp:

1. creates: ``--services`` Services with 2 ports each into one namespace, ``--clients``
   concurrent HTTPS keep-alive connections, sent by ``wrk`` (Debian package ``wrk``: a Python
   client on the same 2 cores tops out near 700 requests/s and would measure itself; it stops
   once ``--services`` answers came back), or by aiohttp when wrk is missing; prints creates/s.
2. list: the full list of those Services (JSON), ``--lists`` times; prints median and max.
3. watch: ``--watchers`` watches on the namespace, then ``--watch-events`` more creates paced
   at ``--watch-rate``/s; for every (watcher, event) the delay from the create request's start
   to the event's arrival; prints p50/p99/max. The watches are held by ``--watch-procs``
   client processes (one process reading 100 TLS streams measures its own queueing).
4. yardstick: ``bare.py`` (aiohttp + uvloop + SQLite WAL + orjson, nothing else) under the same
   wrk load, and the server CPU time per create of both, so that a run on a loaded machine
   still says how far the API server is from the bare handler. ``--runs N`` repeats it all
   and reports medians.

Usage: ``.venv/bin/python bench/apiserver/bench.py [--runs 3]``; it prints each run, then the
medians as rows of the table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import orjson

NS = "bench"


def service(i: int) -> bytes:
    return orjson.dumps(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"svc-{i}", "namespace": NS, "labels": {"app": f"a{i % 50}"}},
            "spec": {
                "selector": {"app": f"a{i % 50}"},
                "ports": [
                    {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                    {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
                ],
            },
        }
    )


def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(self, data_dir: Path, store: str, prepare_workers: int | None = None) -> None:
        self.data_dir = data_dir
        self.store = store
        self.prepare_workers = prepare_workers
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> None:
        args = [
            sys.executable,
            "-m",
            "svcnet.apiserver",
            "--data-dir",
            str(self.data_dir),
            "--port",
            "0",
            "--log-level",
            "WARNING",
        ]
        if self.store:
            args += ["--store", self.store]
        if self.prepare_workers is not None:
            args += ["--prepare-workers", str(self.prepare_workers)]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2]
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = re.search(r"serving (\S+)", line)
        if not m:
            raise RuntimeError(f"server did not start: {line!r}")
        self.url = m.group(1)

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU time (user + system) used so far by the server process and by its workers
        (the prepare workers of svcnet.apiserver.preparepool, alive for the whole run)."""
        assert self.proc is not None
        pid = self.proc.pid
        return _cpu_of(pid), sum(_cpu_of(c) for c in self._children())

    def worker_count(self) -> int:
        return len(self._children())

    def _children(self) -> list[int]:
        assert self.proc is not None
        pid = self.proc.pid
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


async def creates(
    session: aiohttp.ClientSession,
    url: str,
    start: int,
    count: int,
    clients: int,
    sent_at: dict[str, float] | None = None,
    rate: float = 0.0,
) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(start, start + count):
        queue.put_nowait(i)
    path = f"{url}/api/v1/namespaces/{NS}/services"
    t0 = time.perf_counter()

    async def worker() -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if rate:
                due = t0 + (i - start) / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            if sent_at is not None:
                sent_at[f"svc-{i}"] = time.perf_counter()
            async with session.post(
                path, data=service(i), headers={"Content-Type": "application/json"}
            ) as r:
                if r.status != 201:
                    raise RuntimeError(f"create {i}: {r.status} {await r.text()}")
                await r.read()

    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - t0


async def watcher(
    session: aiohttp.ClientSession,
    url: str,
    rv: str,
    want: int,
    arrivals: list[tuple[str, float]],
    ready: asyncio.Event,
    counter: list[int],
) -> None:
    path = f"{url}/api/v1/namespaces/{NS}/services?watch=1&resourceVersion={rv}"
    seen = 0
    async with session.get(path, timeout=aiohttp.ClientTimeout(total=None)) as r:
        counter[0] += 1
        if counter[0] == counter[1]:
            ready.set()
        buf = b""
        async for chunk in r.content.iter_any():
            now = time.perf_counter()
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                # The name without a full parse: the watcher must not be the bottleneck.
                i = line.find(b'"name":"')
                arrivals.append((line[i + 8 : line.find(b'"', i + 8)].decode(), now))
                seen += 1
            if seen >= want:
                return


# wrk's Lua is LuaJIT: its ffi reads CLOCK_MONOTONIC (the clock of Python's time.monotonic),
# so the rate is the count over the time from the first request to the count-th answer.
WRK_SCRIPT = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } svcnet_timespec;
int clock_gettime(int clk, svcnet_timespec *tp);
]]
local ts = ffi.new("svcnet_timespec")
local function stamp(what)
  ffi.C.clock_gettime(1, ts)
  print(string.format("%%s %%d.%%09d", what, tonumber(ts.tv_sec), tonumber(ts.tv_nsec)))
  io.stdout:flush()
end
local n = %d
local total = %d
local done = 0
request = function()
  if n == %d then
    stamp("first-request")
  end
  n = n + 1
  local body = string.format('%s', n, n %% 50, n %% 50)
  return wrk.format("POST", nil, nil, body)
end
response = function(status, headers, body)
  if status ~= 201 then
    print("unexpected status " .. status .. ": " .. body)
  end
  done = done + 1
  if done == total then
    stamp("last-answer")
    wrk.thread:stop()
  end
end
"""


def wrk_creates(
    url: str, token: str, count: int, seconds: int, clients: int, tmp: Path, first: int = 2_000_000
) -> tuple[float, int]:
    """Create ``count`` Services with wrk (for at most ``seconds``): (creates/s, how many
    were answered). wrk's own clock runs for its whole ``-d``: it is stopped with SIGINT
    once the count-th answer came back, and the rate is taken from the Lua timestamps."""
    body = service(0).decode().replace('"svc-0"', '"svc-%d"').replace('"a0"', '"a%d"')
    script = tmp / "create.lua"
    script.write_text(WRK_SCRIPT % (first, count, first, body.replace("'", "\\'")))
    proc = subprocess.Popen(
        [
            "wrk",
            "-t1",
            f"-c{clients}",
            f"-d{seconds}s",
            "-s",
            str(script),
            "-H",
            f"Authorization: Bearer {token}",
            "-H",
            "Content-Type: application/json",
            f"{url}/api/v1/namespaces/{NS}/services",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    stamps: dict[str, float] = {}
    for line in proc.stdout:
        lines.append(line)
        what, _, at = line.partition(" ")
        if what in ("first-request", "last-answer"):
            stamps[what] = float(at)
            if what == "last-answer":
                proc.send_signal(signal.SIGINT)
    proc.wait()
    out = "".join(lines)
    if "unexpected status" in out:
        raise RuntimeError(out)
    if "last-answer" not in stamps:
        # Fewer answers than asked within ``seconds``: wrk's own figures.
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        n = re.search(r"(\d+) requests in", out)
        assert m and n, out
        return float(m.group(1)), int(n.group(1))
    return count / (stamps["last-answer"] - stamps["first-request"]), count


def start_watch_processes(
    args: argparse.Namespace, url: str, tmp: Path, token: str, rv: str
) -> list[Connection]:
    """``--watch-procs`` client processes sharing the watches: one Python process reading
    100 TLS streams measures its own queueing more than the server's delivery."""
    ctx = multiprocessing.get_context("spawn")
    conns = []
    for k in range(args.watch_procs):
        count = args.watchers // args.watch_procs + (k < args.watchers % args.watch_procs)
        parent, child = ctx.Pipe()
        ctx.Process(
            target=watch_process,
            args=(url, str(tmp / "ca.crt"), token, rv, count, args.watch_events, child),
            daemon=True,
        ).start()
        conns.append(parent)
    return conns


def watch_process(
    url: str, cafile: str, token: str, rv: str, count: int, want: int, conn: Connection
) -> None:
    """One watch client process: says "ready" once its watches are open, then sends back
    (name, arrival time) of every event. perf_counter is CLOCK_MONOTONIC, one clock for all
    processes."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def main() -> list[tuple[str, float]]:
        ctx = ssl.create_default_context(cafile=cafile)
        connector = aiohttp.TCPConnector(ssl=ctx, limit=0)
        headers = {"Authorization": f"Bearer {token}"}
        arrivals: list[tuple[str, float]] = []
        async with aiohttp.ClientSession(connector=connector, headers=headers) as s:
            ready = asyncio.Event()
            counter = [0, count]
            tasks = [
                asyncio.create_task(watcher(s, url, rv, want, arrivals, ready, counter))
                for _ in range(count)
            ]
            await asyncio.wait_for(ready.wait(), 30)
            conn.send("ready")
            await asyncio.wait_for(asyncio.gather(*tasks), 120)
        return arrivals

    conn.send(asyncio.run(main()))


def _start_bare(tmp: Path, plain: bool = False) -> tuple[subprocess.Popen[str], str]:
    """bare.py serving with the API server's certificate: (process, URL)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("bare.py")),
            str(tmp / "apiserver.crt"),
            str(tmp / "apiserver.key"),
            str(tmp / ("bare-plain.db" if plain else "bare.db")),
            *(["--plain"] if plain else []),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    m = re.search(r"serving (\S+)", proc.stdout.readline())
    if not m:
        proc.terminate()
        proc.wait(10)
        raise RuntimeError("bare server did not start")
    return proc, m.group(1)


def bare_creates(
    tmp: Path, token: str, count: int, seconds: int, clients: int
) -> tuple[float, float]:
    """The bare handler (bare.py) under the same wrk load: (creates/s, CPU seconds per create)."""
    proc, url = _start_bare(tmp)
    try:
        stat = Path(f"/proc/{proc.pid}/stat")

        def cpu() -> float:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        cpu0 = cpu()
        rate, made = wrk_creates(url, token, count, seconds, clients, tmp)
        return rate, (cpu() - cpu0) / made
    finally:
        proc.terminate()
        proc.wait(10)


# The bare handler over plain HTTP under ``hey -c 16`` on the machine the 3,000/s target was
# set on: the yardstick's figure today says how fast this machine is next to that one.
REFERENCE_BARE_RATE = 10_500


def machine_yardstick(tmp: Path, requests: int = 20_000) -> float:
    """The bare handler over plain HTTP under ``hey`` with 16 clients (Debian package
    ``hey``), as the target was set. Creates/s, or 0 without hey."""
    if not shutil.which("hey"):
        return 0.0
    body = tmp / "hey-body.json"
    body.write_bytes(service(0))
    proc, url = _start_bare(tmp, plain=True)
    try:
        out = subprocess.run(
            [
                "hey",
                *("-n", str(requests), "-c", "16", "-m", "POST", "-T", "application/json"),
                *("-D", str(body), f"{url}/api/v1/namespaces/{NS}/services"),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        proc.terminate()
        proc.wait(10)
    answered = re.search(r"\[201\]\s+(\d+) responses", out)
    if not answered or int(answered.group(1)) != requests:
        raise RuntimeError(f"hey: not every create answered 201:\n{out}")
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert m, out
    return float(m.group(1))


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="svcnet-bench-") as tmp:
        server = Server(Path(tmp), args.store, args.prepare_workers)
        server.start()
        try:
            token = (Path(tmp) / "token").read_text().strip()
            ctx = ssl.create_default_context(cafile=str(Path(tmp) / "ca.crt"))
            conn = aiohttp.TCPConnector(ssl=ctx, limit=0)
            headers = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession(connector=conn, headers=headers) as s:
                ns = orjson.dumps(
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
                )
                async with s.post(
                    f"{server.url}/api/v1/namespaces",
                    data=ns,
                    headers={"Content-Type": "application/json"},
                ) as r:
                    assert r.status == 201, await r.text()
                own0, workers0 = server.cpu_seconds()
                workers = server.worker_count()
                if shutil.which("wrk"):
                    create_rate, made = await asyncio.to_thread(
                        wrk_creates,
                        server.url,
                        token,
                        args.services,
                        args.create_seconds,
                        args.clients,
                        Path(tmp),
                    )
                    own1, workers1 = server.cpu_seconds()
                    create_cpu, create_cpu_workers = (
                        (own1 - own0) / made,
                        (workers1 - workers0) / made,
                    )
                    # Top up to --services for the list phase (not timed).
                    if made < args.services:
                        await creates(s, server.url, 0, args.services - made, args.clients)
                else:
                    # warm-up connections
                    await creates(s, server.url, 10_000_000, args.clients, args.clients)
                    elapsed = await creates(s, server.url, 0, args.services, args.clients)
                    create_rate = args.services / elapsed
                    own1, workers1 = server.cpu_seconds()
                    made = args.services + args.clients
                    create_cpu, create_cpu_workers = (
                        (own1 - own0) / made,
                        (workers1 - workers0) / made,
                    )

                list_times = []
                items = 0
                for _ in range(args.lists):
                    t0 = time.perf_counter()
                    async with s.get(f"{server.url}/api/v1/namespaces/{NS}/services") as r:
                        body = await r.read()
                    list_times.append(time.perf_counter() - t0)
                    items = len(orjson.loads(body)["items"])

                async with s.get(f"{server.url}/api/v1/namespaces/{NS}/services?limit=1") as r:
                    rv = (await r.json())["metadata"]["resourceVersion"]
                sent_at: dict[str, float] = {}
                arrivals: list[tuple[str, float]] = []
                tasks: list[asyncio.Future[Any]] = []
                if args.watch_procs <= 1:
                    ready = asyncio.Event()
                    counter = [0, args.watchers]
                    tasks = [
                        asyncio.create_task(
                            watcher(s, server.url, rv, args.watch_events, arrivals, ready, counter)
                        )
                        for _ in range(args.watchers)
                    ]
                    await asyncio.wait_for(ready.wait(), 30)
                else:
                    conns = start_watch_processes(args, server.url, Path(tmp), token, rv)
                    for c in conns:
                        assert await asyncio.to_thread(c.recv) == "ready"
                    tasks = [asyncio.ensure_future(asyncio.to_thread(c.recv)) for c in conns]
                await asyncio.sleep(0.5)
                await creates(
                    s,
                    server.url,
                    1_000_000,
                    args.watch_events,
                    min(args.clients, 8),
                    sent_at,
                    args.watch_rate,
                )
                for got in await asyncio.wait_for(asyncio.gather(*tasks), 120):
                    if got:
                        arrivals.extend(got)
                delays = [now - sent_at[name] for name, now in arrivals if name in sent_at]
        finally:
            server.stop()
        baseline_rate, baseline_cpu, yardstick = 0.0, 0.0, 0.0
        if shutil.which("wrk") and not args.no_baseline:
            baseline_rate, baseline_cpu = await asyncio.to_thread(
                bare_creates, Path(tmp), token, args.services, args.create_seconds, args.clients
            )
        if not args.no_baseline:
            yardstick = await asyncio.to_thread(machine_yardstick, Path(tmp))
    return {
        "services": args.services,
        "clients": args.clients,
        "create_rate": create_rate,
        "create_cpu": create_cpu,
        "create_cpu_workers": create_cpu_workers,
        "prepare_workers": workers,
        "baseline_rate": baseline_rate,
        "baseline_cpu": baseline_cpu,
        "yardstick": yardstick,
        "list_items": items,
        "list_median": statistics.median(list_times),
        "list_max": max(list_times),
        "watchers": args.watchers,
        "watch_procs": args.watch_procs,
        "watch_events": args.watch_events,
        "watch_rate": args.watch_rate,
        "samples": len(delays),
        "p50": pct(delays, 0.5),
        "p99": pct(delays, 0.99),
        "max": max(delays),
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per measure, the median over the runs (the load of the last run)."""
    out = dict(runs[-1])
    for k, v in runs[0].items():
        if isinstance(v, int | float):
            out[k] = statistics.median(r[k] for r in runs)
    out["runs"] = runs
    return out


def rows(r: dict[str, Any]) -> list[Any]:
    """The figures as rows of docs/benchmarks.md's table (medians when there were runs)."""
    from bench.table import Row

    runs = r.get("runs") or [r]
    rates = ", ".join(f"{x['create_rate']:,.0f}" for x in runs)
    each = f" (runs: {rates})" if len(runs) > 1 else ""
    median = "median " if len(runs) > 1 else ""
    of_runs = f" (medians of {len(runs)} runs)" if len(runs) > 1 else ""
    out = [
        Row(
            "API server",
            f"Service creates/s (2 ports, {r['services']:,} creates, {r['clients']} HTTPS "
            "keep-alive clients, wrk)",
            f"{median}{r['create_rate']:,.0f}/s{each}",
            "≥ 3,000/s",
            r["create_rate"] >= 3000,
        ),
        Row(
            "API server",
            "server CPU per create (user + system, /proc)",
            f"{r['create_cpu'] * 1e6:.0f} µs in the server + {r['create_cpu_workers'] * 1e6:.0f} µs "
            f"in {r['prepare_workers']:.0f} prepare worker(s)",
        ),
    ]
    if r["baseline_rate"]:
        out.append(
            Row(
                "API server",
                "bare aiohttp + uvloop + SQLite + orjson handler, same HTTPS and wrk load "
                "(bench/apiserver/bare.py)",
                f"{r['baseline_rate']:,.0f}/s, {r['baseline_cpu'] * 1e6:.0f} µs CPU per create; "
                f"the API server at {r['create_rate'] / r['baseline_rate']:.0%} of its rate",
            )
        )
    if r.get("yardstick"):
        out.append(
            Row(
                "API server",
                "machine yardstick: the bare handler over plain HTTP, `hey -c 16`",
                f"{r['yardstick']:,.0f}/s (the machine the 3,000/s target was set on: "
                f"about {REFERENCE_BARE_RATE:,}/s)",
            )
        )
    out += [
        Row(
            "API server",
            f"full list of {r['list_items']:,.0f} Services (JSON)",
            f"median {r['list_median'] * 1000:.0f} ms, max {r['list_max'] * 1000:.0f} ms{of_runs}",
            "< 500 ms",
            r["list_median"] < 0.5,
        ),
        Row(
            "API server",
            f"watch delivery to {r['watchers']} watchers ({r['watch_events']:,.0f} creates at "
            f"{r['watch_rate']:.0f}/s)",
            f"p50 {r['p50'] * 1000:.1f} ms, p99 {r['p99'] * 1000:.1f} ms, "
            f"max {r['max'] * 1000:.1f} ms{of_runs}",
            "p99 < 100 ms",
            r["p99"] < 0.1,
        ),
    ]
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--services", type=int, default=10_000)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--lists", type=int, default=5)
    p.add_argument(
        "--create-seconds", type=int, default=30, help="the longest the timed creates may take"
    )
    p.add_argument("--watchers", type=int, default=100)
    p.add_argument("--watch-events", type=int, default=1_000)
    p.add_argument("--watch-rate", type=float, default=500.0)
    p.add_argument("--store", default="")
    p.add_argument(
        "--watch-procs", type=int, default=4, help="client processes holding the watches"
    )
    p.add_argument(
        "--prepare-workers",
        type=int,
        default=None,
        help="the server's --prepare-workers (default: the server's own default)",
    )
    p.add_argument("--runs", type=int, default=1, help="repeat everything; report the medians")
    p.add_argument("--no-baseline", action="store_true", help="skip the bare-handler yardstick")
    args = p.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    # The repository root before this script's folder, so that ``bench`` is the package.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from bench.table import Machine, command_line, print_rows

    machine = Machine.now()
    r = median_of([asyncio.run(run(args)) for _ in range(args.runs)])
    for x in r["runs"]:
        print(
            f"run: {x['create_rate']:,.0f} creates/s; list median {x['list_median'] * 1000:.0f} ms; "
            f"watch p99 {x['p99'] * 1000:.0f} ms; bare {x['baseline_rate']:,.0f}/s; "
            f"yardstick {x['yardstick']:,.0f}/s; load at its end {x['load']}"
        )
    print_rows(rows(r), command_line("python bench/apiserver/bench.py"), machine)


if __name__ == "__main__":
    main()
