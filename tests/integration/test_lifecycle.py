"""Server lifecycle and the node-agent proxy: shutdown ends watches; pods/log reaches the
agent registered on the pod's node."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from apiserver_harness import Http, Kubectl, start_in_thread, stop_in_thread

from svcnet.apiserver.server import ApiServer, ApiServerConfig


async def test_a_start_that_fails_leaves_no_prepare_worker_or_store_behind(tmp_path: Path) -> None:
    before = set(_workers())  # those of other servers in this test process (fixtures)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ApiServer(ApiServerConfig(data_dir=tmp_path / "s", port=port, prepare_workers=1))
        with pytest.raises(OSError):
            await server.start()
    assert set(_workers()) <= before
    # The store was closed: a second server opens the same data dir (SQLite is exclusive).
    again = ApiServer(ApiServerConfig(data_dir=tmp_path / "s", port=0))
    await again.start()
    await again.stop()


def _workers() -> list[int]:
    """The prepare workers that are children of this process."""
    children: list[int] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        # A thread (of another server's executor) may end while this reads.
        with contextlib.suppress(FileNotFoundError):
            children += [int(pid) for pid in (task / "children").read_text().split()]
    return [pid for pid in children if b"preparepool" in _cmdline(pid)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def test_shutdown_ends_open_watches(tmp_path: Path) -> None:
    running, thread = start_in_thread(ApiServerConfig(data_dir=tmp_path / "s", port=0))
    url = urllib.parse.urlsplit(running.url)
    ctx = ssl.create_default_context(cafile=running.ca_file)
    opened = threading.Event()
    result: list[tuple[int, bytes]] = []

    def watch() -> None:
        conn = http.client.HTTPSConnection(url.hostname or "", url.port, context=ctx, timeout=30)
        conn.request(
            "GET",
            "/api/v1/namespaces?watch=1&resourceVersion=1",
            headers={"Authorization": f"Bearer {running.token}"},
        )
        resp = conn.getresponse()
        first = resp.readline()  # the first event: the watch is open and served
        opened.set()
        result.append((resp.status, first + resp.read()))

    t = threading.Thread(target=watch)
    t.start()
    assert opened.wait(30), "the watch never delivered its first event"
    stop_in_thread(running, thread)
    t.join(10)
    assert not t.is_alive()
    code, body = result[0]
    assert code == 200 and b'"ADDED"' in body


class _Agent(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (
            f"log of {self.path} auth={self.headers.get('Authorization', '').split()[0]}\n".encode()
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_agent() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Agent)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def register_agent(http: Http, node: str, port: int) -> None:
    """A Node whose agent listens on 127.0.0.1:``port``."""
    http.request(
        "POST",
        "/api/v1/nodes",
        json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}).encode(),
    )
    status = {
        "status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        }
    }
    code, _, out = http.request(
        "PATCH",
        f"/api/v1/nodes/{node}/status",
        json.dumps(status).encode(),
        "application/merge-patch+json",
    )
    assert code == 200, out


def test_pod_log_is_proxied_to_the_node_agent(
    kubectl: Kubectl, http: Http, fake_agent: int, namespace: str
) -> None:
    node = f"agent-{namespace}"
    register_agent(http, node, fake_agent)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]},
    }
    kubectl("create", "-f", "-", input=json.dumps(pod))
    assert kubectl("logs", "p") == f"log of /containerLogs/{namespace}/p/c auth=Bearer\n"
    http.request("DELETE", f"/api/v1/nodes/{node}")


def test_node_proxy_reaches_the_agents_path_with_its_query(
    kubectl: Kubectl, http: Http, fake_agent: int, namespace: str
) -> None:
    node = f"proxied-{namespace}"
    register_agent(http, node, fake_agent)
    raw = kubectl("get", "--raw", f"/api/v1/nodes/{node}/proxy/flows?since=3&follow=0")
    path, _, auth = raw.removeprefix("log of ").partition(" ")
    url = urllib.parse.urlsplit(path)
    assert (url.path, urllib.parse.parse_qs(url.query), auth) == (
        "/flows",
        {"since": ["3"], "follow": ["0"]},
        "auth=Bearer\n",
    )
    missing = kubectl.run("get", "--raw", "/api/v1/nodes/no-such-node/proxy/flows", check=False)
    assert 'nodes "no-such-node" not found' in missing.stderr
    http.request("DELETE", f"/api/v1/nodes/{node}")


def test_pod_log_without_agent_is_a_clear_error(kubectl: Kubectl, namespace: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "q"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }
    kubectl("create", "-f", "-", input=json.dumps(pod))
    proc = kubectl.run("logs", "q", check=False)
    assert proc.stderr == (
        'Error from server (BadRequest): container "c" in pod "q" is waiting '
        "to start: the pod is not scheduled to a node yet\n"
    )
