"""Probe verdicts from consecutive results (kubelet's prober worker) and probe parsing."""

from __future__ import annotations

import asyncio

import pytest

from svcnet.agent.probes import (
    ProbeError,
    ProbeKind,
    ProbeTarget,
    ProbeTracker,
    Verdict,
    parse_probe,
    resolve_port,
    run_probe,
    unhealthy_message,
)


def test_parse_probe_applies_kubelet_defaults() -> None:
    spec = parse_probe(ProbeKind.LIVENESS, {"httpGet": {"port": 8080}})
    assert (
        spec.handler,
        spec.period,
        spec.timeout,
        spec.success_threshold,
        spec.failure_threshold,
        spec.initial_delay,
        spec.path,
    ) == ("httpGet", 10.0, 1.0, 1, 3, 0.0, "/")


@pytest.mark.parametrize(
    ("kind", "thresholds", "results", "verdicts"),
    [
        # readiness starts "not ready"; one success makes it ready
        (ProbeKind.READINESS, (1, 3), [True], [Verdict.SUCCESS]),
        # three failures are needed to turn it back
        (
            ProbeKind.READINESS,
            (1, 3),
            [True, False, False, False],
            [Verdict.SUCCESS, Verdict.SUCCESS, Verdict.SUCCESS, Verdict.FAILURE],
        ),
        # successThreshold 2: one success is not enough
        (ProbeKind.READINESS, (2, 1), [True, True], [Verdict.FAILURE, Verdict.SUCCESS]),
        # a success in between resets the failure count
        (
            ProbeKind.LIVENESS,
            (1, 2),
            [False, True, False, False],
            [Verdict.NONE, Verdict.SUCCESS, Verdict.SUCCESS, Verdict.FAILURE],
        ),
        (
            ProbeKind.STARTUP,
            (1, 3),
            [False, False, True],
            [Verdict.NONE, Verdict.NONE, Verdict.SUCCESS],
        ),
    ],
)
def test_tracker_flips_only_after_thresholds(
    kind: ProbeKind, thresholds: tuple[int, int], results: list[bool], verdicts: list[Verdict]
) -> None:
    spec = parse_probe(
        kind,
        {
            "exec": {"command": ["true"]},
            "successThreshold": thresholds[0],
            "failureThreshold": thresholds[1],
        },
    )
    tracker = ProbeTracker(spec)
    seen = []
    for ok in results:
        tracker.record(ok)
        seen.append(tracker.verdict)
    assert seen == verdicts


@pytest.mark.parametrize(
    ("port", "want"),
    [(8080, 8080), ("9090", 9090), ("http", 80)],
)
def test_named_ports_resolve_from_container_ports(port: int | str, want: int) -> None:
    assert resolve_port(port, [{"name": "http", "containerPort": 80}]) == want


def test_unknown_named_port_is_an_error() -> None:
    with pytest.raises(ProbeError):
        resolve_port("metrics", [])


def test_unhealthy_message_names_the_probe() -> None:
    assert unhealthy_message(ProbeKind.READINESS, "HTTP probe failed with statuscode: 500") == (
        "Readiness probe failed: HTTP probe failed with statuscode: 500"
    )


async def _serve(status: int) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize(
    ("status", "ok", "message"),
    [(200, True, ""), (302, True, ""), (500, False, "HTTP probe failed with statuscode: 500")],
)
async def test_http_probe_succeeds_on_2xx_and_3xx(status: int, ok: bool, message: str) -> None:
    server, port = await _serve(status)
    async with server:
        spec = parse_probe(ProbeKind.READINESS, {"httpGet": {"path": "/healthz", "port": port}})
        result = await run_probe(spec, ProbeTarget("127.0.0.1", None))
    assert (result.ok, result.message) == (ok, message)


async def test_tcp_probe_to_a_closed_port_says_connection_refused() -> None:
    server, port = await _serve(200)
    server.close()
    await server.wait_closed()
    spec = parse_probe(ProbeKind.LIVENESS, {"tcpSocket": {"port": port}})
    result = await run_probe(spec, ProbeTarget("127.0.0.1", None))
    assert not result.ok
    assert result.message == f"dial tcp 127.0.0.1:{port}: connect: connection refused"
