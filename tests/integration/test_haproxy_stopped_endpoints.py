"""The ingress configuration (``haproxycfg.render``) in the real ``haproxy``: endpoints that
stopped before their removal reached HAProxy cost no failed request.

Kubernetes signals a pod and removes its endpoint at the same time, so for a moment HAProxy
still sends to pods that no longer listen — after a scale-down several at once, neighbours in
round-robin order. Here 10 endpoints are in the backend and 7 of them (consecutive slots)
have no server: every request must still be answered by one of the 3 that do.

No root: HAProxy's frontends on free ports; the endpoints are loopback addresses 127.0.0.x.
"""

from __future__ import annotations

import asyncio
import shutil
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from svcnet.dataplane.haproxy import HaproxyApplier, MasterWorker
from svcnet.ingress.haproxycfg import Layout, assign_slots, render
from tests.integration.test_haproxy_master_worker import free_port, name_servers
from tests.unit.ingress.builders import endpoint_slice, ingress, path, rule
from tests.unit.ingress.test_model import LAYOUT, model_of

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy")

ALIVE = ("127.0.0.18", "127.0.0.19", "127.0.0.20")
STOPPED = tuple(f"127.0.0.{i}" for i in range(11, 18))  # their slots come first: neighbours


@pytest.fixture
def endpoint_port() -> Iterator[int]:
    port = free_port()
    with name_servers(ALIVE, port):
        yield port


@pytest.fixture
async def served(tmp_path: Path, endpoint_port: int) -> AsyncIterator[int]:
    """HAProxy serving ``s.example.com`` → Service ``web`` with all 10 endpoints; its port."""
    model = model_of(
        ingress("s", rule("s.example.com", path("/", "web"))),
        services=("web",),
        slices=(endpoint_slice("web", *STOPPED, *ALIVE, port=endpoint_port),),
    )
    http_port = free_port()
    layout = Layout(
        admin_socket=str(tmp_path / "admin.sock"),
        default_pem=LAYOUT.default_pem,
        http_port=http_port,
        https_port=free_port(),
        health_port=free_port(),
    )
    process = MasterWorker(tmp_path / "master.sock", tmp_path / "admin.sock")
    try:
        await HaproxyApplier(process, tmp_path / "config").apply(
            render(model, layout, assign_slots({}, model))
        )
        yield http_port
    finally:
        await process.stop()


def answers(port: int, n: int) -> Counter[str]:
    out: Counter[str] = Counter()
    for _ in range(n):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": "s.example.com"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                out[r.read().decode()] += 1
        except urllib.error.HTTPError as e:
            out[str(e.code)] += 1
    return out


async def test_endpoints_that_stopped_before_their_removal_fail_no_request(served: int) -> None:
    got = await asyncio.to_thread(answers, served, 60)
    assert set(got) <= set(ALIVE) and sum(got.values()) == 60, got
