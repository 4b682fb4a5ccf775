"""Informers against the real API server: initial sync, live events, shared factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from svcnet.api.registry import CONFIGMAPS
from svcnet.client.informer import (
    DeletedFinalStateUnknown,
    FuncHandler,
    SharedInformerFactory,
    meta_namespace_key,
)
from svcnet.client.kubeconfig import load_kubeconfig
from svcnet.client.rest import ApiClient


@pytest.fixture
async def api(apiserver: Any) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(apiserver.kubeconfig)) as c:
        yield c


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


def cm(name: str, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": {"k": "v"},
    }


async def test_an_informer_syncs_then_follows_changes(api: ApiClient, namespace: str) -> None:
    await api.create(cm("before", namespace))
    factory = SharedInformerFactory(api, namespace=namespace)
    # Every namespace also holds kube-root-ca.crt (the root CA publisher's): not ours to watch.
    informer = factory.informer_for(CONFIGMAPS, field_selector="metadata.name!=kube-root-ca.crt")
    events: list[tuple[str, str]] = []

    def on_delete(o: Any) -> None:
        obj = o.obj if isinstance(o, DeletedFinalStateUnknown) else o
        events.append(("delete", meta_namespace_key(obj)))

    informer.add_event_handler(
        FuncHandler(
            on_add=lambda o: events.append(("add", meta_namespace_key(o))),
            on_update=lambda _o, n: events.append(("update", meta_namespace_key(n))),
            on_delete=on_delete,
        )
    )
    async with asyncio.TaskGroup() as tg:
        tasks = factory.start(tg)
        assert await factory.wait_for_cache_sync(10)
        assert informer.store.keys() == [f"{namespace}/before"]
        await api.create(cm("after", namespace))
        await api.patch(CONFIGMAPS, "after", {"data": {"k": "w"}}, "merge", namespace)
        await api.delete(CONFIGMAPS, "before", namespace)
        await until(lambda: len(events) == 4)
        assert events == [
            ("add", f"{namespace}/before"),
            ("add", f"{namespace}/after"),
            ("update", f"{namespace}/after"),
            ("delete", f"{namespace}/before"),
        ]
        assert informer.store.get(f"{namespace}/after")["data"] == {"k": "w"}
        for task in tasks:
            task.cancel()
