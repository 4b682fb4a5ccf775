"""The load generator: URL parsing, the summary, and real requests over loopback.

Fixture addresses: 127.0.0.1 only, on ports the kernel picks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from svcnet.testing.loadgen import Results, Target, closed_loop, one_request, open_loop


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("http://10.96.0.10/hostname", Target("10.96.0.10", 80, "/hostname")),
        ("http://10.96.0.10:8080", Target("10.96.0.10", 8080, "/")),
        ("http://web/echo?msg=hi", Target("web", 80, "/echo?msg=hi")),
    ],
    ids=["default-port", "no-path", "query-kept"],
)
def test_target_parse(url: str, target: Target) -> None:
    assert Target.parse(url) == target


@pytest.mark.parametrize("url", ["https://x/", "ftp://x/", "x:80"], ids=["https", "ftp", "bare"])
def test_target_parse_rejects_what_it_cannot_send(url: str) -> None:
    with pytest.raises(ValueError, match="only http"):
        Target.parse(url)


def test_summary_counts_percentiles_and_failures() -> None:
    r = Results(started=0.0, ended=2.0, sent=5, ok=4)
    r.latencies = [0.001, 0.002, 0.003, 0.004]
    r.fail("refused")
    r.bodies.update({"a": 3, "b": 1})
    s = r.summary()
    assert (s["sent"], s["ok"], s["failed"], s["rps"]) == (5, 4, 1, 2.0)
    assert s["failures"] == {"refused": 1}
    assert s["latency_ms"] == {"p50": 3.0, "p90": 4.0, "p99": 4.0, "max": 4.0}
    assert s["bodies"] == {"a": 3, "b": 1}


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, list[int]]]:
    """A loopback HTTP server answering 200 with a body, or 503 for /bad."""
    served: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        status = b"503 Service Unavailable" if b"GET /bad" in head else b"200 OK"
        writer.write(b"HTTP/1.1 " + status + b"\r\nConnection: close\r\n\r\npod-a\n")
        await writer.drain()
        writer.close()
        served.append(1)

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield port, served
    finally:
        srv.close()
        await srv.wait_closed()


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "reset"])
async def test_request_counts_the_answer_by_body(
    server: tuple[int, list[int]], reset: bool
) -> None:
    port, _ = server
    r = Results()
    await one_request(Target("127.0.0.1", port, "/hostname"), 2.0, r, reset)
    assert (r.sent, r.ok, dict(r.bodies)) == (1, 1, {"pod-a": 1})


async def test_non_200_is_a_failure(server: tuple[int, list[int]]) -> None:
    port, _ = server
    r = Results()
    await one_request(Target("127.0.0.1", port, "/bad"), 2.0, r)
    assert r.ok == 0 and dict(r.failures) == {"status:503": 1}


async def test_refused_is_a_failure() -> None:
    r = Results()
    await one_request(Target("127.0.0.1", 1, "/"), 2.0, r)  # nothing listens on port 1
    assert dict(r.failures) == {"refused": 1}


async def test_open_loop_sends_at_the_rate(server: tuple[int, list[int]]) -> None:
    port, served = server
    r = await open_loop(Target("127.0.0.1", port, "/"), 100, 0.5, 2.0, asyncio.Event())
    assert r.sent == 50 and r.ok == 50 and len(served) == 50


async def test_closed_loop_stops_when_asked(server: tuple[int, list[int]]) -> None:
    port, _ = server
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.2, stop.set)
    r = await closed_loop(Target("127.0.0.1", port, "/"), 2, 30.0, 2.0, stop)
    assert r.ok > 0 and not r.failures and r.ended - r.started < 5
