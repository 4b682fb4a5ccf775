"""The API server's HTTP/1.1 layer on the wire (svcnet/apiserver/http1.py): keep-alive,
pipelining, Connection: close, HTTP/1.0, Expect: 100-continue, chunked bodies, HEAD, the
body limit, malformed requests, watch streams ended by the client, upgrade hand-over."""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import urlsplit

import pytest
from apiserver_harness import RunningServer


class Wire:
    """One raw TLS connection to the API server."""

    def __init__(self, server: RunningServer) -> None:
        url = urlsplit(server.url)
        ctx = ssl.create_default_context(cafile=server.ca_file)
        raw = socket.create_connection((url.hostname, url.port), timeout=10)
        self.sock = ctx.wrap_socket(raw, server_hostname=url.hostname)
        self.file: BinaryIO = self.sock.makefile("rb")
        self.token = server.token

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, method: str, path: str, body: bytes = b"", extra: str = "") -> bytes:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: svcnet\r\nAuthorization: Bearer {self.token}\r\n"
            f"Content-Type: application/json\r\n{extra}"
        )
        if body and "Transfer-Encoding" not in extra:
            head += f"Content-Length: {len(body)}\r\n"
        return head.encode() + b"\r\n" + body

    def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        status = self.file.readline()
        assert status.startswith(b"HTTP/1.1 "), status
        headers: dict[str, str] = {}
        while (line := self.file.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        code = int(status.split()[1])
        if head_only or code == 100:
            return code, headers, b""
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int(self.file.readline().strip(), 16):
                body += self.file.read(size)
                self.file.readline()
            self.file.readline()
            return code, headers, body
        return code, headers, self.file.read(int(headers.get("content-length", "0")))

    def closed_by_server(self) -> bool:
        try:
            return self.file.read(1) == b""
        except (ConnectionResetError, ssl.SSLError):
            return True

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def wire(apiserver: RunningServer) -> Iterator[Wire]:
    w = Wire(apiserver)
    yield w
    w.close()


def _configmap(ns: str, name: str) -> bytes:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}}
    return json.dumps(obj).encode()


def test_keep_alive_answers_many_requests_on_one_connection(wire: Wire, namespace: str) -> None:
    for i in range(3):
        wire.send(
            wire.request(
                "POST", f"/api/v1/namespaces/{namespace}/configmaps", _configmap(namespace, f"k{i}")
            )
        )
        code, headers, body = wire.response()
        assert code == 201, body
        assert json.loads(body)["metadata"]["name"] == f"k{i}"
        assert headers["content-type"] == "application/json"
        assert headers["date"].endswith("GMT")


def test_pipelined_requests_are_answered_in_order(wire: Wire) -> None:
    paths = ["/api/v1/namespaces/default", "/version", "/api/v1/namespaces/kube-system"]
    wire.send(b"".join(wire.request("GET", p) for p in paths))
    first, second, third = (wire.response() for _ in paths)
    assert json.loads(first[2])["metadata"]["name"] == "default"
    assert "gitVersion" in json.loads(second[2])
    assert json.loads(third[2])["metadata"]["name"] == "kube-system"


def test_connection_close_is_honoured(wire: Wire) -> None:
    wire.send(wire.request("GET", "/version", extra="Connection: close\r\n"))
    code, headers, _ = wire.response()
    assert code == 200 and headers["connection"] == "close"
    assert wire.closed_by_server()


def test_http_1_0_closes_after_the_answer(wire: Wire) -> None:
    wire.send(
        b"GET /version HTTP/1.0\r\nAuthorization: Bearer " + wire.token.encode() + b"\r\n\r\n"
    )
    code, _, body = wire.response()
    assert code == 200 and b"gitVersion" in body
    assert wire.closed_by_server()


def test_expect_continue_then_created(wire: Wire, namespace: str) -> None:
    body = _configmap(namespace, "expects")
    head = wire.request(
        "POST", f"/api/v1/namespaces/{namespace}/configmaps", body, "Expect: 100-continue\r\n"
    )
    wire.send(head[: -len(body)])
    assert wire.response()[0] == 100
    wire.send(body)
    assert wire.response()[0] == 201


def test_chunked_request_body(wire: Wire, namespace: str) -> None:
    body = _configmap(namespace, "chunked")
    chunks = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in (body[:10], body[10:])) + b"0\r\n\r\n"
    wire.send(
        wire.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/configmaps",
            chunks,
            "Transfer-Encoding: chunked\r\n",
        )
    )
    code, _, out = wire.response()
    assert code == 201, out


def test_head_has_headers_only(wire: Wire) -> None:
    wire.send(wire.request("HEAD", "/version"))
    code, headers, _ = wire.response(head_only=True)
    assert code == 200 and int(headers["content-length"]) > 0
    wire.send(wire.request("GET", "/version"))  # nothing of a body was left on the wire
    assert b"gitVersion" in wire.response()[2]


def test_declared_body_over_the_limit_is_refused_before_it_is_sent(
    wire: Wire, namespace: str
) -> None:
    head = (
        f"POST /api/v1/namespaces/{namespace}/configmaps HTTP/1.1\r\nHost: svcnet\r\n"
        f"Authorization: Bearer {wire.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {4 << 20}\r\nExpect: 100-continue\r\n\r\n"
    )
    wire.send(head.encode())
    code, headers, body = wire.response()
    status = json.loads(body)
    assert (code, status["reason"]) == (413, "RequestEntityTooLarge")
    assert headers["connection"] == "close"


def test_chunked_body_over_the_limit_is_413(wire: Wire, namespace: str) -> None:
    piece = b"x" * (1 << 20)
    wire.send(
        wire.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/configmaps",
            b"",
            "Transfer-Encoding: chunked\r\n",
        )
    )
    for _ in range(4):
        wire.send(b"%x\r\n%b\r\n" % (len(piece), piece))
    wire.send(b"0\r\n\r\n")
    code, _, body = wire.response()
    assert (code, json.loads(body)["reason"]) == (413, "RequestEntityTooLarge")
    assert wire.closed_by_server()


def test_body_over_the_limit_sent_in_one_piece_is_413_and_closed(
    wire: Wire, namespace: str
) -> None:
    # The whole body may be parsed before the answer is written: the close must still come.
    piece = b"x" * (1 << 20)
    body = b"".join(b"%x\r\n%b\r\n" % (len(piece), piece) for _ in range(4)) + b"0\r\n\r\n"
    wire.send(
        wire.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/configmaps",
            body,
            "Transfer-Encoding: chunked\r\n",
        )
    )
    code, _, out = wire.response()
    assert (code, json.loads(out)["reason"]) == (413, "RequestEntityTooLarge")
    assert wire.closed_by_server()


def test_malformed_request_is_400_and_closed(wire: Wire) -> None:
    wire.send(b"GET /version HTTP/1.1\r\nBad Header Line\r\n\r\n")
    code, _, body = wire.response()
    assert code == 400 and json.loads(body)["kind"] == "Status"
    assert wire.closed_by_server()


def test_headers_over_1_mib_are_431_and_closed(wire: Wire) -> None:
    filler = "".join(f"X-Filler-{i}: {'y' * 1000}\r\n" for i in range(1100))
    wire.send(wire.request("GET", "/version", extra=filler))
    code, _, body = wire.response()
    assert code == 431 and json.loads(body)["kind"] == "Status"
    assert wire.closed_by_server()


def test_watch_ended_by_the_client_is_released(apiserver: RunningServer, namespace: str) -> None:
    watches = apiserver.server._watches
    before = len(watches)
    w = Wire(apiserver)
    try:
        w.send(w.request("GET", f"/api/v1/namespaces/{namespace}/configmaps?watch=1"))
        code, headers, _ = w.response(head_only=True)
        assert code == 200 and headers["transfer-encoding"] == "chunked"
        deadline = time.monotonic() + 5
        while len(watches) == before and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(watches) == before + 1
    finally:
        w.close()
    deadline = time.monotonic() + 5
    while len(watches) > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(watches) == before


def test_a_stream_that_fails_after_its_head_ends_the_connection(
    wire: Wire, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from svcnet.apiserver import watch

    def broken(*_: object, **__: object) -> bytes:
        raise RuntimeError("rendering failed")

    wire.send(
        wire.request(
            "POST", f"/api/v1/namespaces/{namespace}/configmaps", _configmap(namespace, "one")
        )
    )
    assert wire.response()[0] == 201
    monkeypatch.setattr(watch._Renderer, "line", broken)
    # The initial ADDED event fails to render after the 200 head went out.
    wire.send(wire.request("GET", f"/api/v1/namespaces/{namespace}/configmaps?watch=1"))
    code, headers, _ = wire.response(head_only=True)
    assert code == 200 and headers["transfer-encoding"] == "chunked"
    assert wire.closed_by_server()


def test_upgrade_is_handed_to_aiohttp_and_answered_with_a_status(wire: Wire) -> None:
    wire.send(
        wire.request(
            "GET",
            "/api/v1/namespaces/default/pods/nowhere/exec?command=true",
            extra=(
                "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n"
            ),
        )
    )
    code, _, body = wire.response()
    status = json.loads(body)
    assert (code, status["reason"]) == (404, "NotFound")
    assert 'pods "nowhere" not found' in status["message"]
    # aiohttp serves upgrades only: a failed upgrade ends the connection.
    assert wire.closed_by_server()


@pytest.mark.parametrize(
    ("path", "headers", "want"),
    [
        (
            "/api/v1/namespaces/default/pods/nowhere/portforward",
            "X-Stream-Protocol-Version: portforward.k8s.io\r\n",
            (404, 'pods "nowhere" not found'),
        ),
        (
            "/api/v1/namespaces/default/pods/nowhere/exec?command=true&stdout=true",
            "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n",
            (404, 'pods "nowhere" not found'),
        ),
        (
            "/api/v1/namespaces/default/configmaps/x",
            "",
            (400, "the server does not upgrade connections to"),
        ),
    ],
)
def test_a_spdy_upgrade_is_answered_with_a_status_and_the_connection_ends(
    wire: Wire, path: str, headers: str, want: tuple[int, str]
) -> None:
    """An upgrade other than WebSocket (SPDY/3.1: kubectl's fallback, older clients) is the
    API server's own: its refusal is a Status, then the connection closes."""
    wire.send(
        wire.request("POST", path, extra="Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n" + headers)
    )
    code, _, body = wire.response()
    status = json.loads(body)
    assert (code, status["status"]) == (want[0], "Failure")
    assert want[1] in status["message"]
    assert wire.closed_by_server()
