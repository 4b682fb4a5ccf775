"""Container probes (kubelet ``pkg/kubelet/prober``): readiness, liveness and startup.

The first half is pure: :class:`ProbeSpec` (the API fields with kubelet's defaults) and
:class:`ProbeTracker`, which turns single results into the probe's verdict with the
thresholds, as kubelet's worker does (a verdict flips only after ``successThreshold``
consecutive successes or ``failureThreshold`` consecutive failures; before the first verdict
readiness is "not ready", liveness and startup "no verdict").

The second half runs one probe attempt for real, from the node's network namespace (where
the agent runs) against the pod IP, as kubelet does from the host:
- httpGet: an HTTP/1.1 GET; 200 ≤ status < 400 succeeds (redirects are not followed);
- tcpSocket: a TCP connect;
- exec: the command inside the container's namespaces, exit 0 succeeds.
Each attempt is bounded by ``timeoutSeconds``. Failure messages are kubelet's, because they
end up in the Unhealthy events that ``kubectl describe`` shows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from svcnet.dataplane.process import command_for_exec


class ProbeKind(Enum):
    READINESS = "Readiness"
    LIVENESS = "Liveness"
    STARTUP = "Startup"


class Verdict(Enum):
    NONE = "none"  # no decision yet
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True)
class ProbeSpec:
    kind: ProbeKind
    handler: str  # "httpGet" | "tcpSocket" | "exec" | "grpc"
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3
    # httpGet / tcpSocket
    host: str = ""
    port: int | str = 0
    path: str = "/"
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()
    # exec
    command: tuple[str, ...] = ()


def parse_probe(kind: ProbeKind, probe: Mapping[str, Any]) -> ProbeSpec:
    """The API object with kubelet's defaults (liveness/startup successThreshold is 1)."""
    handler = next((h for h in ("httpGet", "tcpSocket", "exec", "grpc") if h in probe), "")
    body = probe.get(handler) or {}
    return ProbeSpec(
        kind=kind,
        handler=handler,
        initial_delay=float(probe.get("initialDelaySeconds") or 0),
        period=float(probe.get("periodSeconds") or 10),
        timeout=float(probe.get("timeoutSeconds") or 1),
        success_threshold=int(probe.get("successThreshold") or 1),
        failure_threshold=int(probe.get("failureThreshold") or 3),
        host=str(body.get("host") or ""),
        port=body.get("port", 0),
        path=str(body.get("path") or "/"),
        scheme=str(body.get("scheme") or "HTTP").upper(),
        headers=tuple(
            (str(h.get("name")), str(h.get("value"))) for h in body.get("httpHeaders") or []
        ),
        command=tuple(str(a) for a in body.get("command") or ()),
    )


def resolve_port(port: int | str, container_ports: Sequence[Mapping[str, Any]]) -> int:
    """A named port is looked up in the container's ports (kubelet's findPortByName)."""
    if isinstance(port, int):
        return port
    if port.isdigit():
        return int(port)
    for p in container_ports:
        if p.get("name") == port:
            return int(p.get("containerPort", 0))
    raise ProbeError(f"couldn't find port: {port} in {[dict(p) for p in container_ports]}")


class ProbeError(Exception):
    pass


@dataclass
class ProbeTracker:
    """Consecutive counts → verdict, per kubelet's worker.doProbe."""

    spec: ProbeSpec
    verdict: Verdict = Verdict.NONE
    successes: int = 0
    failures: int = 0

    def __post_init__(self) -> None:
        if self.spec.kind is ProbeKind.READINESS:
            self.verdict = Verdict.FAILURE

    def record(self, ok: bool) -> bool:
        """Count one result; True when the verdict changed."""
        before = self.verdict
        if ok:
            self.failures = 0
            self.successes += 1
            if self.successes >= self.spec.success_threshold:
                self.verdict = Verdict.SUCCESS
        else:
            self.successes = 0
            self.failures += 1
            if self.failures >= self.spec.failure_threshold:
                self.verdict = Verdict.FAILURE
        return self.verdict is not before


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str = ""


@dataclass(frozen=True)
class ProbeTarget:
    pod_ip: str
    container_pid: int | None
    container_ports: tuple[Mapping[str, Any], ...] = field(default=())


async def run_probe(spec: ProbeSpec, target: ProbeTarget) -> ProbeResult:
    """One attempt, bounded by the probe's timeout."""
    try:
        if spec.handler == "httpGet":
            return await _http(spec, target)
        if spec.handler == "tcpSocket":
            return await _tcp(spec, target)
        if spec.handler == "exec":
            return await _exec(spec, target)
    except ProbeError as e:
        return ProbeResult(False, str(e))
    return ProbeResult(False, f"probe handler {spec.handler or '(none)'} is not supported")


async def _http(spec: ProbeSpec, target: ProbeTarget) -> ProbeResult:
    host = spec.host or target.pod_ip
    port = resolve_port(spec.port, target.container_ports)
    scheme = spec.scheme.lower()
    url = f"{scheme}://{host}:{port}{spec.path}"
    headers = dict(spec.headers)
    lines = [
        f"GET {spec.path} HTTP/1.1",
        f"Host: {headers.pop('Host', f'{host}:{port}')}",
        "User-Agent: kube-probe/1.32",
        "Accept: */*",
        "Connection: close",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(spec.timeout):
            ssl_ctx: Any = None
            if scheme == "https":
                import ssl

                ssl_ctx = ssl.create_default_context()
                ssl_ctx.check_hostname = False
                ssl_ctx.verify_mode = ssl.CERT_NONE  # kubelet skips verification for probes
            reader, writer = await asyncio.open_connection(host, port, ssl=ssl_ctx)
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
    except TimeoutError:
        return ProbeResult(
            False,
            f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting '
            "headers)",
        )
    except ConnectionRefusedError:
        return ProbeResult(
            False, f'Get "{url}": dial tcp {host}:{port}: connect: connection refused'
        )
    except OSError as e:
        return ProbeResult(False, f'Get "{url}": dial tcp {host}:{port}: {e.strerror or e}')
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    parts = status_line.decode(errors="replace").split()
    if len(parts) < 2 or not parts[1].isdigit():
        return ProbeResult(False, f'Get "{url}": malformed HTTP response {status_line[:60]!r}')
    code = int(parts[1])
    if 200 <= code < 400:
        return ProbeResult(True)
    return ProbeResult(False, f"HTTP probe failed with statuscode: {code}")


async def _tcp(spec: ProbeSpec, target: ProbeTarget) -> ProbeResult:
    host = spec.host or target.pod_ip
    port = resolve_port(spec.port, target.container_ports)
    try:
        async with asyncio.timeout(spec.timeout):
            _, writer = await asyncio.open_connection(host, port)
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    except TimeoutError:
        return ProbeResult(False, f"dial tcp {host}:{port}: i/o timeout")
    except ConnectionRefusedError:
        return ProbeResult(False, f"dial tcp {host}:{port}: connect: connection refused")
    except OSError as e:
        return ProbeResult(False, f"dial tcp {host}:{port}: {e.strerror or e}")
    return ProbeResult(True)


async def _exec(spec: ProbeSpec, target: ProbeTarget) -> ProbeResult:
    if target.container_pid is None:
        return ProbeResult(False, "container is not running")
    proc = await asyncio.create_subprocess_exec(
        *command_for_exec(target.container_pid, spec.command),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), spec.timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return ProbeResult(
            False, f"command {list(spec.command)!r} timed out after {go_seconds(spec.timeout)}"
        )
    if proc.returncode == 0:
        return ProbeResult(True)
    text = out.decode(errors="replace").strip()
    return ProbeResult(
        False, text or f"command {list(spec.command)!r} exited with {proc.returncode}"
    )


def go_seconds(seconds: float) -> str:
    return f"{seconds:g}s"


def unhealthy_message(kind: ProbeKind, message: str) -> str:
    """The Unhealthy event's message: "Readiness probe failed: <output>"."""
    return f"{kind.value} probe failed: {message}"
