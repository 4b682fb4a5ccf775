"""wrk, the C HTTP load generator, as a benchmark client: its command line and its summary.

The Python load generator (:mod:`svcnet.testing.loadgen`) tops out at ~3,000 new connections/s
on this machine and spends most of that CPU itself, so a comparison of two network paths with
it measures mostly the client. wrk (Debian's ``wrk``, epoll, C) drives 10x that with a few
percent of a core and is what the data-plane benchmark uses.

Two modes:
* ``new``: ``Connection: close`` on every request, so each request opens a new TCP connection
  (and pays the Service's DNAT and conntrack set-up);
* ``keepalive``: wrk's default, one connection per worker for the whole run (steady state:
  only the per-packet cost of the path).

wrk measures a request from the moment it writes it, so in ``new`` mode the handshake is not
in the latency percentiles; it is in the throughput (a worker connects, then sends). The
summary is written by a ``done()`` hook in Lua as one JSON line after wrk's own report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

SUMMARY_SCRIPT = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


class Mode(Enum):
    NEW = "new"
    KEEPALIVE = "keepalive"


def wrk_argv(
    url: str,
    mode: Mode,
    *,
    seconds: float,
    connections: int,
    threads: int,
    script: str,
    wrk: str = "wrk",
) -> list[str]:
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            "--timeout", "2s", "-s", script]  # fmt: skip
    if mode is Mode.NEW:
        argv += ["-H", "Connection: close"]
    return [*argv, url]


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int  # connect, read, write and timeout errors plus non-2xx/3xx answers
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "rps": round(self.rps, 1),
            "requests": self.requests,
            "errors": self.errors,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "mean_ms": self.mean_ms,
        }


class WrkOutputError(ValueError):
    pass


def parse_summary(output: str) -> WrkResult:
    """The JSON line that :data:`SUMMARY_SCRIPT` writes, from wrk's whole stdout."""
    for line in reversed(output.strip().splitlines()):
        if line.startswith("{"):
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise WrkOutputError(f"bad wrk summary line {line!r}") from e
            break
    else:
        raise WrkOutputError(f"no wrk summary in output: {output[-500:]!r}")
    errors = sum(int(d[k]) for k in ("connect", "read", "write", "status", "timeout"))
    return WrkResult(
        requests=int(d["requests"]),
        seconds=int(d["duration_us"]) / 1e6,
        errors=errors,
        p50_ms=int(d["p50_us"]) / 1000,
        p90_ms=int(d["p90_us"]) / 1000,
        p99_ms=int(d["p99_us"]) / 1000,
        max_ms=int(d["max_us"]) / 1000,
        mean_ms=round(float(d["mean_us"]) / 1000, 3),
    )
