"""A rendered Gateway frontend served by the real ``haproxy`` (Debian's) on loopback: the
matches, filters and weights the unit tables check against a tracer, here as HAProxy itself
executes them.

No root: HAProxy listens on free loopback ports; HTTP servers on 127.0.0.2 and 127.0.0.3 stand
for the endpoints of Services ``one`` and ``two``.
"""

from __future__ import annotations

import http.client
import http.server
import json
import shutil
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from svcnet.dataplane.haproxy import HaproxyApplier, MasterWorker
from svcnet.ingress.certs import self_signed
from svcnet.ingress.gateway import build_gateways
from svcnet.ingress.haproxycfg import Layout, assign_slots, render
from svcnet.ingress.model import RoutingModel
from tests.integration.test_haproxy_master_worker import free_port
from tests.unit.ingress.builders import NOW, endpoint_slice, service
from tests.unit.ingress.gwbuilders import GW_CLASS, gateway, http_rule, listener, ref, route

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy")

ENDPOINTS = {"one": "127.0.0.2", "two": "127.0.0.3"}


class _Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = json.dumps({
            "server": self.server.server_address[0],  # type: ignore[index]
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
        }).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def backend_port() -> Iterator[int]:
    port = free_port()
    servers = [http.server.ThreadingHTTPServer((ip, port), _Echo) for ip in ENDPOINTS.values()]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        yield port
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


ROUTE = route(
    "r",
    http_rule(ref("one"), matches=[{"path": {"type": "Exact", "value": "/exact"}}]),
    http_rule(ref("two"), matches=[{"path": {"type": "RegularExpression", "value": "/n/[0-9]+"}}]),
    http_rule(ref("two"), matches=[{"path": {"value": "/h"},
                                    "headers": [{"name": "X-Env", "value": "canary"}]}]),
    http_rule(ref("two"), matches=[{"path": {"value": "/h"},
                                    "queryParams": [{"name": "v", "value": "2"}]}]),
    http_rule(ref("one"), matches=[{"path": {"value": "/hdr"}}], filters=[
        {"type": "RequestHeaderModifier", "requestHeaderModifier": {
            "set": [{"name": "X-Set", "value": "100%"}], "remove": ["X-Drop"]}},
        {"type": "ResponseHeaderModifier", "responseHeaderModifier": {
            "add": [{"name": "X-Served-By", "value": "svcnet"}]}}]),
    http_rule(matches=[{"path": {"value": "/old"}}], filters=[
        {"type": "RequestRedirect", "requestRedirect": {
            "hostname": "new.example.com", "statusCode": 301,
            "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/new"}}}]),
    http_rule(ref("one"), matches=[{"path": {"value": "/strip"}}], filters=[
        {"type": "URLRewrite", "urlRewrite": {"hostname": "inside",
         "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}]),
    http_rule(ref("one", weight=90), ref("two", weight=10),
              matches=[{"path": {"value": "/split"}}]),
    http_rule(ref("missing")),
    hostnames=["gw.example.com"],
)  # fmt: skip


@pytest.fixture
async def frontend(tmp_path: Path, backend_port: int) -> AsyncIterator[int]:
    target = free_port()
    gw = build_gateways(
        gateway_classes=[GW_CLASS], gateways=[gateway("gw", listener("http"))], routes=[ROUTE],
        grants=[], namespaces=[], services=[service(s) for s in ENDPOINTS],
        endpoint_slices=[endpoint_slice(s, ip, port=backend_port) for s, ip in ENDPOINTS.items()],
        secrets=[], addresses={}, target_ports={("default", "gw", 80): target},
    )  # fmt: skip
    layout = Layout(
        admin_socket=str(tmp_path / "admin.sock"), default_pem=self_signed("default", NOW),
        http_port=free_port(), https_port=free_port(), health_port=free_port(),
    )  # fmt: skip
    routing = RoutingModel(backends=gw.backends)
    config = render(routing, layout, assign_slots({}, routing), gw.frontends)
    process = MasterWorker(tmp_path / "master.sock", tmp_path / "admin.sock")
    try:
        await HaproxyApplier(process, tmp_path / "config").apply(config)
        yield target
    finally:
        await process.stop()


def ask(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": "gw.example.com", **(headers or {})})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    return resp.status, data, resp


def reaches(port: int, path: str, headers: dict[str, str] | None = None) -> str:
    status, data, _ = ask(port, path, headers)
    if status != 200:
        return str(status)
    return {ip: s for s, ip in ENDPOINTS.items()}[data["server"]]


async def test_matches_filters_and_weights_as_haproxy_runs_them(frontend: int) -> None:
    port = frontend
    assert reaches(port, "/exact") == "one"
    assert reaches(port, "/exact/x") == "500"  # the catch-all rule's backend does not exist
    assert reaches(port, "/n/42") == "two"
    assert reaches(port, "/n/42x") == "500"
    assert reaches(port, "/h", {"X-Env": "canary"}) == "two"
    assert reaches(port, "/h?v=2") == "two"
    assert reaches(port, "/h?v=3") == "500"

    status, data, resp = ask(port, "/hdr", {"X-Drop": "x"})
    assert status == 200 and data["headers"]["x-set"] == "100%" and "x-drop" not in data["headers"]
    assert resp.getheader("X-Served-By") == "svcnet"
    status, _, resp = ask(port, "/old/a/b")
    assert (status, resp.getheader("Location")) == (301, "http://new.example.com/new/a/b")
    status, data, _ = ask(port, "/strip/a?q=1")
    assert status == 200 and data["path"] == "/a?q=1" and data["headers"]["host"] == "inside"

    got = Counter(reaches(port, "/split") for _ in range(300))
    # Binomial(300, 0.1): a standard deviation of 5.2; within 5 of them.
    assert set(got) == {"one", "two"} and 4 <= got["two"] <= 56, got
