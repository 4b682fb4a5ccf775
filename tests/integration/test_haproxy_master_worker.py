"""The HAProxy applier with the real ``haproxy`` (Debian's), on loopback ports: the Runtime API
changes endpoints with no reload, a route change reloads seamlessly (one reload, a new worker),
and a configuration ``haproxy -c`` refuses is never loaded.

No root: HAProxy listens on free loopback ports; two small HTTP servers on 127.0.0.2 and
127.0.0.3 stand for endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import shutil
import socket
import threading
import urllib.request
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from svcnet.dataplane.haproxy import ConfigRejected, HaproxyApplier, MasterWorker
from svcnet.dataplane.haproxy_config import HaproxyConfig

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Name(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.server.server_address[0].encode()  # type: ignore[union-attr]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def name_servers(ips: Sequence[str], port: int) -> Iterator[None]:
    """An HTTP server on each of ``ips`` answering with its own address."""
    servers = [http.server.ThreadingHTTPServer((ip, port), _Name) for ip in ips]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


@pytest.fixture
def endpoints() -> Iterator[tuple[int, list[str]]]:
    port = free_port()
    with name_servers(("127.0.0.2", "127.0.0.3"), port):
        yield port, ["127.0.0.2", "127.0.0.3"]


def configuration(
    listen: int, admin: Path, servers: list[str], port: int, path: str
) -> HaproxyConfig:
    from svcnet.dataplane.haproxy_config import MAIN_FILE, ServerSlot

    slots = [ServerSlot("web", f"s{i + 1}", *(servers[i], port, 1) if i < len(servers) else ())
             for i in range(4)]  # fmt: skip
    head = (
        f"global\n    master-worker\n    stats socket {admin} mode 600 level admin"
        " expose-fd listeners\n"
        "defaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n"
        "    timeout server 5s\n"
        f"frontend f\n    bind 127.0.0.1:{listen}\n"
        f"    use_backend web if {{ path_reg {path} }}\nbackend web\n    balance roundrobin\n"
    )
    full = "".join(
        f"    server {s.server} {s.addr}:{s.port}\n" if s.enabled
        else f"    server {s.server} 127.0.0.1:1 disabled\n"
        for s in slots
    )  # fmt: skip
    shape = "".join(f"    server {s.server}\n" for s in slots)
    return HaproxyConfig(
        files={MAIN_FILE: (head + full).encode()},
        structure=(head + shape).encode(),
        servers=tuple(slots),
    )


@pytest.fixture
async def haproxy(tmp_path: Path) -> AsyncIterator[tuple[MasterWorker, HaproxyApplier]]:
    process = MasterWorker(tmp_path / "master.sock", tmp_path / "admin.sock")
    try:
        yield process, HaproxyApplier(process, tmp_path / "config")
    finally:
        await process.stop()


def get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/x", timeout=5) as r:
        return str(r.read().decode())


async def test_endpoints_by_runtime_api_routes_by_reload_refusals_never_loaded(
    haproxy: tuple[MasterWorker, HaproxyApplier], endpoints: tuple[int, list[str]], tmp_path: Path
) -> None:
    process, applier = haproxy
    port, ips = endpoints
    listen = free_port()
    admin = tmp_path / "admin.sock"
    await applier.apply(configuration(listen, admin, ips[:1], port, "^/"))
    first = await process.proc_info()
    assert {await asyncio.to_thread(get, listen) for _ in range(4)} == {"127.0.0.2"}

    result = await applier.apply(configuration(listen, admin, ips, port, "^/"))
    assert not result.reloaded and result.commands > 0
    assert {await asyncio.to_thread(get, listen) for _ in range(6)} == set(ips)
    assert await process.proc_info() == first  # no reload, the same worker

    with pytest.raises(ConfigRejected):
        await applier.apply(configuration(listen, admin, ips, port, "^/(unclosed"))
    assert await process.proc_info() == first
    assert await asyncio.to_thread(get, listen) in ips

    result = await applier.apply(configuration(listen, admin, ips, port, "^/x"))
    after = await process.proc_info()
    assert result.reloaded and after.reloads == first.reloads + 1
    assert after.master_pid == first.master_pid and after.worker_pids != first.worker_pids
    assert {await asyncio.to_thread(get, listen) for _ in range(6)} == set(ips)
