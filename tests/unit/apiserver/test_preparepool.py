"""PreparePool: creates prepared in worker processes answer exactly as prepared in-process.

These run the real worker (``python -m svcnet.apiserver.preparepool``) over its pipes."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from svcnet.api.errors import ApiError, BadRequest, Invalid, UnsupportedMediaType
from svcnet.api.registry import CONFIGMAPS, DEPLOYMENTS, SERVICES, ResourceType
from svcnet.apiserver.prepare import prepare_create
from svcnet.apiserver.preparepool import PreparePool
from svcnet.apiserver.request import WriteOptions

SERVICES = SERVICES
DEPLOYMENTS = DEPLOYMENTS
OPTS = WriteOptions(field_manager="kubectl-create")
WARN = WriteOptions(field_manager="kubectl-create", field_validation="Warn")
STRICT = WriteOptions(field_manager="kubectl-create", field_validation="Strict")


def _service(name: str, **spec: Any) -> bytes:
    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80}], **spec},
    }
    return orjson.dumps(body)


def _stable(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without what differs between two preparations (uid and times)."""
    obj = orjson.loads(orjson.dumps(obj))
    meta = obj["metadata"]
    meta.pop("uid")
    meta.pop("creationTimestamp")
    for entry in meta.get("managedFields", []):
        entry.pop("time")
    return obj


def _inline(rt: ResourceType | None, raw: bytes, ct: str, opts: WriteOptions) -> Any:
    assert rt is not None
    try:
        warnings, obj = prepare_create(rt, raw, ct, opts, "default")
    except ApiError as err:
        return err
    return warnings, _stable(obj)


async def _pooled(
    pool: PreparePool, rt: ResourceType | None, raw: bytes, ct: str, opts: WriteOptions
) -> Any:
    assert rt is not None
    try:
        warnings, obj = await pool.prepare_create(rt, raw, ct, opts, "default")
    except ApiError as err:
        return err
    return warnings, _stable(obj)


@pytest.fixture
async def pool() -> AsyncIterator[PreparePool]:
    p = PreparePool(1)
    await p.start()
    try:
        yield p
    finally:
        await p.close()


YAML_DEPLOYMENT = b"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        ports:
        - containerPort: 8080
"""

CASES = [
    ("service", SERVICES, _service("web"), "application/json", OPTS),
    ("deployment from YAML", DEPLOYMENTS, YAML_DEPLOYMENT, "application/yaml", OPTS),
    ("unknown field, Warn", SERVICES, _service("w", bogus=1), "application/json", WARN),
    ("unknown field, Strict", SERVICES, _service("s", bogus=1), "application/json", STRICT),
    ("invalid port", SERVICES, _service("p", ports=[{"port": 0}]), "application/json", OPTS),
    ("malformed JSON", SERVICES, b'{"kind": "Service", ', "application/json", OPTS),
    ("wrong kind", SERVICES, b'{"kind": "Pod", "apiVersion": "v1"}', "application/json", OPTS),
    ("unsupported media type", SERVICES, b"x", "text/plain", OPTS),
]


@pytest.mark.parametrize(
    ("rt", "raw", "ct", "opts"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_pool_answers_as_the_server_itself(
    pool: PreparePool, rt: ResourceType, raw: bytes, ct: str, opts: WriteOptions
) -> None:
    here = _inline(rt, raw, ct, opts)
    there = await _pooled(pool, rt, raw, ct, opts)
    if isinstance(here, ApiError):
        assert type(there) is type(here)
        assert there.to_status() == here.to_status()
    else:
        assert there == here


async def test_errors_keep_their_kubernetes_form(pool: PreparePool) -> None:
    err = await _pooled(
        pool, SERVICES, _service("p", ports=[{"port": 0}]), "application/json", OPTS
    )
    assert isinstance(err, Invalid)
    assert err.code == 422
    assert err.to_status()["details"]["causes"][0]["field"] == "spec.ports[0].port"
    assert isinstance(await _pooled(pool, SERVICES, b"[1]", "application/json", OPTS), BadRequest)
    assert isinstance(await _pooled(pool, SERVICES, b"x", "text/plain", OPTS), UnsupportedMediaType)


async def test_many_concurrent_creates_come_back_to_their_own_request(pool: PreparePool) -> None:
    assert SERVICES is not None
    results = await asyncio.gather(
        *(
            pool.prepare_create(SERVICES, _service(f"s{i}"), "application/json", OPTS, "ns")
            for i in range(300)
        )
    )
    assert [obj["metadata"]["name"] for _, obj in results] == [f"s{i}" for i in range(300)]
    assert len({obj["metadata"]["uid"] for _, obj in results}) == 300


async def test_a_body_larger_than_a_pipe_buffer_goes_through_whole(pool: PreparePool) -> None:
    configmaps = CONFIGMAPS
    assert configmaps is not None
    # About 0.9 MB (a ConfigMap holds at most 1 MiB); a pipe holds 64 KiB.
    data = {f"k{i}": "x" * 1000 for i in range(900)}
    raw = orjson.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": data}
    )
    both = await asyncio.gather(
        pool.prepare_create(configmaps, raw, "application/json", OPTS, "ns"),
        pool.prepare_create(configmaps, raw, "application/json", OPTS, "ns"),
    )
    assert [obj["data"] for _, obj in both] == [data, data]


async def test_a_killed_worker_loses_no_request_and_is_replaced() -> None:
    assert SERVICES is not None
    pool = PreparePool(1, min_lifetime=0.0)
    await pool.start()
    try:
        first = pool.workers[0]
        assert first.proc is not None
        pending = [
            asyncio.ensure_future(
                pool.prepare_create(SERVICES, _service(f"k{i}"), "application/json", OPTS, "ns")
            )
            for i in range(200)
        ]
        await asyncio.sleep(0)  # submitted, the pipe write scheduled
        os.kill(first.proc.pid, signal.SIGKILL)
        results = await asyncio.wait_for(asyncio.gather(*pending), 30)
        assert [obj["metadata"]["name"] for _, obj in results] == [f"k{i}" for i in range(200)]
        assert pool.rescued > 0  # the killed worker had unanswered requests: prepared here
        for _ in range(100):
            if pool.workers and pool.workers[0] is not first and pool.workers[0].alive:
                break
            await asyncio.sleep(0.05)
        assert pool.workers and pool.workers[0] is not first
        _, obj = await pool.prepare_create(
            SERVICES, _service("after"), "application/json", OPTS, "ns"
        )
        assert obj["metadata"]["name"] == "after"
    finally:
        await pool.close()


async def test_a_worker_that_dies_at_once_is_not_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert SERVICES is not None
    pool = PreparePool(1)
    await pool.start()
    try:
        worker = pool.workers[0]
        assert worker.proc is not None
        os.kill(worker.proc.pid, signal.SIGKILL)
        with caplog.at_level(logging.ERROR, logger="svcnet.apiserver.preparepool"):
            for _ in range(100):
                if not pool.workers:
                    break
                await asyncio.sleep(0.05)
        assert not pool.workers
        assert "preparing creates in the API server's own process" in caplog.text
        _, obj = await pool.prepare_create(
            SERVICES, _service("inline"), "application/json", OPTS, "ns"
        )
        assert obj["metadata"]["name"] == "inline"
    finally:
        await pool.close()


async def test_close_ends_the_workers() -> None:
    pool = PreparePool(2)
    await pool.start()
    procs = [w.proc for w in pool.workers]
    await pool.close()
    assert all(p is not None and p.returncode == 0 for p in procs)
