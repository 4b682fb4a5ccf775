"""Events recorded through the client show in ``kubectl describe`` as a real cluster's do."""

from __future__ import annotations

import asyncio
from typing import Any

from svcnet.client.events import NORMAL, WARNING, EventRecorder
from svcnet.client.kubeconfig import load_kubeconfig
from svcnet.client.rest import ApiClient


async def test_recorded_events_appear_in_kubectl_describe_with_their_count(
    apiserver: Any, kubectl: Any, namespace: str
) -> None:
    async with ApiClient(load_kubeconfig(apiserver.kubeconfig)) as api:
        pod = await api.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web", "namespace": namespace},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            }
        )
        pod.setdefault("apiVersion", "v1")
        pod.setdefault("kind", "Pod")
        recorder = EventRecorder(api, "svcnet-test", "node-1")
        task = asyncio.create_task(recorder.run())
        try:
            recorder.event(pod, NORMAL, "Scheduled", "Successfully assigned to node-1")
            for _ in range(3):
                recorder.event(pod, WARNING, "BackOff", "Back-off restarting failed container")
            await asyncio.wait_for(recorder.flush(), 10)
        finally:
            task.cancel()
        assert (recorder.written, recorder.dropped) == (4, 0)
        events = (await api.list("events", namespace))["items"]
        assert sorted((e["reason"], e["count"]) for e in events) == [
            ("BackOff", 3),
            ("Scheduled", 1),
        ]
    out = await asyncio.to_thread(kubectl, "describe", "pod", "web")
    events_section = out.split("Events:", 1)[1]
    assert "Scheduled" in events_section and "svcnet-test" in events_section
    backoff = next(line for line in events_section.splitlines() if "BackOff" in line)
    assert "Warning" in backoff and "(x3 over" in backoff
