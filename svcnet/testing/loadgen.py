"""A small HTTP load generator for tests and benchmarks, run inside a pod.

    python -m svcnet.testing.loadgen http://10.96.0.20/hostname --rate 250 --duration 30

agnhost has no load mode, and the rolling-update test needs a constant request rate with
every failure counted, so this is the client: an asyncio loop over raw HTTP/1.1 with one new
TCP connection per request (``Connection: close``). A new connection per request is the strict
choice for Services: each one goes through the proxy's NAT and endpoint choice again, so a
stale or missing endpoint shows up as a failure at once instead of hiding behind a kept-alive
connection to a pod that is still draining.

Two modes:
* ``--rate R`` (open loop): a request is started every 1/R s whatever the previous ones are
  doing, so a stall shows up as latency and timeouts, not as a lower rate (no coordinated
  omission);
* ``--concurrency C`` without ``--rate`` (closed loop): C workers each send the next request
  when the previous one ends; the achieved rate is the throughput.

At the end one JSON line goes to stdout (and to ``--out`` if given): counts, failures by
kind with the time of the first ones, latency percentiles, and how many answers each body
(``/hostname`` names the pod) got.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import struct
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_RECORDED_FAILURES = 20


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str

    @staticmethod
    def parse(url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http://host[:port]/path URLs: {url!r}")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return Target(parts.hostname, parts.port or 80, path)

    def request(self) -> bytes:
        return (
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUser-Agent: svcnet-loadgen\r\n"
            "Connection: close\r\n\r\n"
        ).encode()


@dataclass
class Results:
    started: float = field(default_factory=time.monotonic)
    sent: int = 0
    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    first_failures: list[tuple[float, str]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    bodies: Counter[str] = field(default_factory=Counter)
    ended: float = 0.0

    def fail(self, kind: str) -> None:
        self.failures[kind] += 1
        if len(self.first_failures) < MAX_RECORDED_FAILURES:
            self.first_failures.append((round(time.monotonic() - self.started, 3), kind))

    def summary(self) -> dict[str, object]:
        lat = sorted(self.latencies)
        elapsed = (self.ended or time.monotonic()) - self.started

        def pct(p: float) -> float | None:
            if not lat:
                return None
            return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000, 3)

        return {
            "sent": self.sent,
            "ok": self.ok,
            "failed": sum(self.failures.values()),
            "failures": dict(self.failures),
            "first_failures": self.first_failures,
            "elapsed_s": round(elapsed, 3),
            "rps": round(self.ok / elapsed, 1) if elapsed > 0 else 0.0,
            "latency_ms": {"p50": pct(50), "p90": pct(90), "p99": pct(99), "max": pct(100)},
            "bodies": dict(self.bodies),
        }


# SO_LINGER {on, 0 s}: close() sends a reset instead of a FIN.
LINGER_RESET = struct.pack("ii", 1, 0)


async def one_request(
    target: Target, timeout: float, results: Results, reset: bool = False
) -> None:
    results.sent += 1
    t0 = time.monotonic()
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(target.host, target.port)
            if reset:
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
            writer.write(target.request())
            data = await reader.read()  # Connection: close -> the server ends the body
    except TimeoutError:
        results.fail("timeout")
        return
    except ConnectionRefusedError:
        results.fail("refused")
        return
    except ConnectionResetError:
        results.fail("reset")
        return
    except OSError as e:
        results.fail(f"oserror:{e.errno}")
        return
    finally:
        if writer is not None:
            writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or status_line[1] != b"200":
        results.fail(f"status:{status_line[1].decode() if len(status_line) > 1 else 'none'}")
        return
    results.ok += 1
    results.latencies.append(time.monotonic() - t0)
    results.bodies[body.decode(errors="replace").strip()[:64]] += 1


async def open_loop(
    target: Target, rate: float, duration: float, timeout: float, stop: asyncio.Event
) -> Results:
    results = Results()
    interval = 1.0 / rate
    tasks: set[asyncio.Task[None]] = set()
    start = time.monotonic()
    n = 0
    while not stop.is_set():
        due = start + n * interval
        if due - start >= duration:
            break
        delay = due - time.monotonic()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                break
        task = asyncio.create_task(one_request(target, timeout, results))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
    if tasks:
        await asyncio.gather(*tasks)
    results.ended = time.monotonic()
    return results


async def closed_loop(
    target: Target,
    concurrency: int,
    duration: float,
    timeout: float,
    stop: asyncio.Event,
    reset: bool = False,
) -> Results:
    results = Results()
    end = time.monotonic() + duration

    async def worker() -> None:
        while not stop.is_set() and time.monotonic() < end:
            await one_request(target, timeout, results, reset)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    results.ended = time.monotonic()
    return results


async def run(args: argparse.Namespace) -> dict[str, object]:
    target = Target.parse(args.url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.rate:
        results = await open_loop(target, args.rate, args.duration, args.timeout, stop)
    else:
        results = await closed_loop(
            target, args.concurrency, args.duration, args.timeout, stop, args.reset
        )
    summary = results.summary()
    summary["url"] = args.url
    summary["mode"] = f"rate={args.rate}" if args.rate else f"concurrency={args.concurrency}"
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m svcnet.testing.loadgen")
    p.add_argument("url")
    p.add_argument("--rate", type=float, default=0.0, help="requests/s, open loop")
    p.add_argument("--concurrency", type=int, default=8, help="workers, closed loop")
    p.add_argument("--duration", type=float, default=10.0, help="seconds")
    p.add_argument("--timeout", type=float, default=2.0, help="per request, seconds")
    p.add_argument("--out", help="also write the JSON summary to this file")
    p.add_argument(
        "--reset",
        action="store_true",
        help="closed loop: end each connection with a reset once the answer is read, so that "
        "thousands of connections per second leave no TIME_WAIT behind on the server to "
        "collide with a reused client port (a 1 s SYN retransmit each time)",
    )
    args = p.parse_args(argv)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    summary = asyncio.run(run(args))
    line = json.dumps(summary, sort_keys=True)
    print(line, flush=True)
    if args.out:
        with open(args.out + ".tmp", "w") as f:
            f.write(line + "\n")
        os.replace(args.out + ".tmp", args.out)
    return 0 if summary["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
