"""Fixtures of the integration tests: an API server (in-process, on a free loopback port, with
a temporary data dir and a SQLite store), kubectl pointed at it, and raw HTTPS."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from apiserver_harness import Http, Kubectl, RunningServer, start_in_thread, stop_in_thread

from svcnet.apiserver.server import ApiServerConfig


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("apiserver")
    # With a prepare worker, as `svcnet apiserver` runs: every create of the kubectl tests goes
    # through it (fresh_apiserver prepares in-process, so both paths are covered).
    running, thread = start_in_thread(ApiServerConfig(data_dir=data_dir, port=0, prepare_workers=1))
    try:
        yield running
    finally:
        stop_in_thread(running, thread)


@pytest.fixture
def fresh_apiserver(tmp_path: Path) -> Iterator[RunningServer]:
    """A server of its own, for tests that create cluster-scoped objects or fixed NodePorts."""
    running, thread = start_in_thread(ApiServerConfig(data_dir=tmp_path / "server", port=0))
    try:
        yield running
    finally:
        stop_in_thread(running, thread)


@pytest.fixture
def namespace(apiserver: RunningServer) -> Iterator[str]:
    name = "it-" + uuid.uuid4().hex[:8]
    k = Kubectl(apiserver.kubeconfig, "default")
    k("create", "namespace", name)
    try:
        yield name
    finally:
        k.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def kubectl(apiserver: RunningServer, namespace: str) -> Kubectl:
    return Kubectl(apiserver.kubeconfig, namespace)


@pytest.fixture
def http(apiserver: RunningServer) -> Http:
    return Http(apiserver)
