"""Event recording: upstream's correlation (dedup, aggregation, spam filter) and the writes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from svcnet.api.registry import EVENTS
from svcnet.client.events import (
    AGGREGATE_PREFIX,
    NORMAL,
    WARNING,
    EventCorrelator,
    EventRecorder,
    make_event,
    object_reference,
)
from svcnet.client.fake import FakeApiServer
from svcnet.client.kubeconfig import ClientConfig
from svcnet.client.rest import ApiClient
from svcnet.util.clock import FakeClock

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "default", "uid": "u-1", "resourceVersion": "7"},
}
NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1", "uid": "u-n"}}


def ev(message: str, reason: str = "Unhealthy", nanos: int = 1) -> dict[str, Any]:
    clock = FakeClock()
    return make_event(
        object_reference(POD), WARNING, reason, message, "kubelet", "node-1", clock.now(), nanos
    )


def test_event_shape_matches_upstream() -> None:
    e = make_event(
        object_reference(POD),
        NORMAL,
        "Scheduled",
        "assigned",
        "default-scheduler",
        "",
        FakeClock(1_700_000_000).now(),
        0x17A,
    )
    assert e["metadata"] == {"name": "web-1.17a", "namespace": "default"}
    assert e["involvedObject"] == {
        "kind": "Pod",
        "apiVersion": "v1",
        "name": "web-1",
        "namespace": "default",
        "uid": "u-1",
        "resourceVersion": "7",
    }
    assert e["source"] == {"component": "default-scheduler"}
    assert (e["count"], e["type"], e["firstTimestamp"]) == (1, "Normal", "2023-11-14T22:13:20Z")
    assert e["firstTimestamp"] == e["lastTimestamp"]


def test_events_about_cluster_scoped_objects_go_to_default() -> None:
    e = make_event(
        object_reference(NODE), NORMAL, "NodeReady", "ready", "kubelet", "n", FakeClock().now(), 1
    )
    assert e["metadata"]["namespace"] == "default"


def test_a_repeated_event_becomes_a_patch_of_the_first_with_count() -> None:
    c = EventCorrelator()
    first = c.correlate(ev("probe failed", nanos=1), now=0)
    second = c.correlate(ev("probe failed", nanos=2), now=1)
    third = c.correlate(ev("probe failed", nanos=3), now=2)
    assert first.patch_name is None
    assert (second.patch_name, second.patch["count"]) == (first.event["metadata"]["name"], 2)
    assert third.patch["count"] == 3
    assert third.event["firstTimestamp"] == first.event["firstTimestamp"]


def test_different_messages_are_different_events_until_ten() -> None:
    c = EventCorrelator()
    results = [c.correlate(ev(f"message {i}", nanos=i), now=i) for i in range(12)]
    assert all(r.patch_name is None for r in results[:9])
    assert not results[8].event["message"].startswith(AGGREGATE_PREFIX)
    # The tenth distinct message in 10 minutes starts the aggregate event...
    assert results[9].event["message"] == AGGREGATE_PREFIX + "message 9"
    assert results[9].patch_name is None
    # ...and later ones patch it.
    assert results[10].patch_name == results[9].event["metadata"]["name"]
    assert results[11].patch == {
        "count": 3,
        "lastTimestamp": results[11].event["lastTimestamp"],
        "message": AGGREGATE_PREFIX + "message 11",
    }


def test_aggregation_resets_after_ten_quiet_minutes() -> None:
    c = EventCorrelator()
    for i in range(10):
        c.correlate(ev(f"m{i}", nanos=i), now=i)
    later = c.correlate(ev("fresh", nanos=99), now=10 + 601)
    assert later.event["message"] == "fresh"


def test_the_spam_filter_drops_past_a_burst_of_25_per_object() -> None:
    c = EventCorrelator()
    results = [c.correlate(ev("same", nanos=i), now=0) for i in range(30)]
    assert [r.skip for r in results].count(True) == 5
    assert not c.correlate(ev("same", nanos=99), now=300).skip  # one token per 5 minutes


@pytest.fixture
async def recorder(client: ApiClient) -> Any:
    rec = EventRecorder(client, "kubelet", "node-1", clock=FakeClock())
    task = asyncio.create_task(rec.run())
    yield rec
    task.cancel()


async def test_the_recorder_creates_then_patches(
    recorder: EventRecorder, fake: FakeApiServer
) -> None:
    recorder.event(POD, WARNING, "BackOff", "Back-off restarting failed container")
    recorder.event(POD, WARNING, "BackOff", "Back-off restarting failed container")
    await asyncio.wait_for(recorder.flush(), 2)
    events = [o for k, o in fake.objects.items() if k[1] == "events"]
    assert len(events) == 1
    assert events[0]["count"] == 2
    assert events[0]["involvedObject"]["uid"] == "u-1"


async def test_a_patched_event_that_expired_is_created_again(
    recorder: EventRecorder, fake: FakeApiServer
) -> None:
    recorder.event(POD, NORMAL, "Pulled", "ok")
    await recorder.flush()
    (name,) = [k[3] for k in fake.objects if k[1] == "events"]
    fake.remove(EVENTS, name, "default")
    recorder.event(POD, NORMAL, "Pulled", "ok")
    await recorder.flush()
    events = [o for k, o in fake.objects.items() if k[1] == "events"]
    assert [e["count"] for e in events] == [2]


async def test_api_errors_never_reach_the_caller(
    recorder: EventRecorder, fake: FakeApiServer
) -> None:
    fake.fail_next(500)
    recorder.event(POD, NORMAL, "Started", "started")
    await asyncio.wait_for(recorder.flush(), 2)
    assert recorder.dropped == 1


async def test_an_unreachable_server_drops_events_without_blocking() -> None:
    async with ApiClient(ClientConfig(server="http://127.0.0.1:9"), read_retries=0) as c:
        rec = EventRecorder(c, "x", maxsize=2)
        for i in range(5):
            rec.event(POD, NORMAL, "R", f"m{i}")  # returns at once; the queue holds 2
        assert (rec.pending, rec.dropped) == (2, 3)


async def test_an_unknown_event_type_is_refused(recorder: EventRecorder) -> None:
    recorder.event(POD, "Error", "R", "m")
    assert recorder.pending == 0
