"""Recording core/v1 Events the way client-go's ``tools/record`` does, so that
``kubectl describe`` tells the story.

An :class:`EventRecorder` call never blocks and never raises: the event goes through the
:class:`EventCorrelator` (pure, upstream's ``events_cache.go``) and into a bounded queue that
:meth:`EventRecorder.run` drains to the API. When the queue is full, or the API refuses, the
event is dropped and logged — an event is a hint, never worth stalling a controller for.

Correlation, as upstream:

* **Aggregation**: more than 10 events within 10 minutes that differ only in their message
  (same source, object, type and reason) become one event whose message is
  ``(combined from similar events): <latest message>``.
* **Deduplication**: a repeat of an event already written patches that Event (``count`` + 1,
  ``lastTimestamp``, ``message``) instead of creating a new one.
* **Spam filter**: per source and object, a token bucket of 25 events refilled at one per
  5 minutes.

Names are ``<object name>.<unix nanoseconds in hex>``; events about cluster-scoped objects go
to the ``default`` namespace.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from svcnet.api.errors import ApiError, NotFound
from svcnet.api.registry import EVENTS
from svcnet.client.rest import ApiClient, ConnectionFailed
from svcnet.util.clock import REAL_CLOCK, Clock, rfc3339

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"

MAX_LRU_ENTRIES = 4096
AGGREGATE_MAX_EVENTS = 10
AGGREGATE_INTERVAL = 600.0
SPAM_BURST = 25
SPAM_QPS = 1.0 / 300.0
AGGREGATE_PREFIX = "(combined from similar events): "


K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._d: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._d.get(key)
        if value is not None:
            self._d.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._d[key] = value
        self._d.move_to_end(key)
        while len(self._d) > self.size:
            self._d.popitem(last=False)


def object_reference(obj: Mapping[str, Any], field_path: str = "") -> dict[str, Any]:
    """The ``ObjectReference`` of an object (what ``involvedObject`` holds)."""
    meta = obj.get("metadata") or {}
    ref: dict[str, Any] = {
        "kind": obj.get("kind", ""),
        "apiVersion": obj.get("apiVersion", ""),
        "name": meta.get("name", ""),
    }
    for src, dst in (
        ("namespace", "namespace"),
        ("uid", "uid"),
        ("resourceVersion", "resourceVersion"),
    ):
        if meta.get(src):
            ref[dst] = meta[src]
    if field_path:
        ref["fieldPath"] = field_path
    return ref


@dataclass(frozen=True)
class Correlated:
    """What to write for one recorded event: create ``event``, or patch the Event called
    ``patch_name`` with ``patch``; ``skip`` when the spam filter dropped it."""

    event: dict[str, Any]
    patch_name: str | None = None
    patch: dict[str, Any] | None = None
    skip: bool = False


@dataclass
class _Aggregate:
    local_keys: set[str]
    last: float


@dataclass
class _Observation:
    name: str
    count: int
    first_timestamp: str


@dataclass
class _Bucket:
    tokens: float
    last: float


def _ref_key(event: Mapping[str, Any]) -> tuple[str, ...]:
    src, ref = event.get("source") or {}, event.get("involvedObject") or {}
    return (
        src.get("component", ""),
        src.get("host", ""),
        ref.get("kind", ""),
        ref.get("namespace", ""),
        ref.get("name", ""),
        ref.get("uid", ""),
        ref.get("apiVersion", ""),
    )


class EventCorrelator:
    """Pure: aggregation, deduplication and spam filtering of events (``events_cache.go``)."""

    def __init__(self) -> None:
        self._aggregates: _Lru[tuple[str, ...], _Aggregate] = _Lru(MAX_LRU_ENTRIES)
        self._observed: _Lru[tuple[str, ...], _Observation] = _Lru(MAX_LRU_ENTRIES)
        self._buckets: _Lru[tuple[str, ...], _Bucket] = _Lru(MAX_LRU_ENTRIES)

    def _allow(self, event: Mapping[str, Any], now: float) -> bool:
        key = _ref_key(event)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(SPAM_BURST), now)
            self._buckets.put(key, bucket)
        bucket.tokens = min(float(SPAM_BURST), bucket.tokens + (now - bucket.last) * SPAM_QPS)
        bucket.last = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def correlate(self, event: dict[str, Any], now: float) -> Correlated:
        if not self._allow(event, now):
            return Correlated(event, skip=True)
        aggregate_key = (*_ref_key(event), event.get("type", ""), event.get("reason", ""))
        message = str(event.get("message", ""))
        agg = self._aggregates.get(aggregate_key)
        if agg is None or now - agg.last > AGGREGATE_INTERVAL:
            agg = _Aggregate(set(), now)
            self._aggregates.put(aggregate_key, agg)
        agg.local_keys.add(message)
        agg.last = now
        if len(agg.local_keys) < AGGREGATE_MAX_EVENTS:
            key: tuple[str, ...] = (*aggregate_key, message)
        else:
            # From here on, similar events share one Event whose message is the latest one.
            event = {**event, "message": AGGREGATE_PREFIX + message}
            key = aggregate_key
        seen = self._observed.get(key)
        if seen is None:
            self._observed.put(
                key, _Observation(event["metadata"]["name"], 1, event["firstTimestamp"])
            )
            return Correlated(event)
        seen.count += 1
        event = {
            **event,
            "metadata": {**event["metadata"], "name": seen.name},
            "count": seen.count,
            "firstTimestamp": seen.first_timestamp,
        }
        patch = {
            "count": seen.count,
            "lastTimestamp": event["lastTimestamp"],
            "message": event["message"],
        }
        return Correlated(event, patch_name=seen.name, patch=patch)

    def forget_name(self, key_name: str, new_name: str) -> None:
        """After a patched Event turned out to be gone and was created anew under a new name."""
        for obs in list(self._observed._d.values()):
            if obs.name == key_name:
                obs.name = new_name


def make_event(
    involved: Mapping[str, Any],
    event_type: str,
    reason: str,
    message: str,
    component: str,
    host: str,
    now: datetime,
    nanos: int,
) -> dict[str, Any]:
    """A core/v1 Event as client-go's ``makeEvent`` builds it."""
    ts = rfc3339(now)
    namespace = involved.get("namespace") or "default"
    source: dict[str, str] = {"component": component}
    if host:
        source["host"] = host
    event: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{involved.get('name', '')}.{nanos:x}", "namespace": namespace},
        "involvedObject": dict(involved),
        "reason": reason,
        "message": message,
        "type": event_type,
        "source": source,
        "firstTimestamp": ts,
        "lastTimestamp": ts,
        "count": 1,
        "reportingComponent": component,
    }
    if host:
        event["reportingInstance"] = host
    return event


class EventRecorder:
    """``recorder.event(pod, "Normal", "Scheduled", "Successfully assigned …")``.

    Start :meth:`run` in the owner's TaskGroup; until it runs, events wait in the queue.
    """

    def __init__(
        self,
        client: ApiClient,
        component: str,
        host: str = "",
        *,
        clock: Clock = REAL_CLOCK,
        maxsize: int = 1000,
    ) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.clock = clock
        self.correlator = EventCorrelator()
        self._queue: asyncio.Queue[Correlated] = asyncio.Queue(maxsize)
        self._last_nanos = 0
        self.dropped = 0
        self.written = 0

    def _nanos(self) -> int:
        # Two events in the same nanosecond of a fake clock must still get distinct names.
        nanos = max(int(self.clock.time() * 1e9), self._last_nanos + 1)
        self._last_nanos = nanos
        return nanos

    def event(
        self,
        obj: Mapping[str, Any],
        event_type: str,
        reason: str,
        message: str,
        *,
        field_path: str = "",
    ) -> None:
        """Record an event about ``obj`` (an object with metadata, or an ObjectReference)."""
        if event_type not in (NORMAL, WARNING):
            log.error("event type %r is neither Normal nor Warning: dropped", event_type)
            return
        involved = (
            dict(obj)
            if "metadata" not in obj and "kind" in obj
            else object_reference(obj, field_path)
        )
        ev = make_event(
            involved,
            event_type,
            reason,
            message,
            self.component,
            self.host,
            self.clock.now(),
            self._nanos(),
        )
        result = self.correlator.correlate(ev, self.clock.time())
        if result.skip:
            log.debug("event spam filter dropped %s %s", reason, involved.get("name"))
            return
        try:
            self._queue.put_nowait(result)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("event queue full: dropped %s %s: %s", event_type, reason, message)

    async def _write(self, item: Correlated) -> None:
        ev = item.event
        ns = ev["metadata"]["namespace"]
        if item.patch_name is not None and item.patch is not None:
            try:
                await self.client.patch(EVENTS, item.patch_name, item.patch, "strategic", ns)
                return
            except NotFound:
                # Expired or deleted: write it again, keeping the count (as upstream does).
                fresh = {
                    **ev,
                    "metadata": {
                        **ev["metadata"],
                        "name": f"{ev['involvedObject'].get('name', '')}.{self._nanos():x}",
                    },
                }
                self.correlator.forget_name(item.patch_name, fresh["metadata"]["name"])
                ev = fresh
        await self.client.create(ev, namespace=ns)

    async def run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._write(item)
                self.written += 1
            except (ApiError, ConnectionFailed) as e:
                self.dropped += 1
                log.warning("could not write event %s: %s", item.event.get("reason"), e)
            except Exception:
                # Never let an event take the owner's TaskGroup down.
                self.dropped += 1
                log.exception("could not write event %s", item.event.get("reason"))
            finally:
                self._queue.task_done()

    async def flush(self) -> None:
        """Wait until every queued event has been written or dropped (tests, shutdown)."""
        await self._queue.join()

    @property
    def pending(self) -> int:
        return self._queue.qsize()
