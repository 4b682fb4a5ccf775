"""Watch: a chunked stream of JSON events, one per line, from a store watch.

Per request: optional initial ADDED events (no ``resourceVersion``, or ``0``), then every
change after the start revision, filtered by the selection. An object that moves into the
selection is sent as ADDED and one that moves out as DELETED (upstream's cacher does the
same). With ``allowWatchBookmarks`` a BOOKMARK carrying the progress revision is sent about
every minute and when the watch ends. A start revision older than the store's history gets an
ERROR event holding a 410 ``Expired`` Status, as kube-apiserver sends it.

Serialization happens once per event for all watchers that need the plain object: the
encoded bytes come from :class:`~svcnet.apiserver.storage.EncodedCache`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from svcnet.api.registry import ResourceType
from svcnet.apiserver import customtable, table
from svcnet.apiserver import response as resp
from svcnet.apiserver.http1 import Request, Stream
from svcnet.apiserver.request import ListOptions
from svcnet.apiserver.selection import Selection
from svcnet.apiserver.status import gone_for_revision
from svcnet.apiserver.storage import ObjectStore, as_served, decode
from svcnet.store.interface import (
    CompactedError,
    EventType,
    KeyValue,
    Watch,
    WatchClosedError,
    WatchEvent,
)

log = logging.getLogger(__name__)

BOOKMARK_INTERVAL = 60.0
# Upstream's default: a random timeout between --min-request-timeout (1800s) and twice that.
MIN_REQUEST_TIMEOUT = 1800
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
# Writes per second the server spends on all watchers together, and the longest it holds an
# event back to share a write: with W open watches each waits W/budget seconds between writes
# (none with a few watches, 25 ms with 100), so fan-out cost stays flat as watchers grow.
WRITE_BUDGET_PER_SECOND = 4000.0
MAX_FLUSH_INTERVAL = 0.05


def flush_interval(open_watches: int) -> float:
    return min(MAX_FLUSH_INTERVAL, open_watches / WRITE_BUDGET_PER_SECOND)


# Below this many seconds to the deadline, waits use a per-wait timeout.
FAR_DEADLINE = 5.0


async def _wait_with_timer(coro: Any, seconds: float) -> Any:
    """Await ``coro`` (cancel-safe) with a deadline, using one call_later, not a new task."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    fired = False

    def cancel() -> None:
        nonlocal fired
        fired = True
        task.cancel()

    handle = loop.call_later(seconds, cancel)
    try:
        return await coro
    except asyncio.CancelledError:
        if fired:
            raise TimeoutError from None
        raise
    finally:
        handle.cancel()


class WatchRegistry:
    """The open watches, so a shutdown can end them all."""

    def __init__(self) -> None:
        self._open: set[Watch] = set()
        self._responding = 0  # watch responses not yet ended, the closed ones included
        self._none_responding = asyncio.Event()
        self._none_responding.set()
        self.closing = False

    @contextlib.contextmanager
    def responding(self) -> Iterator[None]:
        """Around a watch request's whole handling, until the end of its body is written."""
        self._responding += 1
        self._none_responding.clear()
        try:
            yield
        finally:
            self._responding -= 1
            if not self._responding:
                self._none_responding.set()

    async def wait_ended(self, timeout: float) -> None:
        """Wait until every watch response has written its end, so that a shutdown closing
        the connections next does not cut a stream short (a client would read a broken
        chunked body instead of the end of the watch)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._none_responding.wait(), timeout)

    def add(self, w: Watch) -> None:
        self._open.add(w)

    def discard(self, w: Watch) -> None:
        self._open.discard(w)

    def close_all(self) -> None:
        self.closing = True
        for w in list(self._open):
            w.close()

    def __len__(self) -> int:
        return len(self._open)


def _line(event_type: str, obj_bytes: bytes) -> bytes:
    return b'{"type":"' + event_type.encode() + b'","object":' + obj_bytes + b"}\n"


class _Renderer:
    """Turns (type, kv) into one event line in the negotiated form."""

    def __init__(
        self,
        rt: ResourceType,
        objects: ObjectStore,
        rendering: resp.Rendering,
        include_object: str,
        clock: Callable[[], datetime.datetime],
    ) -> None:
        self.rt = rt
        self.objects = objects
        self.rendering = rendering
        self.include_object = include_object
        self.clock = clock

    def line(self, event_type: str, kv: KeyValue, obj: dict[str, Any] | None = None) -> bytes:
        if self.rendering is resp.Rendering.OBJECT and self.rt.custom is None:
            return _line(event_type, self.objects.encoded.get(kv))
        o = as_served(self.rt, obj if obj is not None else decode(kv))
        if self.rendering is resp.Rendering.OBJECT:
            return _line(event_type, orjson.dumps(o))
        if obj is not None:
            o["metadata"]["resourceVersion"] = str(kv.mod_revision)
        if self.rendering is resp.Rendering.TABLE:
            t = table.table(
                self.rt.group,
                self.rt.kind,
                [o],
                self.clock(),
                self.include_object,
                str(kv.mod_revision),
                printer=customtable.printer_for(self.rt),
            )
            return _line(event_type, orjson.dumps(t))
        return _line(event_type, orjson.dumps(resp.partial_metadata(o)))

    def bookmark(self, revision: int, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        obj = {"kind": self.rt.kind, "apiVersion": self.rt.group_version, "metadata": meta}
        return _line("BOOKMARK", orjson.dumps(obj))


def classify(event: WatchEvent, selection: Selection) -> tuple[str, dict[str, Any] | None] | None:
    """The watch event type for a store event under a selection, or None to skip it.

    Also returns the decoded new object when decoding was needed (to reuse it)."""
    if event.type is EventType.DELETE:
        if selection.empty:
            return "DELETED", None
        prev = orjson.loads(event.kv.value)
        return ("DELETED", prev) if selection.matches(prev) else None
    if selection.empty:
        return ("MODIFIED" if event.prev is not None else "ADDED"), None
    new = orjson.loads(event.kv.value)
    new_match = selection.matches(new)
    old_match = event.prev is not None and selection.matches(orjson.loads(event.prev.value))
    if new_match and old_match:
        return "MODIFIED", new
    if new_match:
        return "ADDED", new
    if old_match:
        return "DELETED", new
    return None


async def serve_watch(
    request: Request,
    rt: ResourceType,
    namespace: str | None,
    opts: ListOptions,
    selection: Selection,
    objects: ObjectStore,
    registry: WatchRegistry,
    clock: Callable[[], datetime.datetime],
) -> Stream:
    with registry.responding():
        return await _serve_watch(request, rt, namespace, opts, selection, objects, registry, clock)


async def _serve_watch(
    request: Request,
    rt: ResourceType,
    namespace: str | None,
    opts: ListOptions,
    selection: Selection,
    objects: ObjectStore,
    registry: WatchRegistry,
    clock: Callable[[], datetime.datetime],
) -> Stream:
    store = objects.store
    rendering = resp.negotiate(request.headers.get("Accept", ""))
    renderer = _Renderer(
        rt, objects, rendering, request.query.get("includeObject", "Metadata"), clock
    )
    prefix = rt.store_prefix(namespace)
    initial: list[KeyValue] = []
    rv = opts.resource_version
    send_initial = opts.send_initial_events
    if rv in ("", "0") or send_initial:
        page = await store.list(prefix)
        start = page.revision
        if send_initial is not False:
            initial = [kv for kv in page.items if selection.empty or selection.matches_kv(kv)]
    else:
        start = int(rv)

    try:
        watch = store.watch(prefix, start)
    except CompactedError as exc:
        response = request.start_stream(200, resp.JSON)
        status = gone_for_revision(exc.requested, exc.compact_revision).to_status()
        await response.write(_line("ERROR", orjson.dumps(status)))
        await response.write_eof()
        return response

    registry.add(watch)
    try:
        response = request.start_stream(200, resp.JSON)
    except ConnectionResetError:
        watch.close()
        raise
    timeout = opts.timeout_seconds or random.randint(MIN_REQUEST_TIMEOUT, 2 * MIN_REQUEST_TIMEOUT)
    deadline = time.monotonic() + timeout
    next_bookmark = time.monotonic() + BOOKMARK_INTERVAL
    last_sent = start
    try:
        if initial:
            await response.write(b"".join(renderer.line("ADDED", kv) for kv in initial))
        if send_initial and opts.allow_bookmarks:
            await response.write(renderer.bookmark(start, initial_end=True))
        last_flush = 0.0
        while not registry.closing:
            now = time.monotonic()
            if now >= deadline:
                break
            interval = flush_interval(len(registry))
            if now - last_flush < interval:
                # Let events pile up a little: one write of many events costs about what one
                # write of one event does, and a hundred watchers each writing every event
                # one by one would saturate the server long before the store.
                await asyncio.sleep(interval - (now - last_flush))
                now = time.monotonic()
            wait = min(deadline, next_bookmark) - now if opts.allow_bookmarks else deadline - now
            # Without bookmarks the deadline is far off: wait directly (a timer task per wake-up
            # for a hundred watchers costs more than the events) and check it on each wake-up;
            # the server's shutdown closes the store watch, which ends the wait too.
            next_batch = watch.next_batch()
            try:
                if opts.allow_bookmarks or wait < FAR_DEADLINE:
                    batch = await asyncio.wait_for(next_batch, timeout=max(wait, 0.0))
                else:
                    batch = await _wait_with_timer(next_batch, wait)
            except TimeoutError:
                if opts.allow_bookmarks and time.monotonic() >= next_bookmark:
                    progress = max(last_sent, watch.progress_revision)
                    await response.write(renderer.bookmark(progress))
                    next_bookmark = time.monotonic() + BOOKMARK_INTERVAL
                continue
            if not batch:
                break  # closed by us (shutdown)
            lines = []
            for event in batch:
                kind = classify(event, selection)
                last_sent = event.revision
                if kind is None:
                    continue
                lines.append(renderer.line(kind[0], event.kv, kind[1]))
            if lines:
                await response.write(b"".join(lines))
                last_flush = time.monotonic()
        if opts.allow_bookmarks and not registry.closing:
            await response.write(renderer.bookmark(max(last_sent, watch.progress_revision)))
    except WatchClosedError:
        pass  # the store ended the watch (we fell behind); the client re-watches
    except ConnectionResetError:
        return response  # the client went away
    finally:
        registry.discard(watch)
        watch.close()
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response
